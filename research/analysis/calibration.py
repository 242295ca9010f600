"""Calibration diagnostics: reliability table, expected calibration error, Brier, log loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from research import schema as S


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


def calibration_comparison(
    features: pd.DataFrame,
    y,
    signal_times,
    exit_times,
    *,
    n_splits: int = 4,
    min_train_size: int = 200,
    n_bins: int = 10,
    model_kwargs: dict | None = None,
) -> dict[str, pd.DataFrame]:
    """The seed's in-sample calibration beside the rigorous out-of-fold one, out of sample.

    Both rules are fitted on the same purged walk-forward training folds and judged on the
    same later test folds. Returns frames:

    * ``by_fold``: ``fold``, ``rule`` ('in_sample' | 'oof'), ``auc``, ``brier``, ``log_loss``,
      ``ece`` per test fold;
    * ``reliability``: the pooled out-of-sample reliability table per rule (``rule``, ``bin``,
      ``count``, ``predicted``, ``observed``, ``gap``);
    * ``by_bucket``: metrics per rule and ``session|volatility_regime`` bucket of the test rows
      (buckets with fewer than 30 test rows are left out: their ECE is noise).
    """
    from research.analysis.evaluation import walk_forward_evaluation
    from research.scoring import EnsembleScorer

    kw = {"n_estimators": 100, "gb_max_iter": 100, **(model_kwargs or {})}
    by_fold, tables, buckets = [], [], []
    for rule in ("in_sample", "oof"):
        metrics, preds = walk_forward_evaluation(
            features,
            y,
            signal_times,
            exit_times,
            n_splits=n_splits,
            min_train_size=min_train_size,
            return_predictions=True,
            model_factory=lambda rule=rule: EnsembleScorer(calibration=rule, **kw),
        )
        ens = metrics.loc[metrics["model"] == "ensemble"]
        by_fold.append(ens[["fold", "auc", "brier", "log_loss", "ece"]].assign(rule=rule))
        p = preds.loc[preds["model"] == "ensemble"]
        tables.append(reliability_table(p["y"], p["p"], n_bins).reset_index().assign(rule=rule))
        ctx = features.iloc[p["row"].to_numpy()]
        keys = ctx[S.SESSION].astype(str) + S.BUCKET_SEP + ctx[S.VOLATILITY_REGIME].astype(str)
        for bucket, idx in pd.Series(np.arange(len(p))).groupby(keys.to_numpy()):
            if len(idx) >= 30:
                sub = p.iloc[idx.to_numpy()]
                buckets.append(
                    {
                        "rule": rule,
                        "bucket": bucket,
                        "n": len(sub),
                        **probability_metrics(sub["y"], sub["p"]),
                    }
                )
    first = ["fold", "rule"]
    folds = pd.concat(by_fold, ignore_index=True)
    return {
        "by_fold": folds[first + [c for c in folds.columns if c not in first]],
        "reliability": pd.concat(tables, ignore_index=True),
        "by_bucket": pd.DataFrame(buckets),
    }
