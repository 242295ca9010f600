"""Scoring: the calibrated ensemble, its ONNX fast path, the heuristic fallback, the encoding."""

from research.scoring.encode import encode, encoded_columns, entry_features
from research.scoring.ensemble import EnsembleScorer
from research.scoring.fast import FastScorer, to_onnx
from research.scoring.heuristic import HeuristicScorer, heuristic_scores
from research.scoring.online import MLScorer

__all__ = [
    "EnsembleScorer",
    "FastScorer",
    "HeuristicScorer",
    "MLScorer",
    "encode",
    "encoded_columns",
    "entry_features",
    "heuristic_scores",
    "to_onnx",
]
