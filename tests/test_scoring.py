"""Scorers: the calibrated ensemble, the heuristic fallback, the feature encoding."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from support import closed_scalp_dataset

from research import schema as S
from research.features import build_features, lifecycle_features
from research.phantom import simulate
from research.scoring import EnsembleScorer, HeuristicScorer, encode, encoded_columns
from research.signals import generate_signals
from research.splits import time_train_test_split
from research.synthetic import edge, make_market, null_market

FAST = {"n_estimators": 20, "gb_max_iter": 20, "hidden_layer_sizes": (8,), "n_splits": 3}


@pytest.fixture(scope="module")
def planted():
    # volume_momentum fires on ~9% of bars, so it separates signals (body_momentum fires on
    # most bars and mostly shifts the overall win rate)
    market = make_market(
        n_bars=40_000, seed=3, trend_drift=0.0, edges=(edge("volume_momentum", drift=0.5),)
    )
    return closed_scalp_dataset(market)


@pytest.fixture(scope="module")
def null():
    return closed_scalp_dataset(null_market(n_bars=40_000, seed=3))


def oos_auc(data, **params):
    sig, out, x, y = data
    train, test = time_train_test_split(sig[S.SIGNAL_TIME], out[S.EXIT_TIME], test_size=0.3)
    model = EnsembleScorer(**FAST, **params).fit(
        x.iloc[train],
        y[train],
        signal_times=sig[S.SIGNAL_TIME].iloc[train],
        exit_times=out[S.EXIT_TIME].iloc[train],
    )
    return roc_auc_score(y[test], model.predict_proba(x.iloc[test])[:, 1]), model


def test_planted_edge_is_learnt_out_of_sample_and_null_market_is_not(planted, null):
    auc_edge, model = oos_auc(planted)
    assert auc_edge > 0.54, auc_edge
    # On a null market P(win) still varies (a tight stop meets more bars that span both
    # levels, which the simulator settles SL-first), so a win-AUC above 0.5 is no finding:
    # what must be 0 is the link between the score and the trade's R.
    sig, out, x, y = null
    train, test = time_train_test_split(sig[S.SIGNAL_TIME], out[S.EXIT_TIME], test_size=0.3)
    null_model = EnsembleScorer(**FAST).fit(
        x.iloc[train],
        y[train],
        signal_times=sig[S.SIGNAL_TIME].iloc[train],
        exit_times=out[S.EXIT_TIME].iloc[train],
    )
    p = null_model.predict_proba(x.iloc[test])[:, 1]
    r = out[S.REALIZED_RR].to_numpy()[test]
    top = p >= np.quantile(p, 2 / 3)
    se = r.std(ddof=1) * np.sqrt(1 / top.sum() + 1 / len(r))
    assert abs(r[top].mean() - r.mean()) < 2.5 * se, (r[top].mean(), r.mean(), se)
    assert model.calibration_ == "oof" and model.calibrator_ is not None
    scores = model.score_signals(planted[2])
    assert scores.min() >= 0 and scores.max() <= 100


def test_fit_returns_self_and_learnt_state_ends_in_underscore(planted):
    _, _, x, y = planted
    model = EnsembleScorer(**FAST, nn_enabled=False, calibration="in_sample")
    assert model.fit(x.iloc[:400], y[:400]) is model
    assert set(model.members_) == {"rf", "gb"}  # the NN can be disabled
    assert model.calibration_ == "in_sample"
    assert model.encoded_feature_names() == encoded_columns(model.feature_names_)
    small = EnsembleScorer(**FAST).fit(x.iloc[:40], y[:40])
    assert small.calibrator_ is None and small.calibration_ == "none"  # < 50 records: seed


def test_missing_and_nan_features_are_scored_never_crash(planted):
    _, _, x, y = planted
    model = EnsembleScorer(**FAST).fit(x.iloc[:300], y[:300])
    holes = x.iloc[:5].copy()
    holes.iloc[0, :10] = np.nan
    holes = holes.drop(columns=["atr_pct"])  # a whole feature missing
    p = model.predict_proba(holes)[:, 1]
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()


def test_entry_model_refuses_lifecycle_features_unless_asked(btc_1h):
    sig = generate_signals(btc_1h, "trend")
    out = simulate(btc_1h, sig)
    x = build_features(btc_1h, sig).join(lifecycle_features(sig, out))
    y = (out[S.OUTCOME] == "win").to_numpy(int)
    with pytest.raises(ValueError, match="only after entry"):
        EnsembleScorer(**FAST).fit(x, y)
    leaky = EnsembleScorer(**FAST, allow_after_entry=True).fit(x, y)
    assert "tp1_hit" in leaky.feature_names_


def test_single_class_is_refused_with_a_fix(planted):
    _, _, x, _ = planted
    with pytest.raises(ValueError, match="both classes"):
        EnsembleScorer(**FAST).fit(x.iloc[:60], np.ones(60, int))


@pytest.fixture(scope="module")
def scalp_trades():
    # closed scalp trades of a default synthetic market: ~1,200 rows, about 1/3 wins
    return closed_scalp_dataset(make_market(n_bars=12_000, seed=1))


@pytest.mark.parametrize("n", [50, 300, 1000])
def test_default_ensemble_converges_on_small_and_larger_sets(scalp_trades, n):
    sig, out, x, y = scalp_trades
    assert len(y) >= 1000 and 0.2 < y[:n].mean() < 0.45
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = EnsembleScorer().fit(
            x.iloc[:n],
            y[:n],
            signal_times=sig[S.SIGNAL_TIME].iloc[:n],
            exit_times=out[S.EXIT_TIME].iloc[:n],
        )
    nn = model.members_["nn"][-1]
    assert model.calibration_ == "oof" and nn.n_iter_ < nn.max_iter
    # early stopping needs a real validation split (500+ rows); below, L-BFGS
    assert (nn.solver, nn.early_stopping) == (("adam", True) if n >= 500 else ("lbfgs", False))


def test_encoding_fixed_vocabulary_unknown_and_missing():
    frame = pd.DataFrame({"session": ["us", "bogus", None], "atr_pct": [1.0, np.nan, 2.0]})
    m = encode(frame, ["session", "atr_pct", "rsi_14"])
    assert encoded_columns(["session", "atr_pct", "rsi_14"]) == [
        "session=asia",
        "session=london",
        "session=overlap",
        "session=us",
        "atr_pct",
        "rsi_14",
    ]
    np.testing.assert_array_equal(m[:, :4], [[0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert np.isnan(m[1, 4]) and np.isnan(m[:, 5]).all()
    one = encode({"session": "london"}, ["session", "atr_pct"])
    assert one.shape == (1, 5) and one[0, 1] == 1 and np.isnan(one[0, 4])


class TestHeuristic:
    def test_scores_stay_in_range_for_any_input(self, btc_1h):
        sig = generate_signals(btc_1h, "trend")
        x = build_features(btc_1h, sig)
        s = HeuristicScorer().fit(x).score_signals(x)
        assert s.min() >= 0 and s.max() <= 100 and s.std() > 1
        assert HeuristicScorer().score_signals({})[0] == 50.0  # nothing known: neutral
        weird = {"ema_stack_score": np.inf, "ema_slope_atr": np.nan, "session": "mars"}
        assert 0 <= HeuristicScorer().score_signals(weird)[0] <= 100

    def test_the_rule_is_side_aware_and_hand_computable(self):
        long = {
            "ema_stack_score": 3,
            "ema_slope_atr": 0.05,
            "breakout_dist_atr": 0.5,
            "range_position": 0.75,
            "is_long": 1.0,
        }
        # 50 + 12.5 * (1 + 0.5 + 0.5 + 0.5) = 81.25
        assert HeuristicScorer().score_signals(long)[0] == pytest.approx(81.25)
        short = {**long, "is_long": 0.0}  # range position 0.75 is against a short
        assert HeuristicScorer().score_signals(short)[0] == pytest.approx(81.25 - 12.5)


@parametrize_with_checks(
    [EnsembleScorer(n_estimators=5, gb_max_iter=5, hidden_layer_sizes=(4,), n_splits=2)],
)
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)


def test_centred_isotonic_calibrates_like_isotonic_and_keeps_the_ranking():
    from sklearn.isotonic import IsotonicRegression

    from research.scoring.isotonic import centered_isotonic

    rng = np.random.default_rng(0)
    raw = rng.random(400)
    target = (rng.random(400) < 0.2 + 0.4 * raw).astype(int)
    cal = centered_isotonic(raw, target)
    step = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(raw, target)
    grid = np.linspace(0, 1, 501)
    p = cal.predict(grid)
    assert (np.diff(p) >= 0).all() and p.min() >= 0 and p.max() <= 1
    # same calibration on average (block means are kept), far fewer ties than the step fit
    assert abs(cal.predict(raw).mean() - step.predict(raw).mean()) < 0.01
    assert len(np.unique(cal.predict(raw))) > 5 * len(np.unique(step.predict(raw)))
    fresh = rng.random(2000)
    y = (rng.random(2000) < 0.2 + 0.4 * fresh).astype(int)
    assert roc_auc_score(y, cal.predict(fresh)) == pytest.approx(roc_auc_score(y, fresh), abs=2e-3)
    # predict() is np.interp over the knots the ONNX path uses
    np.testing.assert_allclose(p, np.interp(grid, cal.X_thresholds_, cal.y_thresholds_))
