"""Run one pipeline notebook: validate, execute under a wall-clock limit, report, index.

:func:`run_pipeline` writes ``<reports>/<pipeline>/<run-id>/`` with the executed notebook,
its HTML report, ``manifest.json`` and ``runner.log`` (the executor's output). papermill runs in
a child process (``python -m research.runner.executor``) in its own session, because papermill's
``execution_timeout`` is per cell: on the wall-clock limit the whole process tree (papermill and
its kernel) is killed, and the notebook papermill saved as cells finished is kept and marked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from research.runner.catalog import default_reports_dir, resolve_pipeline
from research.runner.html import write_report
from research.runner.index import build_index
from research.runner.kernel import ensure_kernel
from research.runner.manifest import (
    ERROR_NAMES,
    MANIFEST_NAME,
    build_manifest,
    first_error,
    log_tail,
    mark_failed,
    running_cell,
    write_json_atomic,
)
from research.runner.params import (
    Parameter,
    ParameterError,
    find_parameters_cell,
    parse_parameters,
    validate_parameters,
)

logger = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_KILL_GRACE_SEC = 3.0  # SIGTERM first so the kernel can exit cleanly, then SIGKILL


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What :func:`run_pipeline` left behind.

    Attributes
    ----------
    status : str
        ``"ok"``, ``"failed"`` (a cell raised, a bad parameter, the executor crashed) or
        ``"timeout"`` (stopped at the wall-clock limit).
    pipeline, run_id : str
        The notebook's stem and the run's id (the run folder's name).
    run_dir, notebook, html : Path
        ``<reports>/<pipeline>/<run_id>/`` and the executed ``.ipynb`` and ``.html`` in it.
    manifest : dict
        The content of ``manifest.json``.
    error : str or None
        ``"<ename>: <evalue>"`` of a failed run, else ``None``.
    """

    status: str
    pipeline: str
    run_id: str
    run_dir: Path
    notebook: Path
    html: Path
    manifest: dict
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the run finished without error."""
        return self.status == "ok"


def new_run_id(now: datetime | None = None) -> str:
    """A run id: UTC timestamp plus a short random suffix, e.g. ``20261126T101500Z-3f9a``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def _make_run_dir(reports_dir: Path, pipeline: str, run_id: str | None) -> tuple[str, Path]:
    if run_id is not None and not _RUN_ID.match(run_id):
        raise ValueError(
            f"run id {run_id!r} is not a plain folder name. Fix: use letters, digits, '.', '_' "
            "or '-' (at most 100), or omit --run-id for a timestamped one."
        )
    for _ in range(20):  # a random suffix collides only when many runs start in one second
        rid = run_id or new_run_id()
        run_dir = reports_dir / pipeline / rid
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
            return rid, run_dir
        except FileExistsError:
            if run_id is not None:
                raise ValueError(
                    f"run {run_dir} already exists. Fix: pass a new --run-id (runs are never "
                    "overwritten) or omit it."
                ) from None
    raise RuntimeError(f"could not create a fresh run folder under {reports_dir / pipeline}")


def run_pipeline(
    name_or_path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    pipelines_dir: str | Path | None = None,
    reports_dir: str | Path | None = None,
    timeout_sec: float = 3600,
    run_id: str | None = None,
    progress: bool = False,
    cwd: str | Path | None = None,
) -> RunResult:
    """Run a pipeline notebook with validated parameters and leave its report.

    Parameters
    ----------
    name_or_path : str or Path
        A pipeline name (notebook stem in ``pipelines_dir``) or a path to an ``.ipynb``.
    parameters : Mapping, optional
        Overrides of the notebook's parameters (see
        :func:`~research.runner.params.validate_parameters`; strings are read as ``-p`` text).
    pipelines_dir : str or Path, optional
        Default: :func:`~research.runner.catalog.default_pipelines_dir`.
    reports_dir : str or Path, optional
        Root of the run folders; default ``$PHANTOMLAB_REPORTS_DIR``, else ``reports``.
    timeout_sec : float
        Wall-clock limit of the whole run in seconds (kernel start included).
    run_id : str, optional
        Folder name of the run; default :func:`new_run_id`. An existing run is never reused.
    progress : bool
        Show papermill's per-cell progress bar on stderr.
    cwd : str or Path, optional
        Working directory of the kernel; default the current directory, so relative paths in
        parameters (e.g. ``data_dir``) mean what they mean in the caller's shell.

    Returns
    -------
    RunResult
        Status ``"ok"``, ``"failed"`` (a cell raised) or ``"timeout"``; the failed notebook
        and its HTML are kept either way. ``reports/index.html`` is rebuilt.

    Raises
    ------
    PipelineNotFoundError
        Unknown name (nothing is written).
    ParameterError
        A bad parameter or parameters cell. The run folder is still written (the notebook
        un-executed with the error on top, its HTML, a manifest with status ``"failed"``) and
        ``exc.result`` is its :class:`RunResult`: bad input raises, as everywhere in Python,
        but leaves the same audit trail as a failed run.
    ValueError
        A malformed or already used ``run_id``.
    """
    source = resolve_pipeline(name_or_path, pipelines_dir)
    pipeline = source.stem
    reports = Path(reports_dir) if reports_dir is not None else default_reports_dir()
    kernel = ensure_kernel()  # before the run folder: an environment problem leaves no husk
    rid, run_dir = _make_run_dir(reports, pipeline, run_id)
    started = datetime.now(UTC)
    clock = time.monotonic()
    out_nb = run_dir / f"{pipeline}.ipynb"
    run = {"pipeline": pipeline, "run_id": rid, "run_dir": run_dir, "source": source,
           "started": started, "clock": clock, "timeout_sec": timeout_sec}  # fmt: skip
    declared: list[Parameter] | None = None
    try:
        declared = parse_parameters(source)
        overrides = validate_parameters(declared, parameters or {})
    except ParameterError as exc:
        exc.result = _fail_before_start(run, exc, declared, parameters or {})
        raise
    effective = {p.name: p.default for p in declared} | overrides
    workdir = Path(cwd) if cwd is not None else Path.cwd()
    logger.info("running %s as %s (timeout %.0f s)", source, run_dir, timeout_sec)
    rc, stopped = _execute(source, out_nb, effective, kernel, workdir, run, progress)
    nb = nbformat.read(out_nb, as_version=4) if out_nb.is_file() else nbformat.read(source, 4)
    if stopped:  # "timeout" or "interrupted": the notebook is partial, the running cell marked
        evalue = {
            "timeout": f"the run exceeded its wall-clock limit of {timeout_sec:g} s, stopped",
            "interrupted": "the run was interrupted (Ctrl-C or a signal) and stopped",
        }[stopped]
        index = mark_failed(nb, f"**Run stopped.** {evalue}.", running_cell(nb))
        error = {"ename": ERROR_NAMES[stopped], "evalue": evalue}
        if index is not None:
            error |= {"cell": index, "cell_id": nb.cells[index].get("id"),
                      "execution_count": nb.cells[index].get("execution_count")}  # fmt: skip
        status = "timeout" if stopped == "timeout" else "failed"
    else:
        error = first_error(nb)
        if error is None and rc != 0:  # the executor died outside any cell (kernel, papermill)
            error = {"ename": ERROR_NAMES["executor"], "evalue": log_tail(run_dir)}
            mark_failed(nb, f"**Run failed before finishing.** {error['evalue']}", None)
        status = "ok" if error is None and rc == 0 else "failed"
    nbformat.write(nb, out_nb)
    result = _finish(run, nb, status, error, effective, overrides, declared, kernel)
    if stopped == "interrupted":  # recorded; the caller still gets its KeyboardInterrupt
        raise KeyboardInterrupt(f"pipeline run {run_dir} interrupted")
    return result


def _fail_before_start(
    run: dict, exc: ParameterError, declared: list[Parameter] | None, raw: Mapping[str, Any]
) -> RunResult:
    """Leave the un-executed notebook, its HTML and a failed manifest for a bad parameter."""
    source, out_nb = run["source"], run["run_dir"] / f"{run['pipeline']}.ipynb"
    nb = nbformat.read(source, as_version=4)
    try:
        index: int | None = find_parameters_cell(nb, source.name)
    except ParameterError:
        index = None
    index = mark_failed(nb, f"**This run did not start: bad parameters.** {exc}", index)
    nbformat.write(nb, out_nb)
    error = {"ename": ERROR_NAMES["parameters"], "evalue": str(exc)}
    if index is not None:
        error |= {"cell": index, "cell_id": nb.cells[index].get("id")}
    defaults = {p.name: p.default for p in declared or []}
    return _finish(run, nb, "failed", error, defaults, dict(raw), declared, None)


def _finish(
    run: dict,
    nb: nbformat.NotebookNode,
    status: str,
    error: dict | None,
    parameters: dict,
    overrides: dict,
    declared: list[Parameter] | None,
    kernel: str | None,
) -> RunResult:
    """Write the HTML and the manifest of a finished run, rebuild the index, return the result."""
    from research.runner.results import collect_results

    run_dir: Path = run["run_dir"]
    manifest = build_manifest(
        run, status, error, parameters, overrides, collect_results(nb), kernel
    )
    html_path = run_dir / manifest["html"]
    try:
        write_report(nb, manifest, html_path, declared=declared)
    except Exception as exc:  # noqa: BLE001 - a report bug must not lose the run's manifest
        logger.exception("HTML export of %s failed", run_dir)
        manifest["html_error"] = f"{type(exc).__name__}: {exc}"
        write_report(nbformat.v4.new_notebook(), manifest, html_path, declared=declared)
    message = f"{error['ename']}: {error['evalue']}" if error else None
    if status != "ok":
        _close_pipeline_run(manifest, parameters, message or status)
    write_json_atomic(run_dir / MANIFEST_NAME, manifest)
    build_index(run_dir.parents[1])
    if status != "ok":
        logger.info("run %s %s: %s", run_dir, status, message)
    return RunResult(
        status=status,
        pipeline=run["pipeline"],
        run_id=run["run_id"],
        run_dir=run_dir,
        notebook=run_dir / manifest["notebook"],
        html=html_path,
        manifest=manifest,
        error=message,
    )


def _close_pipeline_run(manifest: dict, parameters: Mapping, message: str) -> None:
    """Mark the notebook's SQL ``pipeline_runs`` row failed when the notebook died after
    opening it (it said so with ``record(pipeline_run_id=...)``): a notebook cannot catch its
    own failure, the runner can. Best effort: the manifest notes whether it worked."""
    run_id = manifest.get("results", {}).get("pipeline_run_id")
    if not run_id:
        return
    try:
        from research.stores.audit import AuditTrail

        audit = AuditTrail(parameters.get("database_url"), upgrade=False)
        try:
            audit.finish_run(str(run_id), "failed", error=message,
                             report_path=manifest.get("html"))  # fmt: skip
        finally:
            audit.close()
        manifest["pipeline_run_closed"] = True
    except Exception as exc:  # noqa: BLE001 - the run's own artefacts matter more
        logger.warning("pipeline_runs row %s left open: %s", run_id, exc)
        manifest["pipeline_run_closed"] = f"{type(exc).__name__}: {exc}"


def _pump(stream, log_path: Path, echo: bool) -> None:
    """Copy the executor's output to ``runner.log`` (and to stderr when showing progress)."""
    with open(log_path, "ab") as log:
        for chunk in iter(lambda: stream.read1(4096), b""):
            log.write(chunk)
            log.flush()
            if echo:
                sys.stderr.buffer.write(chunk)
                sys.stderr.buffer.flush()


def _execute(
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
        target=_pump, args=(proc.stdout, run["run_dir"] / "runner.log", progress), daemon=True
    )
    pump.start()
    remaining = run["timeout_sec"] - (time.monotonic() - run["clock"])
    stopped = None
    try:
        rc = proc.wait(timeout=max(remaining, 0.0))
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
        stopped = "timeout" if isinstance(exc, subprocess.TimeoutExpired) else "interrupted"
        _kill_tree(proc)
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


def _kill_tree(proc: subprocess.Popen) -> None:
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
