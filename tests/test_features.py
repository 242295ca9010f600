"""Features: the registry, point-in-time extraction, typing and the symbol clustering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from research import schema as S
from research.candles import load_candles
from research.features import (
    CATEGORIES,
    FEATURES,
    SymbolClusterer,
    build_features,
    check_entry_columns,
    feature_names,
    lifecycle_features,
    session_of,
)
from research.phantom import simulate
from research.signals import generate_signals


def test_registry_has_34_plus_signal_features_and_marks_lifecycle_after_entry():
    at_signal = feature_names(available="signal")
    assert len(at_signal) >= 34
    assert {"technical", "context"} <= {FEATURES[n].group for n in at_signal}
    for name in (
        "atr_pct",
        "breakout_dist_atr",
        "retrace_depth",
        "ema_stack_score",
        "ema_slope_atr",
        "divergence",
        "range_position",
        "volume_zscore",
        "session",
        "volatility_regime",
        "symbol_cluster",
        "hour",
        "weekday",
    ):
        assert FEATURES[name].available == "signal"
    late = feature_names(available="after_entry")
    assert {"tp1_hit", "be_moved", "time_to_exit_sec", "one_r_hit", "two_r_hit"} <= set(late)
    assert all(FEATURES[n].group == "lifecycle" for n in late)
    assert all(f.description and f.dtype for f in FEATURES.values())


def test_entry_models_refuse_after_entry_columns_unless_asked():
    with pytest.raises(ValueError, match="only after entry.*allow_after_entry"):
        check_entry_columns(["atr_pct", "tp1_hit"])
    assert check_entry_columns(["atr_pct", "tp1_hit"], allow_after_entry=True)
    with pytest.raises(ValueError, match="unregistered"):
        check_entry_columns(["atr_pct", "future_return"])


@pytest.mark.parametrize("strategy", ["trend", "range", "scalp"])
def test_point_in_time_changing_every_later_bar_moves_no_feature(btc_1h, strategy):
    sig = generate_signals(btc_1h, strategy)
    before = build_features(btc_1h, sig)
    rng = np.random.default_rng(7)
    for cut in sig[S.SIGNAL_TIME].iloc[[5, len(sig) // 3, 2 * len(sig) // 3, -3]]:
        later = btc_1h.index >= cut  # bars opening at/after the signal time: the future
        changed = btc_1h.copy()
        factor = rng.uniform(0.5, 1.5, later.sum())
        for col in (S.OPEN, S.HIGH, S.LOW, S.CLOSE):
            changed.loc[later, col] *= factor
        changed.loc[later, S.VOLUME] *= rng.uniform(0, 3, later.sum())
        known = sig[sig[S.SIGNAL_TIME] <= cut]
        after = build_features(changed, known)
        pd.testing.assert_frame_equal(after, before.loc[known[S.SIGNAL_ID]])
        # and the perturbation was real: a feature of a later signal did move
        if (sig[S.SIGNAL_TIME] > cut).any():
            nxt = sig[sig[S.SIGNAL_TIME] > cut].iloc[[0]]
            assert not build_features(changed, nxt).equals(before.loc[nxt[S.SIGNAL_ID]])


def test_types_vocabularies_and_values(btc_1h):
    sig = generate_signals(btc_1h, "scalp")
    x = build_features(btc_1h, sig)
    assert list(x.columns) == feature_names(available="signal")
    assert x.index.name == S.SIGNAL_ID and x.index.is_unique
    for name, cats in CATEGORIES.items():
        assert list(x[name].cat.categories) == list(cats)
    assert not x.isna().any().any()
    num = x.select_dtypes("number")
    assert np.isfinite(num.to_numpy()).all()
    assert x["range_position"].between(0, 1).all() and x["body_ratio"].between(0, 1).all()
    assert x["rsi_14"].between(0, 100).all() and x["ema_stack_score"].abs().le(3).all()
    assert (x["symbol_cluster"] == -1).all()  # no clustering given
    np.testing.assert_allclose(x["tp_r"], 2.0)
    assert set(x["is_long"]) == {0.0, 1.0}
    # side-aware: flipping the side of a signal flips the sign of its side-aware features
    flipped = sig.iloc[[100]].assign(
        **{
            S.SIDE: np.where(sig[S.SIDE].iloc[100] == S.LONG, S.SHORT, S.LONG),
            S.SL: sig[S.TP].iloc[100],
            S.TP: sig[S.SL].iloc[100],
        }
    )
    y = build_features(btc_1h, flipped)
    for name in ("ema_stack_score", "vwap_dist_atr", "return_12_atr"):
        assert y[name].iloc[0] == pytest.approx(-x[name].iloc[100])


def test_sessions_follow_utc_hours():
    times = pd.to_datetime(
        [
            "2024-01-01 06:59",
            "2024-01-01 07:00",
            "2024-01-01 12:00",
            "2024-01-01 16:00",
            "2024-01-01 22:00",
        ],
        utc=True,
    )
    assert list(session_of(times)) == ["asia", "london", "overlap", "us", "asia"]
    assert set(session_of(pd.date_range("2024", periods=24, freq="h", tz="UTC"))) == set(S.SESSIONS)


def test_symbol_clusters_separate_fx_from_crypto(data_dir):
    names = ["BTC_USDT_1h", "ETH_USDT_1h", "SOL_USDT_1h", "EURUSD_1h"]
    candles = {n: load_candles(data_dir / f"{n}.csv.gz") for n in names}
    clusterer = SymbolClusterer(n_clusters=2).fit(candles, end="2021-03-01")
    assert clusterer.labels_["EURUSD_1h"] == 0  # the calm cluster
    assert {clusterer.labels_[n] for n in names[:3]} == {1}
    assert clusterer.predict(["EURUSD_1h", "UNKNOWN"]).tolist() == [0, -1]
    with pytest.raises(ValueError, match="Fix"):
        SymbolClusterer().fit(candles, end="2000-01-01")


def test_lifecycle_features_come_from_outcomes(btc_1h):
    sig = generate_signals(btc_1h, "trend")
    life = lifecycle_features(sig, simulate(btc_1h, sig))
    assert list(life.columns) == feature_names(available="after_entry")
    assert (life["max_favorable_r"].dropna() >= -1e-9).sum() > 0
    assert (life.loc[life["two_r_hit"], "max_favorable_r"] >= 2 - 1e-9).all()
    assert (life.loc[life["be_moved"], "tp1_hit"]).all()
