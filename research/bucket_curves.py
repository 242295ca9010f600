"""P(win | qscore) curves of the threshold buckets and where they cross a break-even.

One function per rule of :class:`research.thresholds.QscoreAdapter`: :func:`seed_bucket` (a
bucket's own isotonic curve and break-even, from ``min_records`` trades) and
:func:`rigorous_bucket` (the bucket's curve shrunk toward the pooled one). Curves are knots
``(qscore 0-100, P(win) 0-1)``, linear in between.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from research import schema as S
from research.breakeven import ev_threshold
from research.errors import InsufficientDataError

logger = logging.getLogger(__name__)


def isotonic_knots(q: np.ndarray, won: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(qscore, P(win))`` of the increasing isotonic fit."""
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(q, won.astype(np.float64))
    return iso.X_thresholds_.astype(np.float64), iso.y_thresholds_.astype(np.float64)


def crossings(x: np.ndarray, y: np.ndarray, p_min: np.ndarray) -> np.ndarray:
    """Vectorised :func:`crossing` over many ``p_min`` (``inf`` where y never reaches it).

    ``y`` is non-decreasing (an isotonic fit, or a blend of two).
    """
    p_min = np.asarray(p_min, dtype=np.float64)
    i = np.searchsorted(y, p_min, side="left")
    out = np.full(p_min.shape, np.inf)
    first = i == 0
    out[first] = x[0]
    mid = (i > 0) & (i < len(y))
    j = i[mid]
    out[mid] = x[j - 1] + (p_min[mid] - y[j - 1]) * (x[j] - x[j - 1]) / (y[j] - y[j - 1])
    return out


def crossing(x: np.ndarray, y: np.ndarray, p_min: float) -> float | None:
    """Smallest q in ``[x[0], x[-1]]`` where the piecewise-linear ``(x, y)`` reaches p_min."""
    above = np.flatnonzero(y >= p_min)
    if not above.size:
        return None
    i = int(above[0])
    if i == 0:
        return float(x[0])
    return float(x[i - 1] + (p_min - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))


def seed_bucket(
    bucket: pd.DataFrame, pooled: float | None, *, given: float | None, min_records: int
) -> tuple[tuple | None, float | None, str]:
    """Seed rule, one bucket's trades: ``(curve knots or None, p_min, note)``.

    Its own isotonic curve from ``min_records`` trades on, and its own break-even (from its
    ``pnl_percent``) unless ``given``; the pooled one when it lacks wins or losses.
    """
    n = len(bucket)
    if n < min_records:
        return None, pooled, "no trades" if n == 0 else f"fewer than {min_records} trades"
    won = (bucket[S.OUTCOME] == "win").to_numpy(bool)
    curve = isotonic_knots(bucket[S.QSCORE].to_numpy(np.float64), won)
    if given is not None:
        return curve, given, ""
    try:
        return curve, ev_threshold(bucket).p_min, ""
    except InsufficientDataError as exc:
        logger.info("a bucket keeps the pooled p_min: %s", exc)
        return (
            curve,
            pooled,
            f"{'pooled' if pooled is not None else 'no'} p_min: bucket lacks wins or losses",
        )


def rigorous_bucket(
    q: np.ndarray, won: np.ndarray, global_curve: tuple, pooled: float | None, shrink_k: float
) -> tuple[tuple | None, float, float | None, str]:
    """Rigorous rule, one bucket: ``(curve knots or None, weight, p_min, note)``.

    The bucket's isotonic curve shrunk toward the global one with weight ``n / (n + k)``, on
    the union of both curves' knots; the pooled break-even.
    """
    n = len(q)
    if not n:
        return None, np.nan, pooled, "no trades"
    x, y = isotonic_knots(q, won)
    weight = n / (n + shrink_k)
    xu = np.union1d(x, global_curve[0])
    yg = np.interp(xu, *global_curve)
    return (xu, weight * np.interp(xu, x, y) + (1 - weight) * yg), weight, pooled, ""
