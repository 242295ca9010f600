"""``HeuristicScorer``: the seed's rule-based fallback score when no model is ready.

Seed, "ML Scoring": "NO -> Rule-based Heuristic Scoring: slope, EMA, breakout distance, range".
One rule per strategy, chosen by :func:`heuristic_scores`'s ``strategy``:

``'trend'`` and ``'scalp'`` (and any other name, e.g. a user strategy such as ``'external'``,
and ``None``): the **trend rule**, which rewards trading with the move. The score starts at 50
and each of four side-aware terms moves it by up to 12.5 points:

* ``ema_stack_score`` / 3 (EMA stack agrees with the trade),
* ``ema_slope_atr`` x 10 (fast EMA slopes the trade's way, in ATR per bar),
* ``breakout_dist_atr`` (close beyond the 20-bar extreme, ATR),
* range position in the trade's direction, ``2 * pos - 1`` (``pos = range_position`` for a long,
  ``1 - range_position`` for a short).

``'range'``: the **mean-reversion rule** of a fade of a channel edge
(:mod:`research.signals.range`), which the trend rule scores backwards (it rewards breakouts
and trend alignment). The score starts at 50 and six terms move it by up to the weight given:

* flat market, 7.5 points: ``1 - |ema_slope_atr| / 0.1`` (the fast EMA's slope, ATR per bar;
  0.1 is about the median over all bars, so a typical bar contributes 0 and a flat EMA +1),
* weak trend, 7.5 points: ``(25 - adx_14) / 15`` (ADX 25, the usual trend threshold, is
  neutral; ADX 10 gives +1, ADX 40 gives -1),
* entry at the edge being faded, 10 points: ``1 - 2 * pos`` with ``pos = range_position`` for
  a long and ``1 - range_position`` for a short (a long at the 20-bar low gives +1, at the high
  -1),
* RSI stretched against the entry, 10 points: ``(50 - rsi_14) / 20`` for a long and
  ``(rsi_14 - 50) / 20`` for a short (a long at RSI 30 gives +1),
* rejection wick, 7.5 points: ``2 * (wick_for - wick_against)``, the wick on the faded side
  (``lower_wick_ratio`` for a long, ``upper_wick_ratio`` for a short) minus the other one, as
  fractions of the bar's range,
* Bollinger position at the band being faded, 7.5 points: ``1 - 2 * b`` with
  ``b = bb_position`` for a long and ``1 - bb_position`` for a short.

The range rule encodes the textbook fade; nothing in it is fitted to outcomes. It puts range
signals on the level the trend rule puts trend signals (median ~64 on synthetic and real
markets); it is not evidence that deeper or more stretched fades win more often (on the real
markets measured when it was written they did not).

Both rules: each term is clipped to [-1, 1] before its weight; a missing (or non-numeric)
feature contributes 0; a missing ``is_long`` is taken as a long; the result is clipped to
[0, 100]. The weights sum to 50, so the extremes reach 0 and 100. Both rules are mirror
symmetric: a short scores what the long on the price series mirrored about a level scores
(side-aware features unchanged, ``range_position``, ``bb_position`` -> 1 - x, ``rsi_14`` ->
100 - x, the wicks swapped). :class:`HeuristicScorer` has the same interface as
:class:`~research.scoring.ensemble.EnsembleScorer` (``fit`` learns nothing and returns self) so
the two are interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from research.scoring.encode import encode

TREND_INPUTS = ("ema_stack_score", "ema_slope_atr", "breakout_dist_atr", "range_position")
RANGE_INPUTS = (
    "ema_slope_atr",
    "adx_14",
    "range_position",
    "rsi_14",
    "lower_wick_ratio",
    "upper_wick_ratio",
    "bb_position",
)
INPUTS = (*TREND_INPUTS, "is_long")  # the trend rule's inputs (kept for callers)

TREND_WEIGHT = 12.5  # points per term
RANGE_WEIGHTS = np.array([7.5, 7.5, 10.0, 10.0, 7.5, 7.5])  # slope, adx, edge, rsi, wick, bb


def _is_long(frame: pd.DataFrame | Mapping) -> np.ndarray:
    """Boolean side per row; a missing ``is_long`` counts as a long."""
    side = encode(frame, ["is_long"])[:, 0]
    return np.where(np.isnan(side), 1.0, side) > 0.5


def _clipped(terms: np.ndarray) -> np.ndarray:
    """Terms clipped to [-1, 1], a missing one (NaN) as 0."""
    return np.nan_to_num(np.clip(terms, -1.0, 1.0), nan=0.0)


def _trend_rule(features: pd.DataFrame | Mapping) -> np.ndarray:
    stack, slope, breakout, position = encode(features, TREND_INPUTS).T
    pos = np.where(_is_long(features), position, 1.0 - position)
    terms = np.column_stack([stack / 3.0, slope * 10.0, breakout, 2.0 * pos - 1.0])
    return np.clip(50.0 + TREND_WEIGHT * _clipped(terms).sum(axis=1), 0.0, 100.0)


def _range_rule(features: pd.DataFrame | Mapping) -> np.ndarray:
    slope, adx, position, rsi, lower, upper, bb = encode(features, RANGE_INPUTS).T
    long = _is_long(features)
    pos = np.where(long, position, 1.0 - position)
    stretch = np.where(long, 50.0 - rsi, rsi - 50.0)
    wick = np.where(long, lower - upper, upper - lower)
    band = np.where(long, bb, 1.0 - bb)
    terms = np.column_stack(
        [
            1.0 - np.abs(slope) / 0.1,
            (25.0 - adx) / 15.0,
            1.0 - 2.0 * pos,
            stretch / 20.0,
            2.0 * wick,
            1.0 - 2.0 * band,
        ]
    )
    return np.clip(50.0 + _clipped(terms) @ RANGE_WEIGHTS, 0.0, 100.0)


RULES: dict[str, Callable[[pd.DataFrame | Mapping], np.ndarray]] = {
    "trend": _trend_rule,
    "scalp": _trend_rule,
    "range": _range_rule,
}


def heuristic_scores(features: pd.DataFrame | Mapping, strategy: str | None = None) -> np.ndarray:
    """Rule-based scores of signals, 0-100 (50 = neutral); see the module doc for the rules.

    Parameters
    ----------
    features : DataFrame or Mapping
        Signal-time features, one row per signal (or one signal's mapping). Absent columns and
        non-numeric values count as missing.
    strategy : str, optional
        ``'range'`` uses the mean-reversion rule; ``'trend'``, ``'scalp'``, ``None`` and any
        other name (user strategies) use the trend rule.

    Returns
    -------
    ndarray of float64
        One score in [0, 100] per row.
    """
    # inf - inf gives NaN (a zero term), 1e308 * 10 gives inf (clipped): no warnings needed
    with np.errstate(invalid="ignore", over="ignore"):
        return RULES.get(strategy, _trend_rule)(features)


class HeuristicScorer(ClassifierMixin, BaseEstimator):
    """Rule-based scorer with the estimator interface; see the module doc for the rules.

    Parameters
    ----------
    strategy : str, optional
        Which rule scores (:func:`heuristic_scores`); ``None`` = the trend rule.
    """

    def __init__(self, strategy: str | None = None) -> None:
        self.strategy = strategy

    def fit(self, X, y=None, **fit_params) -> HeuristicScorer:
        self.classes_ = np.array([0, 1])
        return self

    def score_signals(self, X) -> np.ndarray:
        """Scores 0-100, one per row of ``X``."""
        return heuristic_scores(X, strategy=self.strategy)

    def predict_proba(self, X) -> np.ndarray:
        """``[[P(loss), P(win)]]`` per row, the score / 100 (uncalibrated)."""
        p = self.score_signals(X) / 100.0
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
