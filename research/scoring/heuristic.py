"""``HeuristicScorer``: the seed's rule-based fallback score when no model is ready.

Seed, "ML Scoring": "NO -> Rule-based Heuristic Scoring: slope, EMA, breakout distance, range".
The score starts at 50 and each of four side-aware terms moves it by up to 12.5 points:

* ``ema_stack_score`` / 3 (EMA stack agrees with the trade),
* ``ema_slope_atr`` x 10 (fast EMA slopes the trade's way, in ATR per bar),
* ``breakout_dist_atr`` (close beyond the 20-bar extreme, ATR),
* range position in the trade's direction, ``2 * pos - 1`` (``pos = range_position`` for a long,
  ``1 - range_position`` for a short).

Each term is clipped to [-1, 1]; a missing feature contributes 0. The result is in [0, 100].
It has the same interface as :class:`~research.scoring.ensemble.EnsembleScorer` (``fit`` learns
nothing and returns self) so the two are interchangeable.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from research.scoring.encode import encode

INPUTS = ("ema_stack_score", "ema_slope_atr", "breakout_dist_atr", "range_position", "is_long")


def heuristic_scores(features: pd.DataFrame | Mapping) -> np.ndarray:
    """Rule-based scores 0-100 for a features frame (or one signal's mapping)."""
    x = encode(features, INPUTS)
    stack, slope, breakout, position, is_long = (x[:, i] for i in range(5))
    long = np.where(np.isnan(is_long), 1.0, is_long) > 0.5
    pos = np.where(long, position, 1.0 - position)
    terms = np.column_stack([stack / 3.0, slope * 10.0, breakout, 2.0 * pos - 1.0])
    terms = np.nan_to_num(np.clip(terms, -1.0, 1.0), nan=0.0)
    return np.clip(50.0 + 12.5 * terms.sum(axis=1), 0.0, 100.0)


class HeuristicScorer(ClassifierMixin, BaseEstimator):
    """Rule-based scorer with the estimator interface; see the module doc for the rule."""

    def fit(self, X, y=None, **fit_params) -> HeuristicScorer:
        self.classes_ = np.array([0, 1])
        return self

    def score_signals(self, X) -> np.ndarray:
        return heuristic_scores(X)

    def predict_proba(self, X) -> np.ndarray:
        p = heuristic_scores(X) / 100.0
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
