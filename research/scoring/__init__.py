"""Scoring: the calibrated ensemble, the heuristic fallback, and the feature encoding."""

from research.scoring.encode import encode, encoded_columns, entry_features
from research.scoring.ensemble import EnsembleScorer
from research.scoring.heuristic import HeuristicScorer, heuristic_scores
from research.scoring.online import MLScorer

__all__ = [
    "EnsembleScorer",
    "HeuristicScorer",
    "MLScorer",
    "encode",
    "encoded_columns",
    "entry_features",
    "heuristic_scores",
]
