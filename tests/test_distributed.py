"""The Dask engine on a real local cluster (two worker processes, no mocks): the same results
as the in-process loop in the same order, task errors named, the scheduler from the
environment honoured, an unreachable address refused quickly with the fix; the sweep of replay
settings identical wherever it runs, and its CLI."""

from __future__ import annotations

import socket
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from research import schema as S
from research.cli import main
from research.distributed import (
    SCHEDULER_ENV,
    dask_client,
    map_tasks,
    resolve_scheduler,
)
from research.errors import SchedulerError, TaskError
from research.known_answer import known_answer_market
from research.replay import ReplayConfig
from research.scoring import EnsembleScorer, ScorerConfig
from research.sweep import COLUMNS, sweep

LIGHT = ReplayConfig(
    scorer=ScorerConfig(
        model=EnsembleScorer(n_estimators=20, gb_max_iter=20, nn_enabled=False), retrain_every=100
    ),
    n_boot=200,
)
VERDICTS = {"skill", "harm", "none", "too_few"}


@pytest.fixture(scope="module")
def planted():
    return known_answer_market("planted", n_bars=2000, seed=3)


# --------------------------------------------------------------------------------------------
# tasks (module level: workers import them by name)
# --------------------------------------------------------------------------------------------
def _square_plus(item: int, *, offset: float, data: np.ndarray) -> tuple[float, int]:
    """``item ** 2 + offset + sum(data)``, and the largest thread pool the task could use."""
    from threadpoolctl import threadpool_info

    time.sleep(0.02 * (item % 3))  # finish out of order
    threads = max((p["num_threads"] for p in threadpool_info()), default=1)
    return float(item**2 + offset + data.sum()), threads


def _fails_on_three(item: int) -> int:
    if item == 3:
        raise ValueError("three is not allowed here")
    return item


def _where(item: int) -> str:
    from distributed import get_worker

    return get_worker().address  # raises ValueError outside a Dask worker


# --------------------------------------------------------------------------------------------
# map_tasks and the scheduler
# --------------------------------------------------------------------------------------------
def test_map_tasks_on_the_cluster_equals_the_loop_and_keeps_order(cluster):
    items = [7, 3, 0, 5, 2, 9, 1, 4]
    shared = {"offset": 0.5, "data": np.arange(1000, dtype=np.float64)}
    here = map_tasks(_square_plus, items, progress=False, shared=shared)
    there = map_tasks(
        _square_plus, items, scheduler=cluster.scheduler_address, progress=False, shared=shared
    )
    assert there == here
    assert [r[0] for r in there] == [i**2 + 0.5 + 499_500.0 for i in items]
    assert {r[1] for r in there} == {1}  # BLAS / OpenMP limited to one thread in every task
    assert map_tasks(_square_plus, [], scheduler=cluster.scheduler_address, shared=shared) == []


@pytest.mark.parametrize("where", ["in-process", "cluster"])
def test_an_exception_in_a_task_names_its_item(cluster, where):
    scheduler = cluster.scheduler_address if where == "cluster" else where
    with pytest.raises(TaskError, match=r"the task of 3 failed.*ValueError: three is not") as info:
        map_tasks(
            _fails_on_three, [1, 2, 3, 4], scheduler=scheduler, progress=False, desc="numbers"
        )
    assert info.value.item == 3 and "numbers" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_the_scheduler_from_the_environment_is_honoured(cluster, monkeypatch):
    address = cluster.scheduler_address
    monkeypatch.setenv(SCHEDULER_ENV, address)
    assert resolve_scheduler(None) == address
    assert resolve_scheduler("in-process") == "in-process"  # the argument wins
    workers = set(cluster.scheduler_info["workers"])
    assert set(map_tasks(_where, [0, 1, 2], progress=False)) <= workers  # ran on the workers
    with pytest.raises(TaskError, match="(?i)no worker"):  # not a worker: the plain loop here
        map_tasks(_where, [0, 1], scheduler="sync", progress=False)


def test_scheduler_names_and_a_bad_one():
    assert resolve_scheduler(None) is None
    assert resolve_scheduler("sync") == resolve_scheduler(" In-Process ") == "in-process"
    assert resolve_scheduler("local") == "local"
    assert resolve_scheduler("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    with pytest.raises(ValueError, match=r"'localhost' is not a scheduler\. Fix: use 'local'"):
        resolve_scheduler("localhost")


def test_an_address_where_nothing_listens_gives_the_fix_quickly(monkeypatch):
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    monkeypatch.setenv(SCHEDULER_ENV, address)
    start = time.perf_counter()
    with pytest.raises(SchedulerError) as info:
        map_tasks(_fails_on_three, [1, 2], progress=False)
    assert time.perf_counter() - start < 20
    message = str(info.value)
    assert address in message and "`dask scheduler`" in message
    assert f"unset {SCHEDULER_ENV}" in message and "Fix:" in message


def test_a_client_to_a_running_cluster_leaves_it_running(cluster):
    with dask_client(cluster.scheduler_address) as client:
        assert client.submit(sum, [1, 2, 3]).result() == 6
    assert cluster.status.name == "running" and len(cluster.scheduler_info["workers"]) == 2


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------
def test_sweep_on_the_cluster_equals_the_sweep_in_process(cluster, planted):
    grid = {"rule": ["seed", "rigorous"], "retrain_every": [100]}
    here = sweep(planted, grid, base=LIGHT, strategies=("scalp",), progress=False)
    there = sweep(
        planted,
        grid,
        base=LIGHT,
        strategies=("scalp",),
        progress=False,
        scheduler=cluster.scheduler_address,
    )
    pd.testing.assert_frame_equal(there, here)  # exactly: no tolerance
    assert list(here.columns) == ["rule", "retrain_every", S.STRATEGY, *COLUMNS]
    assert here[["rule", S.STRATEGY]].values.tolist() == [
        ["seed", "scalp"],
        ["seed", "all"],
        ["rigorous", "scalp"],
        ["rigorous", "all"],
    ]
    assert set(here["verdict"]) <= VERDICTS and (here["retrains"] >= 1).all()
    assert (here["skill_low"] <= here["skill"]).all() and (
        here["skill"] <= here["skill_high"]
    ).all()
    assert here.loc[0, "n_passed"] != here.loc[2, "n_passed"]  # the rules decide differently


def test_efficacy_on_the_cluster_equals_efficacy_in_process(cluster):
    from research.efficacy import efficacy

    kw = {"seed": 1, "n_bars": 1500, "config": LIGHT, "strategies": ("scalp",)}
    here = efficacy(("planted", "null"), **kw)
    there = efficacy(("planted", "null"), scheduler=cluster.scheduler_address, **kw)
    pd.testing.assert_frame_equal(there, here)
    assert here["kind"].tolist() == ["planted", "planted", "null", "null"]


def test_an_unknown_or_bad_sweep_setting_gives_the_fix(planted):
    with pytest.raises(
        ValueError,
        match=r"unknown sweep setting\(s\) \['threshold'\]\. Fix: "
        r"vary some of: rule .*retrain_every .*costs .*exploration",
    ):
        sweep(planted, {"threshold": [60]}, base=LIGHT, progress=False)
    with pytest.raises(ValueError, match=r"rule='strict'.*Fix: rule is ThresholdConfig.rule"):
        sweep(planted, {"rule": ["strict"]}, base=LIGHT, progress=False)
    with pytest.raises(ValueError, match=r"costs='binance'.*Fix: use one of"):
        sweep(planted, {"costs": ["none", "binance"]}, base=LIGHT, progress=False)
    with pytest.raises(ValueError, match=r"need a list of values"):
        sweep(planted, {"rule": "seed"}, base=LIGHT, progress=False)


# --------------------------------------------------------------------------------------------
# phantomlab sweep
# --------------------------------------------------------------------------------------------
def test_sweep_help_lists_the_options():
    result = CliRunner().invoke(main, ["sweep", "--help"])
    assert result.exit_code == 0, result.output
    for option in (
        "--data",
        "--kind",
        "--seed",
        "--n-bars",
        "--rule",
        "--retrain-every",
        "--costs",
        "--scheduler",
        "--light",
        "--out",
        "--no-progress",
        "PHANTOMLAB_DASK_SCHEDULER",
    ):
        assert option in result.output, option


def test_a_tiny_sweep_writes_its_table(tmp_path):
    out = tmp_path / "sweep" / "table.csv"
    args = [
        "sweep",
        "--kind",
        "planted",
        "--seed",
        "2",
        "--n-bars",
        "1500",
        "--strategies",
        "scalp",
        "--rule",
        "seed",
        "--rule",
        "rigorous",
        "--retrain-every",
        "100,200",
        "--costs",
        "crypto_perp",
        "--n-boot",
        "100",
        "--light",
        "--scheduler",
        "in-process",
        "--no-progress",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Sweep of 4 setting(s)" in result.output and str(out) in result.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["rule", "retrain_every", "costs", S.STRATEGY, *COLUMNS]
    assert len(table) == 8 and set(table[S.STRATEGY]) == {"scalp", "all"}
    assert sorted(set(table["retrain_every"])) == [100, 200]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--rule", "strict"], "rule='strict'"),
        (["--retrain-every", "often"], "--retrain-every 'often' is not a whole number"),
        (["--scheduler", "nowhere"], "'nowhere' is not a scheduler"),
    ],
    ids=["rule", "cadence", "scheduler"],
)
def test_bad_sweep_input_exits_2_with_the_fix(args, needle):
    result = CliRunner().invoke(main, ["sweep", "--n-bars", "1000", "--no-progress", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Fix:" in result.output
