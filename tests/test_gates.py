"""Gate analysis: the seed's numbers by hand, vectorised counts, BH, Wilson, null and planted."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from research import schema as S
from research.analysis.gates import (
    analyze_gates,
    bh_qvalues,
    combination_counts,
    explain_null,
    wilson_interval,
)
from research.phantom import simulate
from research.signals import GATE_COLUMNS, generate_signals
from research.synthetic import edge, make_market, null_market


def tiny() -> pd.DataFrame:
    """3 gates, 8 rows; every number below is worked out by hand in the test."""
    return pd.DataFrame(
        {
            "a": np.array([1, 1, 1, 1, 0, 0, 0, 0], bool),
            "b": np.array([1, 0, 1, 0, 1, 0, 1, 0], bool),
            "c": np.array([1, 1, 1, 1, 1, 1, 1, 0], bool),
            S.OUTCOME: ["win", "win", "win", "loss", "loss", "loss", "win", "timeout"],
            S.SIGNAL_TIME: pd.date_range("2024-01-01", periods=8, freq="h", tz="UTC"),
        }
    )


def test_hand_computed_tiny_case():
    r = analyze_gates(tiny(), ["a", "b", "c"], min_n=2, top_k=3, n_perm=20, confirm_share=0.5)
    s = r.singles
    # a: pass rows 0-3 -> 3 wins / 4; fail rows 4-7 -> 1 / 4 (the timeout counts as not-win)
    assert s.loc["a", ["n_pass", "wins_pass", "n_fail", "wins_fail"]].tolist() == [4, 3, 4, 1]
    assert s.loc["a", "wr_pass"] == 0.75 and s.loc["a", "wr_fail"] == 0.25
    assert s.loc["a", "delta"] == pytest.approx(0.5)
    # b: pass rows 0,2,4,6 -> 3/4; fail rows 1,3,5,7 -> 1/4
    assert s.loc["b", "delta"] == pytest.approx(0.5)
    # c: pass 4/7, fail 0/1 -> delta 0.571 but only 1 row fails: insufficient at min_n=2
    assert s.loc["c", "delta"] == pytest.approx(4 / 7)
    assert s["sufficient"].tolist() == [True, True, False]
    assert np.isnan(s.loc["c", "seed_rank"]) and set(s["seed_rank"].dropna()) == {1.0, 2.0}
    # pair a & b: rows 0 and 2, both wins -> WR 1.0; synergy = 1.0 - (0.75 + 0.75) / 2
    ab = r.combos.loc["a & b"]
    assert (ab["n_pass"], ab["wins_pass"], ab["wr_pass"]) == (2, 2, 1.0)
    assert ab["synergy"] == pytest.approx(0.25)
    assert ab["wr_fail"] == pytest.approx(2 / 6)
    assert "c" not in " ".join(r.combos.index)  # only sufficient gates are combined
    rec = r.recommendations.set_index("item")
    assert rec.loc["a", "action"] == "enable" and rec.loc["a & b", "action"] == "best_combo"


def test_timeouts_can_be_excluded():
    r = analyze_gates(
        tiny(), ["a", "b", "c"], min_n=1, confirm_share=0.5, n_perm=20, timeouts="exclude"
    )
    assert r.singles.loc["a", "n_fail"] == 3 and r.singles.loc["a", "wr_fail"] == pytest.approx(
        1 / 3
    )


def test_vectorised_counts_equal_pandas_loop():
    rng = np.random.default_rng(7)
    latent = rng.random(600)
    G = rng.random((600, 9)) < (0.3 + 0.4 * latent[:, None])  # correlated gates
    y = rng.random(600) < 0.3 + 0.3 * G[:, 2]
    df = pd.DataFrame(G, columns=[f"g{i}" for i in range(9)]).assign(win=y)
    for r in (1, 2, 3):
        combos = np.array(list(combinations(range(9), r)))
        combos = combos[:, ::-1] if r > 1 else combos  # member order must not matter
        n, w = combination_counts(G, y, combos)
        for k, c in enumerate(combos):
            mask = np.logical_and.reduce([df[f"g{i}"] for i in c])
            assert n[k] == int(mask.sum()) and w[k] == int(df.loc[mask, "win"].sum())


def test_bh_matches_scipy():
    p = np.random.default_rng(1).random(200) ** 3
    np.testing.assert_allclose(bh_qvalues(p), false_discovery_control(p), rtol=1e-12)
    with_nan = np.concatenate([p[:50], [np.nan]])
    q = bh_qvalues(with_nan)
    assert np.isnan(q[-1])
    np.testing.assert_allclose(q[:50], false_discovery_control(p[:50]), rtol=1e-12)


def test_wilson_hand_case():
    # 8 wins of 10: centre (0.8 + 1.96^2/20) / (1 + 1.96^2/10), half-width by hand
    lo, hi = wilson_interval(np.array([8]), np.array([10]))
    assert lo[0] == pytest.approx(0.4902, abs=1e-4) and hi[0] == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(np.array([0]), np.array([0]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])


def phantoms(make, seeds, n_bars=100_000) -> pd.DataFrame:
    frames = []
    for seed in seeds:
        candles = make(seed, n_bars)
        signals = generate_signals(candles, "scalp")
        out = simulate(candles, signals)
        frames.append(signals.merge(out[[S.SIGNAL_ID, S.OUTCOME]], on=S.SIGNAL_ID))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("seeds", [(1, 2), (3, 4)])
def test_null_market_confirms_nothing_while_seed_finds_good_gates(seeds):
    df = phantoms(lambda s, n: null_market(n_bars=n, seed=s, symbol=f"NULL{s}"), seeds)
    assert len(df) > 10_000
    r = analyze_gates(df, GATE_COLUMNS)
    assert not r.singles["confirmed"].any() and not r.combos["confirmed"].any()
    rec = r.recommendations
    good = rec[(rec["action"] == "enable") & (rec["delta"] > 0)]
    assert len(good) >= 3  # the seed still recommends "good" gates...
    assert not rec["confirmed"].any()  # ...none of which holds up
    assert r.null["p_value"].iloc[0] > 0.05
    assert "No gate survives" in explain_null(r) and r.notes == explain_null(r)


def test_planted_volume_edge_is_confirmed_and_ranked_first():
    vol = edge("volume_momentum")
    assert vol.threshold == 2.0  # volume >= 2x the 20-bar mean: the scalp gate vol_200
    df = phantoms(
        lambda s, n: make_market(n_bars=n, seed=s, symbol=f"VOL{s}", edges=(vol,), trend_drift=0.0),
        (1, 2),
    )
    r = analyze_gates(df, GATE_COLUMNS)
    s = r.singles
    assert s.loc["vol_200", "confirmed"] and s.loc["vol_200", "rank"] == 1
    assert s.loc["vol_200", "q_value"] < 0.01 and r.null["p_value"].iloc[0] < 0.05


def test_bad_inputs_raise_schema_errors_with_a_fix():
    df = tiny()
    with pytest.raises(S.SchemaError, match="missing column.*Fix"):
        analyze_gates(df, ["a", "nope"], min_n=2)
    with pytest.raises(S.SchemaError, match="not boolean.*Fix"):
        analyze_gates(df.assign(a=df["a"].astype(int)), ["a", "b"], min_n=2)
    with pytest.raises(S.SchemaError, match="Fix"):
        analyze_gates(df.assign(**{S.OUTCOME: ["tp"] + ["win"] * 7}), ["a", "b"], min_n=2)
    with pytest.raises(S.SchemaError, match="simulate more"):
        analyze_gates(df, ["a", "b"], min_n=20)


def _bh_by_hand(p) -> np.ndarray:
    """The Benjamini-Hochberg step-up the package computed by hand before it used scipy's."""
    p = np.asarray(p, float)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m:
        order = np.argsort(p[ok])
        ranked = p[ok][order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(ranked[::-1])[::-1]
        out = np.empty(m)
        out[order] = np.minimum(adj, 1.0)
        q[ok] = out
    return q


def test_bh_by_scipy_equals_the_former_hand_made_step_up():
    rng = np.random.default_rng(15)
    for trial in range(300):
        n = int(rng.integers(0, 400))
        p = rng.random(n) ** rng.uniform(0.3, 6.0)
        if trial % 3 == 0:  # tests not run
            p[rng.random(n) < 0.2] = np.nan
        if trial % 4 == 0:  # ties
            p = np.round(p, 2)
        q, ref = bh_qvalues(p), _bh_by_hand(p)
        assert np.array_equal(np.isnan(q), np.isnan(ref))
        np.testing.assert_allclose(q, ref, rtol=1e-12, atol=1e-15)
