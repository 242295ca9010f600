"""Walk-forward folds as Dask tasks, on a real local cluster (two worker processes, no mocks):
the walk-forward evaluation and the out-of-sample permutation importance give exactly the
frames of the in-process loop, and a model factory that cannot be pickled for the workers is
refused with the fix before anything is sent."""

from __future__ import annotations

import functools
import threading

import pandas as pd
import pytest
from support import closed_scalp_dataset

from research import schema as S
from research.analysis.evaluation import walk_forward_evaluation
from research.analysis.importance import permutation_importance_oos
from research.dataset import ClosedTrades
from research.scoring import EnsembleScorer
from research.synthetic import edge, make_market

LIGHT = functools.partial(EnsembleScorer, n_estimators=20, gb_max_iter=20, nn_enabled=False)


@pytest.fixture(scope="module")
def trades():
    """About 700 closed scalp trades of a market with a planted volume-spike edge."""
    market = make_market(
        n_bars=6000, seed=5, trend_drift=0.0, edges=(edge("volume_momentum", drift=1.0),)
    )
    sig, out, x, y = closed_scalp_dataset(market)
    return ClosedTrades(
        features=x, y=y, signal_times=sig[S.SIGNAL_TIME], exit_times=out[S.EXIT_TIME]
    )


def test_walk_forward_folds_on_the_cluster_equal_the_loop(cluster, trades):
    kw = {"estimator": LIGHT, "n_splits": 3, "return_predictions": True}
    metrics, preds = walk_forward_evaluation(trades, **kw)
    there, there_preds = walk_forward_evaluation(trades, scheduler=cluster.scheduler_address, **kw)
    pd.testing.assert_frame_equal(there, metrics, check_exact=True)
    pd.testing.assert_frame_equal(there_preds, preds, check_exact=True)
    assert metrics["fold"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert metrics["model"].tolist() == ["ensemble", "base_rate", "heuristic"] * 3
    assert preds["fold"].is_monotonic_increasing and len(preds) == metrics["n_test"].sum()


def test_permutation_folds_on_the_cluster_equal_the_loop(cluster, trades):
    kw = {"n_splits": 4, "n_repeats": 2, "random_state": 3}
    here = permutation_importance_oos(trades, **kw)
    there = permutation_importance_oos(trades, scheduler=cluster.scheduler_address, **kw)
    pd.testing.assert_frame_equal(there, here, check_exact=True)
    assert (here["n_folds"] >= 2).all() and here["base_auc"].iloc[0] > 0.5


def test_a_factory_that_cannot_be_pickled_for_the_cluster_gives_the_fix(cluster, trades):
    lock = threading.Lock()  # Dask sends a lambda by value, with what it captures
    factory = lambda: (lock, LIGHT())[1]  # noqa: E731
    here = walk_forward_evaluation(trades, estimator=factory, n_splits=2)  # nothing pickled
    with pytest.raises(TypeError, match=r"cannot be pickled for the Dask workers") as info:
        walk_forward_evaluation(
            trades, estimator=factory, n_splits=2, scheduler=cluster.scheduler_address
        )
    assert (
        "Fix: pass a module-level function or class, e.g. functools.partial(EnsembleScorer, "
        "n_estimators=50)" in str(info.value)
    )
    assert isinstance(info.value.__cause__, TypeError)  # cannot pickle '_thread.lock' object
    with pytest.raises(TypeError, match=r"Fix: pass a module-level function or class"):
        permutation_importance_oos(
            trades,
            estimator=factory,
            n_splits=3,
            n_repeats=1,
            scheduler=cluster.scheduler_address,
        )
    # a lambda that captures nothing unpicklable does travel (by value), with the same numbers
    there = walk_forward_evaluation(
        trades, estimator=lambda: LIGHT(), n_splits=2, scheduler=cluster.scheduler_address
    )
    pd.testing.assert_frame_equal(there, here, check_exact=True)
