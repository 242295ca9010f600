"""Cheap retrains at the seed's cadence: prequential calibration and warm (incremental) fits.

What must hold: a warm fit renews a known share of the forest and leaves the model in force
untouched; prequential calibration learns the map from decision-time scores and is calibrated
where the truth is known; a replay at the seed's cadence retrains exactly when the seed says,
takes both paths, and never fails silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from research import schema as S
from research.pipeline import load_market, run_signals_and_phantoms
from research.replay import ReplayConfig, replay
from research.scoring import EnsembleScorer, ScorerConfig
from research.scoring.online import MLScorer

SMALL = {"n_estimators": 20, "gb_max_iter": 20, "hidden_layer_sizes": (8,), "n_splits": 3}


def _logistic_rows(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows whose true P(win) is known: sigmoid(1.5 x0 - x1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    p = 1.0 / (1.0 + np.exp(-(1.5 * X[:, 0] - X[:, 1])))
    return pd.DataFrame(X), (rng.random(n) < p).astype(int), p


def test_warm_fit_renews_a_share_of_the_forest_and_leaves_the_model_in_force_untouched():
    X, y, _ = _logistic_rows(1200, 0)
    first = EnsembleScorer(**SMALL).fit(X.iloc[:1000], y[:1000])
    before = first.predict_proba(X)[:, 1].copy()
    old_trees = list(first.members_["rf"][-1].estimators_)
    old_coefs = [c.copy() for c in first.members_["nn"][-1].coefs_]
    warm = EnsembleScorer(**SMALL).fit(X.iloc[:1050], y[:1050], warm_from=first)
    assert warm.fit_path_ == "warm" and warm.generation_ == 1 and warm.full_fit_rows_ == 1000
    trees = warm.members_["rf"][-1].estimators_
    k = round(0.1 * 20)
    assert len(trees) == 20
    assert [id(t) for t in trees[:-k]] == [id(t) for t in old_trees[k:]]  # the oldest went
    assert not {id(t) for t in trees[-k:]} & {id(t) for t in old_trees}  # k new trees
    # the model in force is not modified (it keeps scoring until the swap)
    assert [id(t) for t in first.members_["rf"][-1].estimators_] == [id(t) for t in old_trees]
    for a, b in zip(first.members_["nn"][-1].coefs_, old_coefs, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.predict_proba(X)[:, 1], before)
    # the net went on training from where it was: changed, but not restarted
    moved = [
        np.abs(a - b).max() for a, b in zip(warm.members_["nn"][-1].coefs_, old_coefs, strict=True)
    ]
    assert 0 < max(moved) < 1.0


def test_warm_fit_becomes_full_after_growth_or_a_change_of_settings():
    X, y, _ = _logistic_rows(1400, 1)
    first = EnsembleScorer(**SMALL).fit(X.iloc[:1000], y[:1000])
    grown = EnsembleScorer(**SMALL).fit(X.iloc[:1200], y[:1200], warm_from=first)
    assert grown.fit_path_ == "full" and grown.full_fit_rows_ == 1200  # 20 % more rows
    other = EnsembleScorer(**(SMALL | {"n_estimators": 30})).fit(
        X.iloc[:1050], y[:1050], warm_from=first
    )
    assert other.fit_path_ == "full"
    off = EnsembleScorer(**SMALL, refresh=0.0).fit(X.iloc[:1050], y[:1050], warm_from=first)
    assert off.fit_path_ == "full"
    # a chain of warm fits is deterministic: the same history gives the same model
    a = EnsembleScorer(**SMALL).fit(X.iloc[:1050], y[:1050], warm_from=first)
    b = EnsembleScorer(**SMALL).fit(X.iloc[:1050], y[:1050], warm_from=first)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_prequential_calibration_uses_decision_time_scores_and_is_calibrated():
    """Known answer: the true P(win) of every row. Decision-time scores come from a model fitted
    on earlier rows only; the calibrated scores of the final model must match the truth."""
    X, y, p = _logistic_rows(6000, 2)
    decision_raw = np.full(len(y), np.nan)
    for start in range(1000, len(y), 500):  # an earlier model scores the next block
        m = EnsembleScorer(**SMALL, calibration="none").fit(X.iloc[:start], y[:start])
        decision_raw[start : start + 500] = m.predict_raw(X.iloc[start : start + 500])
    model = EnsembleScorer(**SMALL).fit(X.iloc[:5000], y[:5000], decision_raw=decision_raw[:5000])
    assert model.calibration_ == "prequential"
    seen = np.isfinite(decision_raw[:5000])
    seen[np.flatnonzero(seen)[:-2000]] = False  # the latest 2,000 decision-time scores
    assert np.isfinite(model.oof_scores_[seen]).all() and np.isnan(model.oof_scores_[~seen]).all()
    # the out-of-sample scores of the training rows are the decision-time ones, re-mapped
    np.testing.assert_allclose(
        model.oof_scores_[seen], model.scores_from_raw(decision_raw[:5000][seen]), atol=1e-9
    )
    q = model.predict_proba(X.iloc[5000:])[:, 1]
    bins = pd.qcut(q, 5, labels=False, duplicates="drop")
    truth = pd.Series(p[5000:]).groupby(bins).mean().to_numpy()
    got = pd.Series(q).groupby(bins).mean().to_numpy()
    assert np.abs(got - truth).max() < 0.06, (got, truth)  # out of sample, per fifth of scores
    raw = model.predict_raw(X.iloc[5000:])
    assert np.sqrt(np.mean((q - p[5000:]) ** 2)) < np.sqrt(np.mean((raw - p[5000:]) ** 2))
    # too few decision-time scores: out-of-fold instead
    few = np.full(5000, np.nan)
    few[-100:] = decision_raw[4900:5000]
    assert (
        EnsembleScorer(**SMALL).fit(X.iloc[:5000], y[:5000], decision_raw=few).calibration_ == "oof"
    )
    with pytest.raises(ValueError, match="decision_raw has"):
        EnsembleScorer(**SMALL).fit(X.iloc[:100], y[:100], decision_raw=np.zeros(3))


def test_online_scorer_passes_decision_scores_and_the_model_in_force():
    X, y, _ = _logistic_rows(700, 3)
    model = EnsembleScorer(n_estimators=20, gb_max_iter=20)
    cfg = ScorerConfig(model=model, retrain_every=50, fast_path=False)
    scorer = MLScorer("scalp", config=cfg)
    for i in range(len(y)):
        feats = X.iloc[[i]]
        _, source, raw = scorer.score_frame(feats, return_raw=True)
        assert np.isnan(raw[0]) == (source[0] == "heuristic")
        scorer.record_outcome(
            {S.SIGNAL_ID: f"s{i}"},
            "win" if y[i] else "loss",
            1.0,
            features=feats.iloc[0].to_dict(),
            decision_raw=raw[0],
        )
    assert scorer.model_version == 14  # 50, 100, ..., 700: none failed
    stored = [t[S.DECISION_RAW] for t in scorer.trades]
    assert stored[0] is None and stored[-1] == float(np.float32(stored[-1]))
    assert scorer.last_fit["calibration"] == "prequential"
    assert scorer.last_fit["path"] in ("warm", "full")


@pytest.fixture(scope="module")
def seed_cadence():
    candles = load_market(n_bars=4000, seed=5)
    study = run_signals_and_phantoms(candles, ["scalp"], progress=False)
    model = EnsembleScorer(n_estimators=20, gb_max_iter=20)
    cfg = ReplayConfig(scorer=ScorerConfig(model=model), n_boot=100)
    return replay(candles, ["scalp"], cfg, study=study, progress=False)


def test_replay_at_the_seeds_cadence_retrains_exactly_when_the_seed_says(seed_cadence):
    r = seed_cadence.retrains
    assert len(r) >= 15
    # retrain k happens at 50 k learnt outcomes: a failed retrain would break the sequence
    assert r["n_trades"].tolist() == [50 * v for v in r[S.MODEL_VERSION]]
    assert set(r["fit_path"]) == {"full", "warm"}
    assert set(r["calibration"]) == {"oof", "prequential"}
    # prequential only once 200 rows carry a decision-time model score
    first_pq = r.loc[r["calibration"] == "prequential", "n_trades"].min()
    assert first_pq >= 200 + 30
    d = seed_cadence.decisions
    assert (d[S.DECISION_RAW].notna() == (d[S.SCORE_SOURCE] == "ml")).all()


def test_a_model_without_raw_scores_still_trains_and_scores():
    """A user's model (no predict_raw): the replay falls back to its scores, nothing fails."""

    class Plain:
        def fit(self, X, y, *, signal_times=None, exit_times=None):
            self.m = LogisticRegression().fit(X.select_dtypes("number").fillna(0), y)
            return self

        def score_signals(self, X):
            return 100 * self.m.predict_proba(X.select_dtypes("number").fillna(0))[:, 1]

    candles = load_market(n_bars=2500, seed=6)
    study = run_signals_and_phantoms(candles, ["scalp"], progress=False)
    res = replay(
        candles,
        ["scalp"],
        ReplayConfig(n_boot=50),
        study=study,
        progress=False,
        model_factory=Plain,
    )
    assert len(res.retrains) >= 3 and (res.decisions[S.SCORE_SOURCE] == "ml").any()
    assert res.decisions[S.DECISION_RAW].isna().all()
