"""The executor child of a pipeline run: started, logged, and stopped at the run's time limit.

papermill runs in a child process (``python -m research.runner.executor``) in its own session,
because papermill's ``execution_timeout`` is per cell: at the run's wall-clock limit, or on
Ctrl-C, the whole process tree (papermill and its kernel) is killed here.
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
from pathlib import Path
from typing import IO

from research.runner.manifest import LOG_NAME

logger = logging.getLogger(__name__)

_KILL_GRACE_SEC = 3.0  # SIGTERM first so the kernel can exit cleanly, then SIGKILL


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
) -> tuple[int, str | None]:
    """Run the executor child; return its exit code and why it was stopped, if it was.

    The reason is ``"timeout"`` (the wall-clock limit) or ``"interrupted"`` (a
    KeyboardInterrupt in this process: the child runs in its own session, so Ctrl-C does not
    reach it and it is killed here instead).
    """
    cmd = [sys.executable, "-m", "research.runner.executor", "--input", str(source),
           "--output", str(out_nb), "--kernel", kernel, "--cwd", str(workdir),
           "--parameters", json.dumps(params)] + (["--progress"] if progress else [])  # fmt: skip
    env = dict(os.environ)
    # A pipeline report needs inline figures even when the caller runs headless with Agg.
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env |= {"PYTHONUNBUFFERED": "1", "PHANTOMLAB_RUN_ID": run["run_id"],
            "PHANTOMLAB_RUN_DIR": str(Path(run["run_dir"]).resolve())}  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    pump = threading.Thread(
        target=_pump, args=(proc.stdout, run["run_dir"] / LOG_NAME, progress), daemon=True
    )
    pump.start()
    remaining = run["timeout_sec"] - (time.monotonic() - run["clock"])
    stopped = None
    try:
        rc = proc.wait(timeout=max(remaining, 0.0))
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
        stopped = "timeout" if isinstance(exc, subprocess.TimeoutExpired) else "interrupted"
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
