"""Tests of research.synthetic: contract, determinism, stylised facts and planted ground truth.

The statistical tests use fixed seeds, so they are deterministic; their thresholds (3 SE for
"nothing there", 5 SE for "edge found") are the ones a careless generator would fail.
Standard errors use batch means over contiguous blocks, so overlapping forward windows and
volatility clustering do not fake significance.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from research.schema import CLOSE, HIGH, LOW, OPEN, SESSIONS, VOLUME, validate_candles
from research.synthetic import (
    EDGES,
    TREND_STATES,
    PlantedEdge,
    SyntheticConfig,
    drop_bars,
    edge,
    ground_truth,
    make_market,
    make_markets,
    null_market,
    sample_market,
)

N_BIG = 200_000
H = 12


# ------------------------------------------------------------------------------------------
# statistics computed from the candles alone (what a downstream analysis would compute)
# ------------------------------------------------------------------------------------------
def batch_mean_se(values: np.ndarray, pos: np.ndarray, n: int, batches: int = 100):
    """Mean of ``values`` (observed at bar positions ``pos``) and its batch-means SE."""
    block = pos * batches // n
    sums = np.bincount(block, weights=values, minlength=batches)
    counts = np.bincount(block, minlength=batches)
    means = sums / np.maximum(counts, 1)
    return values.mean(), means.std(ddof=1) / np.sqrt(batches)


def signed_forward(candles: pd.DataFrame, trigger: np.ndarray, h: int = H):
    """``sign(body_j) * log(close_{j+h} / close_j)`` over trigger bars ``j``: (mean, se, pos)."""
    c = np.log(candles[CLOSE].to_numpy())
    body = np.sign(candles[CLOSE].to_numpy() - candles[OPEN].to_numpy())
    pos = np.flatnonzero(trigger[: len(c) - h] & (body[: len(c) - h] != 0))
    y = body[pos] * (c[pos + h] - c[pos])
    mean, se = batch_mean_se(y, pos, len(c))
    return mean, se, pos


def body_trigger(candles: pd.DataFrame, threshold: float = 0.5) -> np.ndarray:
    o, h, lo, c = (candles[k].to_numpy() for k in (OPEN, HIGH, LOW, CLOSE))
    rng = h - lo
    ratio = np.divide(np.abs(c - o), rng, out=np.zeros_like(rng), where=rng > 0)
    return ratio >= threshold


def volume_trigger(candles: pd.DataFrame, threshold: float = 2.0, window: int = 20):
    v = candles[VOLUME]
    base = v.shift(1).rolling(window).mean()
    return (v >= threshold * base).to_numpy()


def hours(candles: pd.DataFrame) -> np.ndarray:
    return candles.index.hour.to_numpy()


def session_stat(candles: pd.DataFrame, lag: int):
    """Mean ``sign(24 h return up to the open) * log(close/open)`` over us-session bars."""
    o = np.log(candles[OPEN].to_numpy())
    c = np.log(candles[CLOSE].to_numpy())
    hr = hours(candles)
    pos = np.flatnonzero((hr >= 16) & (hr < 22))
    pos = pos[pos >= lag]
    y = np.sign(o[pos] - o[pos - lag]) * (c[pos] - o[pos])
    mean, se = batch_mean_se(y, pos, len(c))
    return mean, se


STATS = {
    "body_momentum": lambda df: signed_forward(df, body_trigger(df))[:2],
    "volume_momentum": lambda df: signed_forward(df, volume_trigger(df))[:2],
    "session_trend": lambda df: session_stat(df, lag=24 * 12),
}


@pytest.fixture(scope="module")
def null_big():
    return null_market(n_bars=N_BIG, seed=7)


@pytest.fixture(scope="module")
def body_big():
    return make_market(n_bars=N_BIG, seed=7, trend_drift=0.0, edges=(edge("body_momentum"),))


@pytest.fixture(scope="module")
def market_50k():
    return make_market(n_bars=50_000, seed=3)


# ------------------------------------------------------------------------------------------
# contract and determinism
# ------------------------------------------------------------------------------------------
def test_frame_contract():
    df = make_market(n_bars=500, timeframe="1h", symbol="XYZ", seed=5)
    validate_candles(df)
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index.name == "timestamp" and str(df.index.tz) == "UTC" and df.index.unit == "ns"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert (np.diff(df.index.asi8) == pd.Timedelta("1h").value).all()
    assert df.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert list(df.columns) == [OPEN, HIGH, LOW, CLOSE, VOLUME]
    assert (df.dtypes == np.float64).all()
    assert df.attrs["symbol"] == "XYZ" and df.attrs["seed"] == 5
    assert df.attrs["timeframe"] == pd.Timedelta("1h") and df.attrs["edges"] == ()
    assert df[OPEN].iloc[0] == pytest.approx(100.0, rel=1e-12)
    # continuous series: each open is the previous close
    assert np.array_equal(df[OPEN].to_numpy()[1:], df[CLOSE].to_numpy()[:-1])


def test_config_and_edges_api():
    cfg = SyntheticConfig(timeframe="15m", edges=[edge("body_momentum", drift=0.3)])
    assert cfg.timeframe == pd.Timedelta(minutes=15) and cfg.edges[0].drift == 0.3
    assert SyntheticConfig(timeframe="1d").timeframe == pd.Timedelta(days=1)
    assert edge("body_momentum").threshold == 0.5 and edge("body_momentum").horizon == 12
    assert EDGES["body_momentum"].drift == 0.12  # overrides did not mutate the registry
    with pytest.raises(KeyError, match="body_momentum"):
        edge("no_such_edge")
    with pytest.raises(ValueError):
        PlantedEdge(name="x", kind="teleport", drift=0.1)
    with pytest.raises(ValueError):
        SyntheticConfig(edges=(edge("body_momentum"), edge("body_momentum")))
    with pytest.raises(ValueError):
        null_market(edges=(edge("body_momentum"),))
    df = make_market(cfg, n_bars=100)
    assert df.attrs["edges"] == cfg.edges and df.attrs["timeframe"] == pd.Timedelta("15m")


def test_deterministic_for_a_seed():
    kw = dict(n_bars=3_000, edges=tuple(edge(n) for n in EDGES))
    a, b = make_market(seed=11, **kw), make_market(seed=11, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["edges"] == b.attrs["edges"]
    c = make_market(seed=12, **kw)
    assert not np.allclose(a[CLOSE].to_numpy(), c[CLOSE].to_numpy())


def test_longer_market_extends_shorter_one():
    """Bars 0..n-1 do not depend on how many bars follow: the generator is causal."""
    kw = dict(seed=4, edges=tuple(edge(n) for n in EDGES))
    short, long = make_market(n_bars=2_000, **kw), make_market(n_bars=3_000, **kw)
    pd.testing.assert_frame_equal(short, long.iloc[:2_000], check_freq=False)
    pd.testing.assert_frame_equal(ground_truth(short), ground_truth(long).iloc[:2_000])


def test_speed_after_compilation():
    make_market(n_bars=1_000)
    t0 = time.perf_counter()
    df = make_market(n_bars=200_000, edges=tuple(edge(n) for n in EDGES))
    assert len(df) == 200_000
    assert time.perf_counter() - t0 < 2.0


# ------------------------------------------------------------------------------------------
# stylised facts
# ------------------------------------------------------------------------------------------
def test_session_volatility_ordering(market_50k):
    r = np.abs(np.log(market_50k[CLOSE] / market_50k[OPEN])).to_numpy()
    hr = hours(market_50k)
    masks = {
        "asia": (hr >= 22) | (hr < 7),
        "london": (hr >= 7) & (hr < 12),
        "overlap": (hr >= 12) & (hr < 16),
        "us": (hr >= 16) & (hr < 22),
    }
    m = {s: r[mask].mean() for s, mask in masks.items()}
    assert m["overlap"] > m["london"] > m["us"] > m["asia"], m
    truth = ground_truth(market_50k)
    for s, mask in masks.items():
        assert (truth["session"].to_numpy()[mask] == s).all()


def test_regimes_and_trend_states_exist(market_50k):
    truth = ground_truth(market_50k)
    assert set(truth["vol_regime"].unique()) == {"low", "normal", "high", "extreme"}
    assert set(truth["trend_state"].unique()) == set(TREND_STATES)
    assert set(truth["session"].unique()) == set(SESSIONS)
    # regimes persist (mean duration ~500 bars), they are not i.i.d. labels
    switches = (truth["vol_regime"] != truth["vol_regime"].shift()).sum()
    assert 20 < switches < 250
    # realised volatility follows the hidden regime
    r = np.abs(np.log(market_50k[CLOSE] / market_50k[OPEN]))
    by_regime = r.groupby(truth["vol_regime"], observed=True).mean()
    assert by_regime.is_monotonic_increasing


def test_volume_scales_with_session_and_abs_return(market_50k):
    v = market_50k[VOLUME]
    assert (v > 0).all()
    truth = ground_truth(market_50k)
    by_session = v.groupby(truth["session"], observed=True).median()
    assert by_session["overlap"] > by_session["asia"]
    r = np.abs(np.log(market_50k[CLOSE] / market_50k[OPEN]))
    assert np.corrcoef(r, v)[0, 1] > 0.2


# ------------------------------------------------------------------------------------------
# null market: nothing to find
# ------------------------------------------------------------------------------------------
def test_null_market_price_is_a_martingale(null_big):
    truth = ground_truth(null_big)
    assert (truth["drift"] == 0).all() and null_big.attrs["edges"] == ()
    c = null_big[CLOSE].to_numpy()
    pos = np.arange(len(c) - 1)
    simple = c[1:] / c[:-1] - 1.0
    mean, se = batch_mean_se(simple, pos, len(c))
    assert abs(mean) < 3 * se, (mean, se)
    log_r = np.diff(np.log(c)) + 0.5 * truth["sigma"].to_numpy()[1:] ** 2
    mean, se = batch_mean_se(log_r, pos, len(c))
    assert abs(mean) < 3 * se, (mean, se)


@pytest.mark.parametrize("name", sorted(EDGES))
def test_null_market_has_no_edge(null_big, name):
    mean, se = STATS[name](null_big)
    assert abs(mean) < 3 * se, (name, mean, se)


# ------------------------------------------------------------------------------------------
# planted edges: found, of the planted size, and each moves its own statistic
# ------------------------------------------------------------------------------------------
def test_body_momentum_is_found_with_its_planted_size(body_big):
    truth = ground_truth(body_big)
    trig = body_trigger(body_big)
    assert np.array_equal(trig, truth["body_momentum"].to_numpy())  # causal, observable
    mean, se, pos = signed_forward(body_big, trig)
    assert mean > 5 * se, (mean, se)
    # Overlap: a newer trigger replaces the direction, so bar j+m still carries bar j's drift
    # with probability (1-p)^(m-1); the planted move is drift * sigma * effective horizon.
    p = trig.mean()
    effective = ((1 - p) ** np.arange(H)).sum()
    expected = 0.12 * truth["sigma"].mean() * effective
    assert 0.5 < mean / expected < 2.0, (mean, expected)
    # and it matches the drift actually planted after those bars, up to noise
    ds = np.concatenate([[0.0], np.cumsum(truth["drift"] * truth["sigma"])])
    body = np.sign(body_big[CLOSE] - body_big[OPEN]).to_numpy()
    planted = (body[pos] * (ds[pos + H + 1] - ds[pos + 1])).mean()
    assert abs(mean - planted) < 4 * se, (mean, planted, se)


def test_drift_only_where_the_edge_says(body_big):
    truth = ground_truth(body_big)
    d = truth["body_momentum_drift"].to_numpy()
    assert set(np.unique(d)) <= {-0.12, 0.0, 0.12}
    trig = truth["body_momentum"].to_numpy()
    # a bar is drifted iff one of the previous 12 bars triggered
    recent = pd.Series(trig).rolling(H, min_periods=1).max().shift(1, fill_value=0)
    assert np.array_equal(d != 0, recent.to_numpy() > 0)
    # direction = body of the latest trigger bar
    body = np.sign(body_big[CLOSE] - body_big[OPEN]).where(trig).ffill().shift(1).to_numpy()
    assert np.array_equal(np.sign(d[d != 0]), body[d != 0])


@pytest.mark.parametrize("name", sorted(EDGES))
def test_each_edge_moves_its_own_statistic(null_big, name):
    planted = make_market(n_bars=N_BIG, seed=7, trend_drift=0.0, edges=(edge(name),))
    truth = ground_truth(planted)
    assert truth[name].any() and (truth["drift"] == truth[f"{name}_drift"]).all()
    m1, se1 = STATS[name](planted)
    m0, se0 = STATS[name](null_big)
    assert m1 - m0 > 5 * np.hypot(se0, se1), (name, m0, m1, se0, se1)


def test_ground_truth_conditions_are_observable():
    df = make_market(n_bars=20_000, seed=9, edges=tuple(edge(n) for n in EDGES))
    truth = ground_truth(df)
    assert (body_trigger(df) == truth["body_momentum"].to_numpy()).all()
    agree = (volume_trigger(df) == truth["volume_momentum"].to_numpy()).mean()
    assert agree > 0.999  # rolling-mean rounding may differ at the threshold
    hr = hours(df)
    us = (hr >= 16) & (hr < 22)
    us[: 24 * 12] = False
    assert np.array_equal(truth["session_trend"].to_numpy(), us)
    assert (truth.loc[~us, "session_trend_drift"] == 0).all()
    assert {"session", "vol_regime", "trend_state", "sigma", "drift"} <= set(truth.columns)


def test_trend_states_drift_the_price():
    df = make_market(n_bars=100_000, seed=2, trend_drift=0.08)
    truth = ground_truth(df)
    r = np.log(df[CLOSE] / df[OPEN]) / truth["sigma"]
    by_state = r.groupby(truth["trend_state"], observed=True).mean()
    assert by_state["up"] > 0.04 and by_state["down"] < -0.04 and abs(by_state["range"]) < 0.03


# ------------------------------------------------------------------------------------------
# helpers: several symbols, sample data, gaps
# ------------------------------------------------------------------------------------------
def test_make_markets():
    markets = make_markets(n_bars=5_000)
    assert list(markets) == ["SYNTH_A", "SYNTH_B", "SYNTH_C"]
    vols = [np.log(df[CLOSE] / df[OPEN]).std() for df in markets.values()]
    assert vols[0] < vols[1] < vols[2]
    seeds = {df.attrs["seed"] for df in markets.values()}
    assert len(seeds) == 3
    for sym, df in markets.items():
        assert df.attrs["symbol"] == sym
        validate_candles(df)


def test_sample_market():
    df = sample_market()
    assert len(df) == 5_000 and df.attrs["timeframe"] == pd.Timedelta("5m")
    assert [e.name for e in df.attrs["edges"]] == ["body_momentum"]
    df.iloc[0, 0] = -1.0  # a copy: the next caller gets clean data
    validate_candles(sample_market())


def test_drop_bars_creates_gaps():
    df = make_market(n_bars=10_000, seed=1)
    gapped = drop_bars(df, fraction=0.05, seed=3)
    validate_candles(gapped)
    steps = np.diff(gapped.index.asi8)
    assert (steps > pd.Timedelta("5m").value).sum() >= 5
    assert 0.02 < 1 - len(gapped) / len(df) < 0.08
    assert gapped.index[0] == df.index[0] and gapped.index[-1] == df.index[-1]
    assert gapped.attrs["symbol"] == df.attrs["symbol"]
    pd.testing.assert_frame_equal(gapped, df.loc[gapped.index])
    truth = ground_truth(gapped)
    assert truth.index.equals(gapped.index)
    pd.testing.assert_frame_equal(drop_bars(df, 0.05, seed=3), gapped)
    assert len(drop_bars(df, 0.0)) == len(df)


def test_ground_truth_rejects_foreign_frames():
    df = make_market(n_bars=200)
    with pytest.raises(ValueError):
        ground_truth(df.assign(close=df[CLOSE] * 1.01))
    with pytest.raises(ValueError):
        ground_truth(df.set_axis(df.index + pd.Timedelta("1min")))
    with pytest.raises(ValueError):
        ground_truth(pd.DataFrame(df.to_numpy(), index=df.index, columns=df.columns))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_bars=st.integers(1, 300),
    timeframe=st.sampled_from(["1m", "5m", "1h", "4h", "1d"]),
    base_vol=st.floats(1e-4, 0.05),
    names=st.lists(st.sampled_from(sorted(EDGES)), unique=True),
)
def test_ohlc_invariants(seed, n_bars, timeframe, base_vol, names):
    df = make_market(
        n_bars=n_bars,
        seed=seed,
        timeframe=timeframe,
        base_vol=base_vol,
        edges=tuple(edge(n) for n in names),
    )
    o, h, lo, c, v = (df[k].to_numpy() for k in (OPEN, HIGH, LOW, CLOSE, VOLUME))
    assert len(df) == n_bars
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
    assert (lo > 0).all() and np.isfinite(h).all()
    assert (v >= 0).all()
    validate_candles(df)
