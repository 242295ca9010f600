"""ONNX fast path: :class:`FastScorer` scores with the graph :func:`to_onnx` writes.

The graph (:mod:`research.scoring.onnx_export`) gives the members' averaged, uncalibrated
P(win); :class:`FastScorer` runs it in onnxruntime, then applies the isotonic calibration with
``np.interp`` over the fitted thresholds (what ``IsotonicRegression(out_of_bounds='clip')``
computes), giving ``EnsembleScorer.score_signals``'s 0-100 score.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from research.errors import OnnxModelError
from research.features import CATEGORIES, FEATURES
from research.scoring.encode import (
    encode,
    encoded_columns,
    inf_as_missing,
    is_categorical,
    is_extra,
)
from research.scoring.onnx_export import INPUT, OUTPUT, to_onnx

logger = logging.getLogger(__name__)

_FIX = "Fix: re-export the model with research.scoring.fast.to_onnx(model)."
_NUMBERS = (int, float, np.integer, np.floating)  # pandas stores these as float64 unchanged

__all__ = ["FastScorer", "to_onnx"]


# ---------------------------------------------------------------------------- scoring
def _session(blob: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    # one signal is microseconds of work: thread pools and spinning only add latency and CPU
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])


class FastScorer:
    """Scores 0-100 from an ONNX export of an ``EnsembleScorer``: same numbers, one signal fast.

    Parameters
    ----------
    onnx_bytes : bytes
        The graph written by :func:`to_onnx`.
    feature_names : sequence of str, optional
        The model's ``feature_names_`` (registered features, in order); ``None`` if it was
        fitted on a plain matrix (then only encoded matrices can be scored).
    calib_x, calib_y : array-like, optional
        The calibrator's ``X_thresholds_`` / ``y_thresholds_`` (probabilities 0-1); both
        ``None`` for an uncalibrated model.

    Raises
    ------
    OnnxModelError
        The blob is not a loadable scorer graph, or its columns do not match ``feature_names``.
    """

    def __init__(
        self,
        onnx_bytes: bytes,
        *,
        feature_names: Sequence[str] | None = None,
        calib_x=None,
        calib_y=None,
    ) -> None:
        self._blob = bytes(onnx_bytes)
        self.feature_names = None if feature_names is None else list(feature_names)
        self._calib = None
        if calib_x is not None or calib_y is not None:
            x, y = (
                np.asarray(a if a is not None else [], np.float64).ravel()
                for a in (calib_x, calib_y)
            )
            if (
                len(x) != len(y)
                or not len(x)
                or not np.isfinite([*x, *y]).all()
                or (np.diff(x) < 0).any()
            ):
                raise ValueError(
                    "calib_x and calib_y must be given together: finite, of one "
                    "length, calib_x non-decreasing (the calibrator's thresholds)"
                )
            self._calib = (x, y)
        try:
            self._session = _session(self._blob)
        except Exception as exc:  # onnxruntime raises its own, non-ValueError classes
            raise OnnxModelError(
                f"the ONNX model cannot be loaded ({type(exc).__name__}: {str(exc)[:200]}). {_FIX}"
            ) from exc
        inputs = self._session.get_inputs()
        if (
            [i.name for i in inputs] != [INPUT]
            or inputs[0].type != "tensor(double)"
            or OUTPUT not in [o.name for o in self._session.get_outputs()]
        ):
            raise OnnxModelError(
                f"the ONNX model is not a scorer graph (float64 input {INPUT!r}"
                f", output {OUTPUT!r}). {_FIX}"
            )
        self.n_columns = int(inputs[0].shape[1])
        if self.feature_names is not None:
            self._check_and_prepare()

    @classmethod
    def from_model(cls, model) -> FastScorer:
        """Export a fitted ``EnsembleScorer`` with :func:`to_onnx`; keep its calibration."""
        blob, cal = to_onnx(model), model.calibrator_
        if cal is not None and cal.out_of_bounds != "clip":  # np.interp clips at the ends
            raise NotImplementedError("only IsotonicRegression(out_of_bounds='clip')")
        return cls(
            blob,
            feature_names=model.feature_names_,
            calib_x=None if cal is None else cal.X_thresholds_,
            calib_y=None if cal is None else cal.y_thresholds_,
        )

    @property
    def onnx_bytes(self) -> bytes:
        """The serialized graph (what the model registry ships)."""
        return self._blob

    @property
    def calibration(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(calib_x, calib_y)`` copies (probabilities 0-1), or ``None`` if uncalibrated."""
        return None if self._calib is None else (self._calib[0].copy(), self._calib[1].copy())

    def _check_and_prepare(self) -> None:
        unknown = [f for f in self.feature_names if f not in FEATURES and not is_extra(f)]
        cols = encoded_columns([f for f in self.feature_names if f not in unknown])
        meta = self._session.get_modelmeta().custom_metadata_map.get("encoded_columns")
        if unknown or len(cols) != self.n_columns or (meta and json.loads(meta) != cols):
            raise OnnxModelError(
                f"feature_names encode to {len(cols)} columns (unregistered: "
                f"{unknown}) but the graph was exported for {self.n_columns} "
                f"({meta or 'unnamed'}). Pass the exported model's "
                f"feature_names_, or: {_FIX}"
            )
        # score_one fills a copy of this row without pandas: NaN for numbers, 0 for one-hots,
        # which is what encode() gives for an absent feature
        self._template, self._numeric, self._categorical = [], [], []
        for name in self.feature_names:
            col = len(self._template)
            if is_categorical(name):
                cats = CATEGORIES[name]
                simple = all(isinstance(c, str) for c in cats)  # then numbers never match
                self._categorical.append((name, col, {c: j for j, c in enumerate(cats)}, simple))
                self._template += [0.0] * len(cats)
            else:
                self._numeric.append((name, col))
                self._template.append(np.nan)

    def score_one(self, features: Mapping) -> float:
        """Score one signal's features (mapping name -> value), 0-100, with low latency.

        Encodes as :func:`~research.scoring.encode.encode` does (absent or ``None`` ->
        missing, unknown category -> all-zero block); unusual value types take its pandas path.
        """
        if self.feature_names is None:
            raise ValueError("score_one needs feature names; this model was fitted on a matrix")
        row, get = self._template.copy(), features.get  # a list: cheaper to fill than numpy
        for name, col in self._numeric:
            v = get(name)
            if v is not None:
                row[col] = float(v) if isinstance(v, _NUMBERS) else encode({name: v}, [name])[0, 0]
        for name, col, index, simple in self._categorical:
            v = get(name)
            if v is None or (simple and isinstance(v, _NUMBERS)):
                continue
            if isinstance(v, str):
                j = index.get(v)
                if j is not None:
                    row[col + j] = 1.0
            else:
                row[col : col + len(index)] = encode({name: v}, [name])[0].tolist()
        p = float(self._p_win(np.array([row]))[0])  # scalar tail: no numpy call per step
        if self._calib is not None:
            p = float(np.interp(p, *self._calib))
        return 100.0 * min(max(p, 0.0), 1.0)

    def score_signals(self, X) -> np.ndarray:
        """Scores 0-100, shape (n,), of a features frame, one mapping, or an encoded matrix."""
        if isinstance(X, pd.DataFrame | Mapping) and self.feature_names is not None:
            matrix = encode(X, self.feature_names)
        elif isinstance(X, Mapping):
            raise ValueError("a mapping needs feature names; this model was fitted on a matrix")
        else:
            matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_columns:
            raise ValueError(
                f"X encodes to shape {matrix.shape}; the graph takes (n, {self.n_columns})"
            )
        if len(matrix) == 0:
            return np.empty(0)
        p = self._p_win(np.ascontiguousarray(matrix))
        if self._calib is not None:
            p = np.interp(p, *self._calib)  # = IsotonicRegression.predict, clipped at the ends
        return 100.0 * np.clip(p, 0.0, 1.0)

    def _p_win(self, matrix: np.ndarray) -> np.ndarray:
        """Uncalibrated P(win) per row, probability 0-1; ``±inf`` counts as missing, as in
        ``EnsembleScorer`` (:func:`~research.scoring.encode.inf_as_missing`, logged)."""
        if np.isinf(matrix).any():
            names = encoded_columns(self.feature_names) if self.feature_names else None
            matrix = inf_as_missing(matrix, names)
        return self._session.run([OUTPUT], {INPUT: matrix})[0][:, 0]
