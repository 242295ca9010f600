"""The heavy, independent work (one replay per setting, per market, per seed) on Dask.

:func:`map_tasks` runs ``func(item, **shared)`` for every item and returns the results in the
order of the items — in a plain loop in this process, on a local cluster of worker processes,
or on a running Dask cluster:

============================  ================================================================
``scheduler``                 where the tasks run
============================  ================================================================
``None`` (default)            ``$PHANTOMLAB_DASK_SCHEDULER`` if set, else a plain loop here
``"in-process"`` / ``"sync"``  a plain loop in this process
``"local"``                   a :class:`dask.distributed.LocalCluster` of worker processes
                              (one thread each, as many as cores and tasks), closed afterwards
``"tcp://host:port"``         a running scheduler (``dask scheduler`` and ``dask worker``); its
                              workers need this package installed and the same versions
============================  ================================================================

**What travels to workers.** ``func`` (pickled by reference: a module-level function of an
installed package), each item (small: keep it a few settings, it also names the task in errors)
and the ``shared`` inputs — candles, a study, configs — sent **once** per call to every worker
(``client.scatter(..., broadcast=True)``), not once per task. Each task returns its result
(keep it small: a table, not fitted models).

**Same numbers everywhere.** A task carries its own seeds and reads nothing but its item and
the shared inputs, and every task — here or on a worker — runs with scikit-learn, OpenMP and
BLAS limited to one thread (:func:`threadpoolctl.threadpool_limits`), so results are bit-for-bit
those of the in-process loop and two workers on two cores do not oversubscribe them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from threadpoolctl import threadpool_limits

from research.errors import SchedulerError, TaskError
from research.progress import tqdm

logger = logging.getLogger(__name__)

#: environment variable naming the default scheduler (``local``, ``in-process`` or an address)
SCHEDULER_ENV = "PHANTOMLAB_DASK_SCHEDULER"
IN_PROCESS = "in-process"
LOCAL = "local"
#: seconds to wait for a remote scheduler before the fix-it error
CONNECT_TIMEOUT = 5.0
_ALIASES = {IN_PROCESS: IN_PROCESS, "sync": IN_PROCESS, LOCAL: LOCAL}


def unsendable(obj: Any) -> Exception | None:
    """Why Dask could not send ``obj`` to its workers, or ``None`` if it can.

    Tries Dask's own serialisation (by reference, else by value for lambdas and local
    functions) without sending anything, so a caller can refuse with a fix before a cluster
    starts; Dask's error log of the attempt is kept quiet.
    """
    import distributed.protocol.pickle as wire

    log = logging.getLogger("distributed.protocol.pickle")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        wire.dumps(obj)
    except Exception as exc:
        return exc
    finally:
        log.setLevel(level)
    return None


def resolve_scheduler(scheduler: str | None) -> str | None:
    """Where tasks run: ``scheduler``, else ``$PHANTOMLAB_DASK_SCHEDULER``, else ``None``.

    Parameters
    ----------
    scheduler : str or None
        ``"local"``, ``"in-process"`` (alias ``"sync"``), an address such as
        ``"tcp://10.0.0.5:8786"``, or ``None`` for the environment variable.

    Returns
    -------
    str or None
        ``"local"``, ``"in-process"``, the address, or ``None`` (nothing configured: the
        callers run a plain loop in this process).
    """
    value = scheduler if scheduler is not None else os.environ.get(SCHEDULER_ENV)
    value = (value or "").strip()
    if not value:
        return None
    if value.lower() in _ALIASES:
        return _ALIASES[value.lower()]
    scheme, sep, rest = value.partition("://")
    if sep and scheme and rest:
        return value
    source = "scheduler" if scheduler is not None else f"${SCHEDULER_ENV}"
    raise ValueError(
        f"{source}={value!r} is not a scheduler. Fix: use 'local' (a local cluster of worker "
        "processes), 'in-process' (a plain loop here) or the address of a running Dask "
        "scheduler, e.g. 'tcp://127.0.0.1:8786'."
    )


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int | None = None) -> Iterator[Any]:
    """A :class:`dask.distributed.Client` for ``scheduler`` (see :func:`resolve_scheduler`).

    Parameters
    ----------
    scheduler : str or None
        An address connects to that running scheduler (and leaves it running afterwards);
        ``"local"``, ``"in-process"`` or nothing configured start a
        ``LocalCluster(processes=True, threads_per_worker=1)``, closed on exit.
    n_workers : int, optional
        Workers of a local cluster: ``min(cores, n_workers)`` (default: one per core).

    Yields
    ------
    dask.distributed.Client

    Raises
    ------
    SchedulerError
        Nothing answers at the address within :data:`CONNECT_TIMEOUT` seconds.
    """
    from distributed import Client, LocalCluster

    resolved = resolve_scheduler(scheduler)
    if resolved not in (None, LOCAL, IN_PROCESS):
        try:
            client = Client(resolved, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"no Dask scheduler answers at {resolved} (waited {CONNECT_TIMEOUT:g} s: "
                f"{type(exc).__name__}). Fix: start one there (`dask scheduler`, then "
                f"`dask worker {resolved}` on each worker machine), correct the address, or run "
                f"locally: `unset {SCHEDULER_ENV}` or pass scheduler='local' / 'in-process'."
            ) from exc
        logger.info("connected to the Dask scheduler at %s", resolved)
        try:
            yield client
        finally:
            client.close()  # the remote cluster is someone else's: leave it running
        return
    workers = max(1, min(_cores(), n_workers or _cores()))
    # the cluster's own scheduler logs each start, connection and stop at INFO: keep them out
    # of the user's log unless this module logs at DEBUG
    quiet = logging.getLogger("distributed")
    level = quiet.level
    if not logger.isEnabledFor(logging.DEBUG):
        quiet.setLevel(max(level, logging.WARNING))
    try:
        cluster = LocalCluster(
            n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None
        )
        client = Client(cluster, set_as_default=False)
        logger.info("started a local Dask cluster of %d worker process(es)", workers)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    finally:
        quiet.setLevel(level)


def _label(item: Any, limit: int = 120) -> str:
    text = repr(item)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _call(func: Callable, item: Any, shared: Mapping[str, Any]) -> Any:
    """One task: ``func(item, **shared)`` with scikit-learn, OpenMP and BLAS on one thread."""
    with threadpool_limits(limits=1):
        return func(item, **shared)


def map_tasks(
    func: Callable,
    items: Sequence[Any],
    *,
    scheduler: str | None = None,
    progress: bool = True,
    desc: str = "tasks",
    shared: Mapping[str, Any] | None = None,
    must_travel: Sequence[str] = (),
) -> list:
    """``[func(item, **shared) for item in items]``, here or on Dask, in the order of ``items``.

    ``must_travel`` names ``shared`` inputs (small ones, e.g. a model factory) checked with
    :func:`unsendable` before a cluster starts: one that Dask cannot send raises a fix-it
    ``TypeError`` instead of Dask's tracebacks.

    Parameters
    ----------
    func : callable
        ``func(item, **shared)``; a module-level function of an installed package (workers
        import it by name). It must carry its own seeds: results may not depend on placement.
    items : sequence
        One task each. Items travel to workers one by one (keep them small).
    scheduler : str or None
        See :func:`resolve_scheduler`. Nothing configured or ``"in-process"``: a plain loop
        here; ``"local"`` with fewer than 2 items: a plain loop too (a cluster would not pay).
    progress : bool
        A progress bar over the tasks (completed, in any order).
    desc : str
        The progress bar's label and the tasks' name in errors.
    shared : mapping of str -> object, optional
        Keyword arguments every task gets (candles, a study, configs): sent once to every
        worker, not once per task.

    Returns
    -------
    list
        The tasks' results, in the order of ``items``.

    Raises
    ------
    TaskError
        A task raised: the message names its item and the task's exception (also its
        ``__cause__``); the other tasks are cancelled.
    SchedulerError
        Nothing answers at the scheduler's address.
    """
    items, shared = list(items), dict(shared or {})
    resolved = resolve_scheduler(scheduler)
    start = time.perf_counter()
    if resolved in (None, IN_PROCESS) or (resolved == LOCAL and len(items) < 2):
        results = _map_in_process(func, items, shared, progress=progress, desc=desc)
        logger.info(
            "%s: %d task(s) in process, %.1f s", desc, len(items), time.perf_counter() - start
        )
        return results
    _check_travel(shared, must_travel, desc=desc, where=resolved)
    results, n_workers = _map_on_dask(func, items, shared, resolved, progress=progress, desc=desc)
    logger.info(
        "%s: %d task(s) on %d Dask worker(s) (%s), %.1f s",
        desc,
        len(items),
        n_workers,
        resolved,
        time.perf_counter() - start,
    )
    return list(results)


def _map_in_process(func, items: list, shared: dict, *, progress: bool, desc: str) -> list:
    """:func:`map_tasks` as a plain loop here; the first task that raises stops it."""
    results = []
    for item in tqdm(items, desc=desc, unit="task", disable=not progress):
        try:
            results.append(_call(func, item, shared))
        except Exception as exc:
            raise TaskError(
                f"{desc}: the task of {_label(item)} failed: {type(exc).__name__}: {exc}",
                item,
            ) from exc
    return results


def _check_travel(shared: dict, must_travel: Sequence[str], *, desc: str, where: str) -> None:
    """Refuse, with a fix, a ``must_travel`` input Dask cannot send to the workers at ``where``."""
    for name in must_travel:
        error = unsendable(shared[name])
        if error is not None:
            raise TypeError(
                f"{desc}: {name} {shared[name]!r} cannot be pickled for the Dask workers at "
                f"{where} ({type(error).__name__}: {error}). Fix: pass a module-level "
                "function or class, e.g. functools.partial(EnsembleScorer, n_estimators=50), "
                "or run in process (scheduler='in-process')."
            ) from error


def _map_on_dask(
    func, items: list, shared: dict, resolved: str, *, progress: bool, desc: str
) -> tuple[list, int]:
    """:func:`map_tasks` on the Dask cluster at ``resolved``: the results in the order of
    ``items`` and the number of workers; a failed task cancels the others."""
    from distributed import as_completed

    with dask_client(resolved, n_workers=len(items)) as client:
        # shared inputs once to every worker; hash=False: no hashing of large frames
        remote = {
            name: client.scatter([value], broadcast=True, hash=False)[0]
            for name, value in shared.items()
        }
        futures = [client.submit(_call, func, item, remote, pure=False) for item in items]
        index = {future.key: i for i, future in enumerate(futures)}
        done = tqdm(
            as_completed(futures, loop=client.loop),
            total=len(futures),
            desc=desc,
            unit="task",
            disable=not progress,
        )
        for future in done:
            if future.status == "error":
                exc, item = future.exception(), items[index[future.key]]
                done.close()
                client.cancel(futures)
                raise TaskError(
                    f"{desc}: the task of {_label(item)} failed on a Dask worker: "
                    f"{type(exc).__name__}: {exc}",
                    item,
                ) from exc
        results = client.gather(futures)
        n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
    return results, n_workers
