"""Scoring: the calibrated ensemble, its ONNX fast path, the heuristic fallback, the encoding."""

from research.scoring.config import ScorerConfig
from research.scoring.encode import encode, encoded_columns, entry_features
from research.scoring.ensemble import EnsembleScorer
from research.scoring.fast import FastScorer
from research.scoring.heuristic import HeuristicScorer, heuristic_scores
from research.scoring.online import MLScorer
from research.scoring.onnx_export import to_onnx

__all__ = [
    "EnsembleScorer",
    "FastScorer",
    "HeuristicScorer",
    "MLScorer",
    "ScorerConfig",
    "encode",
    "encoded_columns",
    "entry_features",
    "heuristic_scores",
    "to_onnx",
]
