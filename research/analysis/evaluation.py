"""Walk-forward evaluation: the ensemble vs the base rate vs the heuristic, fold by fold."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from research.analysis.calibration import probability_metrics
from research.scoring import EnsembleScorer, heuristic_scores
from research.splits import PurgedWalkForward


def walk_forward_evaluation(
    features: pd.DataFrame,
    y,
    signal_times,
    exit_times,
    *,
    model_factory: Callable[[], EnsembleScorer] = EnsembleScorer,
    n_splits: int = 5,
    min_train_size: int = 100,
    return_predictions: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-sample metrics per purged walk-forward fold, one row per (fold, model).

    Models: ``ensemble`` (fitted on the fold's train rows, calibrated out-of-fold inside them),
    ``base_rate`` (the train win rate for everyone: the bar any model must clear) and
    ``heuristic`` (the seed's rule, no fitting). Columns: ``fold``, ``model``, ``n_train``,
    ``n_test``, ``test_start``, ``auc``, ``brier``, ``log_loss``, ``ece``.

    With ``return_predictions=True`` also the out-of-sample predictions, one row per (test row,
    model): ``fold``, ``model``, ``row`` (position in ``features``), ``y``, ``p`` (P(win)) —
    the input of :func:`research.analysis.calibration.reliability_table`.
    """
    y = np.asarray(y, int)
    signal_times = pd.DatetimeIndex(pd.to_datetime(signal_times, utc=True))
    exit_times = pd.DatetimeIndex(pd.to_datetime(exit_times, utc=True))
    splitter = PurgedWalkForward(n_splits, min_train_size=min_train_size)
    rows, predictions = [], []
    for k, (train, test) in enumerate(splitter.split(signal_times, exit_times)):
        model = model_factory().fit(features.iloc[train], y[train],
                                    signal_times=signal_times[train],
                                    exit_times=exit_times[train])  # fmt: skip
        preds = {
            "ensemble": model.predict_proba(features.iloc[test])[:, 1],
            "base_rate": np.full(len(test), y[train].mean()),
            "heuristic": heuristic_scores(features.iloc[test]) / 100.0,
        }
        for name, p in preds.items():
            rows.append({"fold": k, "model": name, "n_train": len(train), "n_test": len(test),
                         "test_start": signal_times[test].min(),
                         **probability_metrics(y[test], p)})  # fmt: skip
            if return_predictions:
                predictions.append(pd.DataFrame({"fold": k, "model": name, "row": test,
                                                 "y": y[test], "p": p}))  # fmt: skip
    metrics = pd.DataFrame(rows)
    if return_predictions:
        return metrics, pd.concat(predictions, ignore_index=True)
    return metrics
