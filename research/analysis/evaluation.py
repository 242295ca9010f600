"""Walk-forward evaluation: the ensemble vs the base rate vs the heuristic, fold by fold.

Each purged walk-forward fold (fit, predictions, metrics) is one task of
:func:`research.distributed.map_tasks`: a plain loop here by default, or Dask workers with
``scheduler=`` (``"local"``, ``"tcp://host:8786"``) or ``$PHANTOMLAB_DASK_SCHEDULER``. The
frames are the same, row for row and bit for bit, wherever the folds run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from research.analysis.metrics import probability_metrics
from research.dataset import ClosedTrades, fresh_estimator
from research.distributed import map_tasks
from research.scoring import EnsembleScorer, heuristic_scores
from research.splits import PurgedWalkForward


def evaluate_fold(
    fold: tuple[int, np.ndarray, np.ndarray],
    *,
    data: ClosedTrades,
    estimator: Any,
    return_predictions: bool,
) -> tuple[list[dict], list[pd.DataFrame]]:
    """One fold of :func:`walk_forward_evaluation` (a Dask task): its metric rows and, with
    ``return_predictions``, its prediction frames.

    Parameters
    ----------
    fold : (int, ndarray, ndarray)
        The fold's number, its train rows and its test rows (positions).
    data, estimator, return_predictions
        As in :func:`walk_forward_evaluation`.

    Returns
    -------
    (list of dict, list of DataFrame)
    """
    k, train, test = fold
    features, y, signal_times = data.features, data.y, data.signal_times
    model = fresh_estimator(estimator).fit(
        features.iloc[train],
        y[train],
        signal_times=signal_times[train],
        exit_times=data.exit_times[train],
    )
    preds = {
        "ensemble": model.predict_proba(features.iloc[test])[:, 1],
        "base_rate": np.full(len(test), y[train].mean()),
        "heuristic": heuristic_scores(features.iloc[test]) / 100.0,
    }
    rows, predictions = [], []
    for name, p in preds.items():
        rows.append(
            {
                "fold": k,
                "model": name,
                "n_train": len(train),
                "n_test": len(test),
                "test_start": signal_times[test].min(),
                **probability_metrics(y[test], p),
            }
        )
        if return_predictions:
            predictions.append(
                pd.DataFrame({"fold": k, "model": name, "row": test, "y": y[test], "p": p})
            )
    return rows, predictions


def walk_forward_evaluation(
    data: ClosedTrades,
    *,
    estimator: Any = EnsembleScorer,
    splitter: Any = None,
    n_splits: int = 5,
    min_train_size: int = 100,
    return_predictions: bool = False,
    scheduler: str | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-sample metrics per purged walk-forward fold, one row per (fold, model).

    Models: ``ensemble`` (``estimator`` fitted on the fold's train rows, calibrated
    out-of-fold inside them), ``base_rate`` (the train win rate for everyone: the bar any
    model must clear) and ``heuristic`` (the seed's rule, no fitting). Columns: ``fold``,
    ``model``, ``n_train``, ``n_test``, ``test_start``, ``auc``, ``brier``, ``log_loss``,
    ``ece``.

    Parameters
    ----------
    data : ClosedTrades
        The closed trades (:class:`research.dataset.ClosedTrades`).
    estimator : estimator or callable
        An unfitted :class:`~research.scoring.EnsembleScorer`-like model (cloned per fold) or
        a callable returning one (called per fold); default the class ``EnsembleScorer``.
        Its ``fit`` takes ``signal_times=`` and ``exit_times=``.
    splitter : object with ``split(signal_times, exit_times)``, optional
        Default ``PurgedWalkForward(n_splits, min_train_size=min_train_size)``.
    n_splits, min_train_size : int
        Of the default splitter.
    return_predictions : bool
        Also return the out-of-sample predictions, one row per (test row, model): ``fold``,
        ``model``, ``row`` (position in ``data``), ``y``, ``p`` (P(win)) — the input of
        :func:`research.analysis.metrics.reliability_table`.
    scheduler : str or None
        Where the folds run, one task each (:func:`evaluate_fold`; see
        :func:`research.distributed.resolve_scheduler`: ``None`` =
        ``$PHANTOMLAB_DASK_SCHEDULER`` or a plain loop here; ``"local"``;
        ``"tcp://host:8786"``). The frames are identical wherever the folds run. On a cluster
        ``data`` and ``estimator`` are sent once to every worker, so ``estimator`` must
        pickle: an estimator, a class, a module-level function or a ``functools.partial`` of
        one always does. A lambda or local function is only sure to work in process: on a
        cluster Dask sends it by value, which fails -- with a fix-it ``TypeError`` before
        anything is sent -- when it captures something that cannot be pickled (a lock, an
        open file, a database connection).

    Returns
    -------
    DataFrame, or (DataFrame, DataFrame) with ``return_predictions``

    Raises
    ------
    research.distributed.TaskError
        A fold's fit or prediction failed: names the fold; the error is its ``__cause__``.
    TypeError
        ``estimator`` cannot be pickled for the Dask workers (the message says the fix).
    """
    splitter = splitter or PurgedWalkForward(n_splits, min_train_size=min_train_size)
    folds = [
        (k, train, test)
        for k, (train, test) in enumerate(splitter.split(data.signal_times, data.exit_times))
    ]
    shared = {"data": data, "estimator": estimator, "return_predictions": return_predictions}
    results = map_tasks(
        evaluate_fold,
        folds,
        scheduler=scheduler,
        progress=False,
        desc="walk-forward folds",
        shared=shared,
        must_travel=("estimator",),
    )
    rows = [row for fold_rows, _ in results for row in fold_rows]
    metrics = pd.DataFrame(rows)
    if return_predictions:
        predictions = [frame for _, frames in results for frame in frames]
        return metrics, pd.concat(predictions, ignore_index=True)
    return metrics
