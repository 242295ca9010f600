"""The calibration map of :class:`~research.scoring.ensemble.EnsembleScorer`: centred isotonic
regression, whose knots the ONNX fast path (:mod:`research.scoring.fast`) interpolates over."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression


def centered_isotonic(raw: np.ndarray, target: np.ndarray) -> IsotonicRegression:
    """Isotonic calibration, made piecewise-linear through the centre of each constant block.

    A plain isotonic fit is a step function: every raw probability inside a block gets the
    same calibrated value, so the calibrated score throws away the model's ranking within
    blocks (measured: out-of-sample AUC 0.543 -> 0.508 on 160 range trades, 0.539 -> 0.527 on
    1,244 scalp trades). Centred isotonic regression (Oron & Flournoy, 2017) keeps each block's
    value at its centroid and interpolates between them: calibration as good, strictly
    increasing between the first and last centroids (flat, i.e. clipped, beyond them).
    Returned as an ``IsotonicRegression`` whose ``X_thresholds_``/``y_thresholds_`` are those
    knots, so its ``predict`` and the ONNX path's ``np.interp`` over them agree.
    """
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, target)
    x = np.sort(np.asarray(raw, dtype=np.float64))
    f = iso.predict(x)
    edges = np.flatnonzero(np.diff(f) != 0) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, len(x)]
    cx = np.array([x[a:b].mean() for a, b in zip(starts, ends, strict=True)])
    cy = f[starts]
    kx, ky = np.r_[x[0], cx, x[-1]], np.r_[cy[0], cy, cy[-1]]
    keep = np.r_[True, np.diff(kx) > 0]  # a one-row end block's centre is the end itself
    kx, ky = kx[keep], ky[keep]
    iso.X_thresholds_, iso.y_thresholds_ = kx, ky
    iso.X_min_, iso.X_max_ = float(kx[0]), float(kx[-1])
    iso._build_f(kx, ky)  # what predict() interpolates (rebuilt the same way on unpickling)
    return iso
