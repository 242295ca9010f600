"""Replay: the online loop in event time — exact batching, point in time, determinism, uplift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from research import schema as S
from research.analysis.uplift import block_bootstrap_uplift, filter_uplift, replay_summary
from research.candles import load_folder
from research.pipeline import load_market, run_signals_and_phantoms
from research.replay import ReplayConfig, replay
from research.replay_reference import replay_one_by_one
from research.scoring import EnsembleScorer, HeuristicScorer, ScorerConfig

LIGHT = ScorerConfig(
    model=EnsembleScorer(n_estimators=10, gb_max_iter=10, nn_enabled=False), retrain_every=100
)
CONFIG = ReplayConfig(scorer=LIGHT, exploration=0.1, seed=7, n_boot=200)


@pytest.fixture(scope="module")
def market():
    candles = load_market(n_bars=4000, seed=3)
    return candles, run_signals_and_phantoms(candles, progress=False)


@pytest.fixture(scope="module")
def result(market):
    candles, study = market
    return replay(candles, config=CONFIG, study=study, progress=False)


def test_replay_without_a_study_computes_the_same_one(market, result):
    """One call from candles: the study ``run_signals_and_phantoms`` would give is computed."""
    candles, _ = market
    alone = replay(candles, config=CONFIG, progress=False)
    pd.testing.assert_frame_equal(alone.decisions, result.decisions)


def test_batched_replay_equals_the_plain_event_loop(market, result):
    candles, study = market
    for strategy in ("trend", "scalp"):
        ref, ref_scorer = replay_one_by_one(candles, study, strategy, CONFIG)
        got = result.decisions.set_index(S.SIGNAL_ID).loc[ref[S.SIGNAL_ID]].reset_index()
        assert ref[S.MODEL_VERSION].max() >= 3, "the comparison must span several retrains"
        assert ref[S.THRESHOLD_SOURCE].eq("bucket").any()
        np.testing.assert_allclose(got[S.ML_SCORE], ref[S.ML_SCORE], rtol=0, atol=1e-9)
        np.testing.assert_allclose(got[S.THRESHOLD], ref[S.THRESHOLD], rtol=0, atol=1e-9)
        for col in (
            S.THRESHOLD_SOURCE,
            S.MODEL_VERSION,
            S.THRESHOLD_VERSION,
            S.PASSED,
            S.WAS_EXECUTED,
        ):
            assert got[col].tolist() == ref[col].tolist(), col
        final = result.scorers[strategy]
        assert final.model_version == ref_scorer.model_version
        assert final.completed_trades == ref_scorer.completed_trades
        assert final.ev_buckets.keys() == ref_scorer.ev_buckets.keys()
        for key, bucket in ref_scorer.ev_buckets.items():
            assert final.ev_buckets[key] == pytest.approx(bucket)


def test_no_decision_uses_an_outcome_that_closed_after_it(market):
    candles, study = market
    fits = []

    class Spy(HeuristicScorer):
        """Records what each training really saw (rows and the latest exit time)."""

        def fit(self, X, y=None, signal_times=None, exit_times=None):
            fits.append((len(X), pd.Timestamp(max(exit_times))))
            return super().fit(X, y)

    res = replay(
        candles, ("trend", "scalp"), CONFIG, study=study, model_factory=Spy, progress=False
    )
    assert len(fits) == len(res.retrains) >= 4
    assert res.retrains["n_trades"].tolist() == [n for n, _ in fits]
    assert res.retrains["train_until"].tolist() == [t for _, t in fits]
    dec = res.decisions
    used = dec.merge(res.retrains, on=["strategy", S.MODEL_VERSION], how="inner")
    assert len(used) == (dec[S.MODEL_VERSION] > 0).sum() > 0
    assert (used["train_until"] < used[S.SIGNAL_TIME]).all()
    # Thresholds: recompute each fit's data cut-off from the decisions themselves.
    closed = dec.loc[~dec[S.CENSORED]]
    fits_t = res.threshold_fits
    for row in fits_t.itertuples():
        exits = np.sort(closed.loc[closed[S.STRATEGY] == row.strategy, S.EXIT_TIME].to_numpy())
        assert exits[row.n_trades - 1] == row.data_until
        later = dec[
            (dec[S.STRATEGY] == row.strategy) & (dec[S.THRESHOLD_VERSION] == row.threshold_version)
        ]
        assert (later[S.SIGNAL_TIME] > row.data_until).all()
    assert len(fits_t) >= 4


def test_replay_is_deterministic_and_logs_exploration(market, result):
    candles, study = market
    again = replay(candles, config=CONFIG, study=study, progress=False)
    pd.testing.assert_frame_equal(again.decisions, result.decisions)
    pd.testing.assert_frame_equal(again.uplift, result.uplift)
    dec = result.decisions
    below = dec.loc[~dec[S.PASSED]]
    share = below[S.EXPLORED].mean()
    assert 0.07 < share < 0.13  # 10 % of several thousand below-threshold signals
    assert (dec[S.WAS_EXECUTED] == (dec[S.PASSED] | dec[S.EXPLORED])).all()
    assert set(dec.loc[dec[S.PASSED], S.P_EXECUTE]) == {1.0}
    assert set(below[S.P_EXECUTE]) == {0.1}
    other = replay(
        candles,
        config=ReplayConfig(scorer=LIGHT, exploration=0.1, seed=8, n_boot=200),
        study=study,
        progress=False,
    )
    assert (other.decisions[S.EXPLORED] != dec[S.EXPLORED]).any()


def test_executed_trades_pay_costs_and_phantoms_do_not(market, result):
    candles, study = market
    dec = result.decisions.set_index(S.SIGNAL_ID)
    gross = study.outcomes.set_index(S.SIGNAL_ID).loc[dec.index]
    closed = ~dec[S.CENSORED]
    ph, ex = closed & ~dec[S.WAS_EXECUTED], closed & dec[S.WAS_EXECUTED]
    assert ex.sum() > 20 and ph.sum() > 20
    np.testing.assert_allclose(dec.loc[ph, S.REALIZED_RR], gross.loc[ph, S.REALIZED_RR])
    assert (dec.loc[ex, S.REALIZED_RR] < gross.loc[ex, S.REALIZED_RR]).all()
    np.testing.assert_allclose(dec.loc[ex, S.REALIZED_RR], dec.loc[ex, S.RR_IF_EXECUTED])


def test_retrains_follow_the_seed_rule_and_versions_only_grow(result):
    for strategy, scorer in result.scorers.items():
        r = result.retrains[result.retrains["strategy"] == strategy]
        assert len(r) == scorer.model_version
        assert r["n_trades"].tolist() == [100 * (k + 1) for k in range(len(r))]
        versions = result.decisions.loc[result.decisions[S.STRATEGY] == strategy]
        assert versions[S.MODEL_VERSION].is_monotonic_increasing
        heur = versions[S.MODEL_VERSION] == 0
        assert (versions.loc[heur, S.SCORE_SOURCE] == "heuristic").all()
    assert result.uplift.loc["all", "retrains"] == len(result.retrains)


def test_bad_settings_say_how_to_fix_them(market):
    candles, study = market
    with pytest.raises(ValueError, match="exploration must be a share"):
        ReplayConfig(exploration=1.5)
    with pytest.raises(ValueError, match="unknown strategies"):
        replay(candles, ("trend", "momentum"), CONFIG, study=study, progress=False)


# ---------------------------------------------------------------------------- uplift
def test_uplift_by_hand():
    r = np.array([1.0, -1.0, 2.0, -1.0])
    passed = np.array([True, False, True, False])
    res = block_bootstrap_uplift(r, passed, n_boot=50, block=1)
    assert res["uplift"] == pytest.approx(1.5 - 0.25)
    assert res["n"] == 4 and res["n_passed"] == 2
    none = block_bootstrap_uplift(r, np.zeros(4, bool))
    assert np.isnan(none["uplift"]) and np.isnan(none["ci_low"])


def test_uplift_interval_covers_a_known_edge_and_excludes_zero_only_when_real():
    rng = np.random.default_rng(0)
    n = 4000
    passed = rng.random(n) < 0.3
    r_edge = np.where(passed, 0.3, 0.0) + rng.normal(0, 1, n)  # passed trades earn +0.3 R
    res = block_bootstrap_uplift(r_edge, passed, n_boot=2000, seed=1)
    true = 0.3 * (1 - passed.mean())
    assert res["ci_low"] < true < res["ci_high"]
    assert res["ci_low"] > 0
    hits = 0
    for seed in range(40):  # no edge: the 95 % interval covers 0 most of the time
        r0 = np.random.default_rng(100 + seed).normal(0, 1, n)
        out = block_bootstrap_uplift(r0, passed, n_boot=300, seed=seed)
        hits += out["ci_low"] <= 0 <= out["ci_high"]
    assert hits >= 34


def test_summary_sets_are_consistent(result):
    s = replay_summary(result.decisions).set_index(["strategy", "set"])
    dec = result.decisions.loc[~result.decisions[S.CENSORED]]
    assert s.loc[("all", "all"), "trades"] == len(dec)
    for key in ("trend", "scalp", "all"):
        assert (
            s.loc[(key, "executed"), "trades"] + s.loc[(key, "phantoms"), "trades"]
            == (s.loc[(key, "all"), "trades"])
        )
    assert s.loc[("all", "executed"), "total_r"] == pytest.approx(
        dec.loc[dec[S.WAS_EXECUTED], S.REALIZED_RR].sum()
    )
    up = filter_uplift(result.decisions, n_boot=100)
    assert up.loc["all", "n"] == len(dec)
    assert up.loc["all", "uplift"] == pytest.approx(
        up.loc["all", "mean_r_passed"] - up.loc["all", "mean_r_all"]
    )


# ---------------------------------------------------------------------------- real data
@pytest.mark.slow
def test_replay_over_all_five_minute_files_trains_several_times(data_dir):
    candles = load_folder(data_dir, pattern="*_5m.csv.gz")
    assert len(candles) == 5
    model = EnsembleScorer(n_estimators=20, gb_max_iter=20, nn_enabled=False)
    light = ScorerConfig(model=model, retrain_every=5000)
    res = replay(candles, S.STRATEGIES, ReplayConfig(scorer=light, n_boot=300), progress=False)
    assert set(res.decisions[S.STRATEGY]) == set(S.STRATEGIES)
    assert len(res.decisions) > 40_000
    assert len(res.retrains) >= 8 and (res.retrains.groupby("strategy").size() >= 1).all()
    used = res.decisions.merge(res.retrains, on=["strategy", S.MODEL_VERSION])
    assert (used["train_until"] < used[S.SIGNAL_TIME]).all()
    up = res.uplift.loc["all"]
    assert np.isfinite([up["uplift"], up["ci_low"], up["ci_high"]]).all()
    assert up["ci_low"] <= up["uplift"] <= up["ci_high"]
    assert (res.decisions[S.SCORE_SOURCE] == "ml").mean() > 0.6  # heuristic until 5000
