"""ONNX fast path: same scores as the fitted EnsembleScorer, one signal or many; clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression
from support import closed_scalp_dataset
from threadpoolctl import threadpool_limits

from research import schema as S
from research.errors import OnnxModelError
from research.scoring import EnsembleScorer, FastScorer, encode, to_onnx
from research.synthetic import edge, make_market

SMALL = {"n_estimators": 30, "gb_max_iter": 30, "hidden_layer_sizes": (8,), "n_splits": 3}
TOL = 1e-4  # on the 0-100 score
N_TRAIN = 1500


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # HistGradientBoosting's OpenMP threads stall for seconds per call on a 2-core machine
    # whenever another process holds a core; one thread keeps this module fast and steady
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def data():
    market = make_market(
        n_bars=16_000, seed=5, trend_drift=0.0, edges=(edge("volume_momentum", drift=0.5),)
    )
    sig, out, x, y = closed_scalp_dataset(market)
    assert len(x) > N_TRAIN + 200, len(x)
    return sig, out, x, y


@pytest.fixture(
    scope="module",
    params=[(True, "oof"), (False, "oof"), (True, "none"), (False, "none")],
    ids=lambda p: f"nn={p[0]}-{p[1]}",
)
def fitted(request, data):
    sig, out, x, y = data
    nn, calibration = request.param
    train = x.iloc[:N_TRAIN].copy()
    gaps = ["rsi_14", "adx_14", "volume_zscore"]  # missing in training: indicator columns
    train[gaps] = train[gaps].mask(np.random.default_rng(0).random((N_TRAIN, 3)) < 0.1)
    model = EnsembleScorer(**SMALL, nn_enabled=nn, calibration=calibration).fit(
        train,
        y[:N_TRAIN],
        signal_times=sig[S.SIGNAL_TIME].iloc[:N_TRAIN],
        exit_times=out[S.EXIT_TIME].iloc[:N_TRAIN],
    )
    assert ("nn" in model.members_) == nn
    assert len(model.members_["rf"][0].indicator_.features_) == len(gaps)
    assert (model.calibrator_ is not None) == (calibration == "oof")
    return model, FastScorer.from_model(model)


def holed(x: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Held-out rows with NaN features, absent columns and unknown/missing categories."""
    rng = np.random.default_rng(seed)
    h = x.iloc[N_TRAIN:].reset_index(drop=True).copy()
    numeric = [c for c in h.columns if pd.api.types.is_float_dtype(h[c])]
    h[numeric] = h[numeric].mask(rng.random((len(h), len(numeric))) < 0.3)
    h.loc[0, numeric] = np.nan  # a row with every number missing
    h["session"] = h["session"].astype(object)
    h.loc[h.index[::3], "session"] = "mars"  # unknown category: all-zero block
    h.loc[h.index[1::5], "session"] = None
    return h.drop(columns=["atr_pct", "trend_state"])  # a numeric and a categorical absent


def test_onnx_scores_match_sklearn_on_held_out_rows(fitted, data):
    model, fast = fitted
    x = data[2]
    for frame in (x.iloc[N_TRAIN:], holed(x)):
        expected, got = model.score_signals(frame), fast.score_signals(frame)
        assert got.shape == expected.shape == (len(frame),)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    assert np.ptp(expected) > 1  # the scores vary: agreement is not trivially on a constant


def test_score_one_equals_score_signals_for_single_mappings(fitted, data):
    model, fast = fitted
    records = holed(data[2], seed=1).iloc[:40].to_dict("records")
    odd = dict(records[2])  # unusual value types take encode()'s pandas path
    odd.update(
        rsi_14=np.float32(55.5),
        hour=np.int64(13),
        is_long=True,
        adx_14="21.5",
        ema_slope_atr="n/a",
        volume_ratio=pd.NA,
        session=np.str_("london"),
        volatility_regime=3,
        volume_state=float("nan"),
    )
    records += [odd, {}, {"session": "us", "not_a_feature": 1.0}]
    for rec in records:
        expected = model.score_signals(pd.DataFrame([rec]))[0]
        assert fast.score_one(rec) == pytest.approx(expected, abs=TOL), rec
        assert fast.score_signals(rec)[0] == pytest.approx(expected, abs=TOL)


def test_bytes_round_trip_gives_the_same_scores(fitted, data):
    model, fast = fitted
    blob = fast.onnx_bytes
    assert isinstance(blob, bytes) and blob == to_onnx(model)  # the export is deterministic
    cal = fast.calibration
    again = FastScorer(
        blob,
        feature_names=model.feature_names_,
        calib_x=None if cal is None else cal[0],
        calib_y=None if cal is None else cal[1],
    )
    frame = holed(data[2], seed=2)
    np.testing.assert_array_equal(again.score_signals(frame), fast.score_signals(frame))
    if model.calibrator_ is not None:
        np.testing.assert_array_equal(cal[0], model.calibrator_.X_thresholds_)
        # np.interp over the thresholds is IsotonicRegression.predict, clipped outside
        p = np.linspace(-0.5, 1.5, 2001)
        np.testing.assert_allclose(np.interp(p, *cal), model.calibrator_.predict(p), atol=1e-12)


def test_graph_is_the_members_mean_in_float64(fitted, data):
    model, fast = fitted
    raw = FastScorer(fast.onnx_bytes, feature_names=model.feature_names_)  # no calibration
    frame = holed(data[2], seed=3)
    matrix = encode(frame, model.feature_names_)
    mean = np.mean([m.predict_proba(matrix)[:, 1] for m in model.members_.values()], axis=0)
    # float32 trees would be ~1e-8 off, which a steep isotonic step blows up past TOL
    np.testing.assert_allclose(raw.score_signals(frame) / 100, mean, rtol=0, atol=1e-12)


def test_calibration_is_isotonic_predict_clipped_at_both_ends(fitted, data):
    model, fast = fitted
    frame, y = data[2].iloc[N_TRAIN:], data[3][N_TRAIN:]
    raw = FastScorer(fast.onnx_bytes, feature_names=model.feature_names_).score_signals(frame)
    raw = raw / 100
    inner = (raw > np.quantile(raw, 0.2)) & (raw < np.quantile(raw, 0.8))
    iso = IsotonicRegression(out_of_bounds="clip").fit(raw[inner], y[inner])
    assert (raw < iso.X_thresholds_[0]).any() and (raw > iso.X_thresholds_[-1]).any()
    calibrated = FastScorer(
        fast.onnx_bytes,
        feature_names=model.feature_names_,
        calib_x=iso.X_thresholds_,
        calib_y=iso.y_thresholds_,
    )
    np.testing.assert_allclose(
        calibrated.score_signals(frame), 100 * iso.predict(raw), rtol=0, atol=1e-9
    )


def test_corrupted_or_mismatched_blob_is_a_clear_error(fitted):
    model, fast = fitted
    blob = fast.onnx_bytes
    for bad in (b"not an onnx model", blob[: len(blob) // 2]):
        with pytest.raises(
            OnnxModelError,
            match=r"re-export the model with research\.scoring"
            r"\.fast\.to_onnx",
        ):
            FastScorer(bad, feature_names=model.feature_names_)
    assert issubclass(OnnxModelError, ValueError)
    other = helper.make_model(
        helper.make_graph(  # valid ONNX, but not a scorer graph
            [helper.make_node("Identity", ["A"], ["B"])],
            "g",
            [helper.make_tensor_value_info("A", TensorProto.DOUBLE, [None, 2])],
            [helper.make_tensor_value_info("B", TensorProto.DOUBLE, [None, 2])],
        ),
        ir_version=10,
        opset_imports=[helper.make_opsetid("", 21)],
    )
    with pytest.raises(OnnxModelError, match="not a scorer graph"):
        FastScorer(other.SerializeToString())
    with pytest.raises(OnnxModelError, match="feature_names encode to"):
        FastScorer(blob, feature_names=model.feature_names_[:-1])
    with pytest.raises(ValueError, match="given together"):
        FastScorer(blob, feature_names=model.feature_names_, calib_x=[0.0, 1.0])


def test_unfitted_model_is_a_clear_error():
    for export in (to_onnx, FastScorer.from_model):
        with pytest.raises(NotFittedError, match="not fitted.*Fix: call fit"):
            export(EnsembleScorer())


def test_infinity_counts_as_missing_on_both_paths(fitted, data):
    model, fast = fitted  # one rule (research.scoring.encode): +-inf is NaN, as in training
    rec = data[2].iloc[N_TRAIN].to_dict()
    missing = model.score_signals(pd.DataFrame([{**rec, "rsi_14": np.nan}]))[0]
    for inf in (np.inf, -np.inf):
        assert model.score_signals(pd.DataFrame([{**rec, "rsi_14": inf}]))[0] == missing
        assert fast.score_one({**rec, "rsi_14": inf}) == pytest.approx(missing, abs=1e-9)


def test_model_fitted_on_a_plain_matrix_and_one_leaf_trees():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.zeros(80), rng.normal(size=80)])  # column 0: constant
    X[::7, 1] = np.nan
    y = (rng.random(80) < 0.5).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = EnsembleScorer(**SMALL, calibration="in_sample").fit(X, y)
        # on the constant column alone no tree can split: every tree is a single leaf
        stump = EnsembleScorer(**SMALL, calibration="none").fit(X[:, :1], y)
    fast = FastScorer.from_model(model)
    assert fast.feature_names is None
    test = np.vstack([rng.normal(size=(30, 2)), [[np.nan, np.nan], [1.0, np.nan]]])
    np.testing.assert_allclose(fast.score_signals(test), model.score_signals(test), atol=TOL)
    np.testing.assert_allclose(
        FastScorer.from_model(stump).score_signals(test[:, :1]),
        stump.score_signals(test[:, :1]),
        atol=TOL,
    )
    with pytest.raises(ValueError, match="feature names"):
        fast.score_one({"x0": 1.0})
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        fast.score_signals(test[:, :1])
