"""Calibration diagnostics: the seed's in-sample calibration beside the out-of-fold one.

The metrics themselves (reliability table, ECE, Brier, log loss) live in the leaf
:mod:`research.analysis.metrics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from research import schema as S
from research.analysis.evaluation import walk_forward_evaluation
from research.analysis.metrics import probability_metrics, reliability_table
from research.dataset import ClosedTrades
from research.scoring import EnsembleScorer


def calibration_comparison(
    data: ClosedTrades,
    *,
    splitter: Any = None,
    n_splits: int = 4,
    min_train_size: int = 200,
    n_bins: int = 10,
    estimator: EnsembleScorer | None = None,
) -> dict[str, pd.DataFrame]:
    """The seed's in-sample calibration beside the rigorous out-of-fold one, out of sample.

    Both rules are fitted on the same purged walk-forward training folds and judged on the
    same later test folds.

    Parameters
    ----------
    data : ClosedTrades
        The closed trades (:class:`research.dataset.ClosedTrades`); its features need the
        ``session`` and ``volatility_regime`` columns.
    splitter : object with ``split(signal_times, exit_times)``, optional
        Default ``PurgedWalkForward(n_splits, min_train_size=min_train_size)``.
    n_splits, min_train_size : int
        Of the default splitter.
    n_bins : int
        Equal-width probability bins of the reliability tables.
    estimator : EnsembleScorer, optional
        The unfitted model, cloned per rule and fold with its ``calibration`` set to the rule
        compared; default ``EnsembleScorer(n_estimators=100, gb_max_iter=100)``.

    Returns
    -------
    dict of DataFrame
        * ``by_fold``: ``fold``, ``rule`` ('in_sample' | 'oof'), ``auc``, ``brier``,
          ``log_loss``, ``ece`` per test fold;
        * ``reliability``: the pooled out-of-sample reliability table per rule (``rule``,
          ``bin``, ``count``, ``predicted``, ``observed``, ``gap``);
        * ``by_bucket``: metrics per rule and ``session|volatility_regime`` bucket of the test
          rows (buckets with fewer than 30 test rows are left out: their ECE is noise).
    """
    if estimator is None:
        estimator = EnsembleScorer(n_estimators=100, gb_max_iter=100)
    features = data.features
    by_fold, tables, buckets = [], [], []
    for rule in ("in_sample", "oof"):
        metrics, preds = walk_forward_evaluation(
            data,
            splitter=splitter,
            n_splits=n_splits,
            min_train_size=min_train_size,
            return_predictions=True,
            estimator=clone(estimator).set_params(calibration=rule),
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
