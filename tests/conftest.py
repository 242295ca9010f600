"""Shared fixtures: the real data set beside the repository (``../shared/data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA_FILES = sorted(DATA_DIR.glob("*.csv.gz"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA_FILES, f"the real data set is expected at {DATA_DIR}"
    return DATA_DIR


@pytest.fixture(scope="session")
def btc_1h(data_dir):
    from research.candles import load_candles

    return load_candles(data_dir / "BTC_USDT_1h.csv.gz")


@pytest.fixture(scope="session")
def cluster():
    """One real Dask LocalCluster for the session: 2 worker processes, 1 thread each."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(autouse=True)
def _no_scheduler_from_the_environment(monkeypatch):
    """Tests choose where tasks run; a PHANTOMLAB_DASK_SCHEDULER of the shell must not."""
    from research.distributed import SCHEDULER_ENV

    monkeypatch.delenv(SCHEDULER_ENV, raising=False)


@pytest.fixture(autouse=True)
def _no_workspace_of_the_checkout(monkeypatch, tmp_path_factory):
    """A `make demo` in the checkout leaves ./.phantomlab/config.toml, which every default
    setting would read; tests start from an empty workspace of their own instead."""
    monkeypatch.setenv("PHANTOMLAB_WORKSPACE", str(tmp_path_factory.mktemp("workspace")))
