"""Warm fits of the ensemble's members: what makes a retrain at the seed's cadence cheap.

A warm fit starts from the model in force instead of from nothing: the forest replaces its
oldest trees with trees grown on every current row, the net trains a few more Adam epochs from
its weights. Both return *new* objects: the model in force keeps scoring, unchanged, until the
new one replaces it. Also here: how many threads grow a forest, and predicting on one thread.
"""

from __future__ import annotations

import copy

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

#: epochs a warm fit trains the net on all rows (a full fit takes ~20-40 with early stopping)
WARM_EPOCHS = 3


def threads(n_jobs: int | None) -> int:
    """Threads for the forest: ``n_jobs``, else 1 inside a Dask worker, else every core."""
    if n_jobs is not None:
        return int(n_jobs)
    try:
        from distributed import get_worker

        get_worker()
        return 1  # the worker's other cores run other tasks
    except (ImportError, ValueError):
        return -1


def renewed_forest(previous, fresh, matrix, y, share: float, generation: int):
    """``previous`` (an imputer + forest pipeline) with its oldest ``share`` of trees replaced.

    The new trees are grown on every current row by a forest of ``fresh``'s settings, seeded
    by ``generation`` (so each renewal grows different trees, the same on every machine).
    They see rows through the previous imputer, whose column layout the old trees expect.
    """
    old = previous[-1]
    k = max(1, int(round(share * len(old.estimators_))))
    grower = clone(fresh[-1]).set_params(
        n_estimators=k, random_state=(fresh[-1].random_state or 0) + 7919 * generation
    )
    grower.fit(previous[:-1].transform(matrix), y)
    forest = copy.copy(old)  # a new container: the model in force keeps its own trees
    forest.estimators_ = list(old.estimators_[k:]) + list(grower.estimators_)
    return make_pipeline(*(step for _, step in previous.steps[:-1]), forest)


def serial(members: dict) -> dict:
    """``members`` set to predict on one thread.

    Threads grow a forest's trees independently (the same forest whatever their number), but
    predicting with threads adds the trees' votes in completion order: sums that differ in the
    last bit from run to run, and a calibrator fitted on them would differ too.
    """
    for member in members.values():
        if "n_jobs" in member[-1].get_params():
            member[-1].set_params(n_jobs=1)
    return members


def adam_net(net) -> bool:
    """True for a pipeline ending in an MLP trained by Adam (which can go on training)."""
    return net is not None and getattr(net[-1], "solver", None) == "adam"


def trained_on(previous, matrix, y, epochs: int):
    """A copy of ``previous`` (scaler + MLP pipeline) trained ``epochs`` more epochs on all rows.

    Adam goes on from the weights and moments it had (``partial_fit``, one epoch per call):
    the net follows the new rows without starting over. Its scaler and imputer stay those of
    the last full fit (the net's inputs keep their meaning).
    """
    net = copy.deepcopy(previous)
    X = net[:-1].transform(matrix)
    mlp, stopping = net[-1], net[-1].early_stopping
    mlp.set_params(early_stopping=False)  # partial_fit has no validation split: fixed epochs
    if mlp.best_loss_ is None:  # an early-stopping fit tracked validation scores instead
        mlp.best_loss_ = np.inf
    for _ in range(epochs):
        mlp.partial_fit(X, y)
    mlp.set_params(early_stopping=stopping)  # a later full fit stops early again
    return net
