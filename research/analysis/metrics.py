"""Probability metrics: reliability table, expected calibration error, AUC, Brier, log loss.

A leaf module (it imports no other analysis): the evaluation, calibration, leakage and
challenger code all score predictions with these.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

__all__ = ["expected_calibration_error", "probability_metrics", "reliability_table"]


def reliability_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width probability bins: count, mean predicted P(win), observed win rate.

    Empty bins are dropped. ``gap`` = observed - predicted (positive: the model is too shy).
    """
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), 0, 1)
    if len(y) == 0:
        raise ValueError("no predictions to tabulate. Fix: pass at least one (y, p) pair.")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y})
    table = frame.groupby("bin").agg(
        count=("y", "size"), predicted=("p", "mean"), observed=("y", "mean")
    )
    table["gap"] = table["observed"] - table["predicted"]
    table.index = pd.Index(
        [f"[{b / n_bins:.1f}, {(b + 1) / n_bins:.1f})" for b in table.index], name="bin"
    )
    return table


def expected_calibration_error(y, p, n_bins: int = 10) -> float:
    """Count-weighted mean |observed - predicted| over equal-width bins (0 = perfect)."""
    t = reliability_table(y, p, n_bins)
    return float((t["count"] * t["gap"].abs()).sum() / t["count"].sum())


def probability_metrics(y, p) -> dict[str, float]:
    """AUC (NaN with one class), Brier score, log loss and ECE of predictions ``p`` of ``y``."""
    y, p = np.asarray(y, int), np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    both = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
    }
