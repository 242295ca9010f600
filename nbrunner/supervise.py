"""The executor child of a pipeline run: started, logged, kept alive, and stopped.

papermill runs in a child process (``python -m nbrunner.executor``) in its own session,
because papermill's ``execution_timeout`` is per cell: at the run's wall-clock limit, on
Ctrl-C or on SIGTERM, the whole process tree (papermill and its kernel) is killed here.

* The parameters reach the child on its **stdin** (JSON), never on its command line, which
  any local user can read (``ps``, ``/proc/<pid>/cmdline``) for the whole run.
* :class:`StopSignals` turns a SIGTERM (a scheduler stopping the job, ``systemctl stop``)
  into a recorded stop: the child is killed and the run's artefacts written before the
  signal takes its usual effect.
* :class:`Heartbeat` rewrites the run's ``manifest.json`` (status ``running``) every
  :func:`~nbrunner.manifest.heartbeat_interval` seconds, so that a runner killed
  outright (``kill -9``, OOM, a reboot) is recognised later as ``died``
  (:func:`~nbrunner.index.mark_dead_runs`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from nbrunner.manifest import LOG_NAME, write_json_atomic

logger = logging.getLogger(__name__)

_KILL_GRACE_SEC = 3.0  # SIGTERM first so the kernel can exit cleanly, then SIGKILL


class Terminated(BaseException):
    """SIGTERM arrived while the executor ran (a BaseException: no ``except Exception`` eats it)."""


class StopSignals:
    """Record a SIGTERM during a run instead of dying mid-write; re-deliver it at the end.

    While installed (``with StopSignals() as stop:``) a SIGTERM sets :attr:`received`; inside
    :meth:`armed` (the wait for the executor) it also raises :class:`Terminated`, which stops
    the executor. When the block ends the previous handler is restored and, if a SIGTERM came,
    it is raised again: by default the process then ends as ``kill`` asked, after the
    manifest, the HTML and the index are written. Only the main thread can install signal
    handlers; elsewhere, or when SIGTERM is ignored, nothing is installed.
    """

    def __init__(self) -> None:
        self.received = False
        self._armed = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGTERM)
            if previous is not signal.SIG_IGN:
                self._previous = signal.signal(signal.SIGTERM, self._handle)
                self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._installed:
            return
        previous = signal.SIG_DFL if self._previous is None else self._previous  # set from C
        signal.signal(signal.SIGTERM, previous)
        self._installed = False
        if self.received:
            logger.warning("SIGTERM received: the run was stopped and recorded; exiting")
            signal.raise_signal(signal.SIGTERM)

    def _handle(self, signum: int, frame: object) -> None:
        self.received = True
        if self._armed:
            self._armed = False  # raise once: the clean-up below must not be interrupted
            raise Terminated(f"signal {signum}")

    @contextlib.contextmanager
    def armed(self):
        """Within this block a SIGTERM raises :class:`Terminated` (also one already received)."""
        if self.received:
            raise Terminated("signal 15 (before the executor started)")
        self._armed = True
        try:
            yield
        finally:
            self._armed = False


class Heartbeat:
    """Keep a running run's ``manifest.json`` fresh from a daemon thread.

    Every ``interval`` seconds the manifest is rewritten (atomically) with ``heartbeat_at``
    set to now and ``results`` merged from the executed notebook as papermill saved it so far
    (so a ``pipeline_run_id`` a notebook recorded is known even if the runner dies later).

    Parameters
    ----------
    path : Path
        The run's ``manifest.json``.
    manifest : dict
        The running manifest (:func:`~nbrunner.manifest.build_manifest` with status
        ``"running"``); written once at :meth:`start`.
    notebook : Path
        The output notebook papermill saves after each cell.
    interval : float
        Seconds between beats.
    """

    def __init__(self, path: Path, manifest: dict, notebook: Path, interval: float) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.notebook = Path(notebook)
        self.interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="run-heartbeat", daemon=True)
        self._seen: tuple[int, int] | None = None

    def start(self) -> Heartbeat:
        """Write the running manifest now, then keep it fresh until :meth:`stop`."""
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating (the final manifest replaces the running one right after)."""
        self._stop.set()
        with self._lock:  # a beat in progress finishes first
            pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 5)

    def beat(self) -> None:
        """Refresh ``heartbeat_at`` (and the results recorded so far) in the manifest."""
        with self._lock:
            if self._stop.is_set():  # the final manifest is being written: leave it alone
                return
            self._merge_results()
            self.manifest["heartbeat_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            write_json_atomic(self.path, self.manifest)

    def _merge_results(self) -> None:
        try:
            stat = self.notebook.stat()
        except OSError:  # papermill has not saved it yet
            return
        if self._seen == (stat.st_mtime_ns, stat.st_size):
            return
        try:
            import nbformat

            from nbrunner.results import collect_results

            results = collect_results(nbformat.read(self.notebook, as_version=4))
        except Exception:  # noqa: BLE001 - caught mid-write: read it at the next beat
            return
        self._seen = (stat.st_mtime_ns, stat.st_size)
        self.manifest["results"] = results
        self.manifest["model_version"] = results.get("model_version")
        self.manifest["metrics"] = results.get("metrics")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - e.g. disk full: try again at the next beat
                logger.exception("heartbeat of %s failed", self.path)


def _pump(stream: IO[bytes], log_path: Path, echo: bool) -> None:
    """Copy the executor's output to the run's log (and to stderr when showing progress)."""
    with open(log_path, "ab") as log:
        for chunk in iter(lambda: stream.read1(4096), b""):
            log.write(chunk)
            log.flush()
            if echo:
                sys.stderr.buffer.write(chunk)
                sys.stderr.buffer.flush()


def run_executor(
    source: Path,
    out_nb: Path,
    params: dict,
    kernel: str,
    workdir: Path,
    run: dict,
    progress: bool,
    *,
    shown: dict | None = None,
    stop: StopSignals | None = None,
) -> tuple[int, str | None]:
    """Run the executor child; return its exit code and why it was stopped, if it was.

    ``params`` (the real values) and ``shown`` (the same with URL passwords masked, what the
    executed notebook may show) are written to the child's stdin as JSON. The reason is
    ``"timeout"`` (the wall-clock limit), ``"interrupted"`` (a KeyboardInterrupt in this
    process: the child runs in its own session, so Ctrl-C does not reach it and it is killed
    here instead) or ``"terminated"`` (a SIGTERM, see :class:`StopSignals`).
    """
    stop = stop or StopSignals()
    if stop.received:  # a SIGTERM before the start: nothing to run
        return -signal.SIGTERM, "terminated"
    cmd = [
        sys.executable,
        "-m",
        "nbrunner.executor",
        "--input",
        str(source),
        "--output",
        str(out_nb),
        "--kernel",
        kernel,
        "--cwd",
        str(workdir),
        "--parameters-stdin",
    ] + (["--progress"] if progress else [])
    env = dict(os.environ)
    # A pipeline report needs inline figures even when the caller runs headless with Agg.
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env |= {
        "PYTHONUNBUFFERED": "1",
        "PHANTOMLAB_RUN_ID": run["run_id"],
        "PHANTOMLAB_RUN_DIR": str(Path(run["run_dir"]).resolve()),
    }
    # the caller's additions (the kernel inherits them through the executor)
    env |= run.get("kernel_env") or {}
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    pump = threading.Thread(
        target=_pump, args=(proc.stdout, run["run_dir"] / LOG_NAME, progress), daemon=True
    )
    pump.start()
    payload = json.dumps({"parameters": params, "shown": params if shown is None else shown})
    stopped = None
    try:
        with stop.armed():
            try:
                proc.stdin.write(payload.encode("utf-8"))
                proc.stdin.close()
            except BrokenPipeError:  # the child died at start: its log says why
                pass
            remaining = run["timeout_sec"] - (time.monotonic() - run["clock"])
            rc = proc.wait(timeout=max(remaining, 0.0))
    except (subprocess.TimeoutExpired, KeyboardInterrupt, Terminated) as exc:
        stopped = {subprocess.TimeoutExpired: "timeout", Terminated: "terminated"}.get(
            type(exc), "interrupted"
        )
        if stopped == "terminated" and proc.poll() == 0:
            stopped = None  # the signal came as the run ended: it is complete, say so
        kill_tree(proc)
        rc = proc.wait()
    pump.join(timeout=_KILL_GRACE_SEC)
    return rc, stopped


def _descendants(pid: int) -> list:
    """The executor's child processes (its kernel runs in a session of its own)."""
    try:
        import psutil  # a dependency of ipykernel
    except ImportError:  # pragma: no cover - then the process-group kill has to do
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:  # the executor exited meanwhile
        return []


def kill_tree(proc: subprocess.Popen) -> None:
    """Stop the executor, its process group and its kernel: SIGTERM, then SIGKILL."""
    kids = _descendants(proc.pid)  # before signalling: orphans are no one's children
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        for kid in kids:
            with contextlib.suppress(Exception):  # psutil.NoSuchProcess: already gone
                kid.send_signal(sig)
        try:
            proc.wait(timeout=_KILL_GRACE_SEC)
        except subprocess.TimeoutExpired:
            continue
        if kids:
            import psutil

            _, alive = psutil.wait_procs(kids, timeout=_KILL_GRACE_SEC)
            kids = alive
        if not kids:
            return
        if sig == signal.SIGTERM:
            logger.warning("process(es) %s outlived SIGTERM; killing", [k.pid for k in kids])
