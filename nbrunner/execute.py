"""Run one pipeline notebook: validate, execute under a wall-clock limit, report, index.

:func:`run_pipeline` writes ``<reports>/<pipeline>/<run-id>/`` with the executed notebook,
its HTML report, ``manifest.json`` and ``runner.log`` (the executor's output). papermill runs in
a child process under a wall-clock limit (:mod:`~nbrunner.supervise`); on a timeout the
notebook papermill saved as cells finished is kept and marked.

The manifest exists from the start (status ``running``, a heartbeat refreshed every few
seconds) and the index lists the run at once; a SIGTERM stops the run as ``failed``
(``Terminated``) with every artefact written; a runner killed outright is marked ``died``
by the next run or ``phantomlab reports`` (:func:`~nbrunner.index.mark_dead_runs`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from nbrunner.catalog import default_reports_dir, resolve_pipeline
from nbrunner.errors import ParameterError
from nbrunner.html import AnswerHook, write_report, write_running_page
from nbrunner.index import build_index
from nbrunner.kernel import ensure_kernel
from nbrunner.manifest import (
    ERROR_NAMES,
    MANIFEST_NAME,
    FailureHook,
    build_manifest,
    call_failure_hook,
    first_error,
    heartbeat_interval,
    log_tail,
    mark_failed,
    mask_secrets,
    running_cell,
    write_json_atomic,
)
from nbrunner.overrides import validate_parameters
from nbrunner.params import (
    Parameter,
    find_parameters_cell,
    parse_parameters,
    read_notebook,
)
from nbrunner.supervise import Heartbeat, StopSignals, run_executor

logger = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What :func:`run_pipeline` left behind.

    Attributes
    ----------
    status : str
        ``"ok"``, ``"failed"`` (a cell raised, a bad parameter, the executor crashed, the run
        was interrupted or got SIGTERM) or ``"timeout"`` (stopped at the wall-clock limit).
    pipeline, run_id : str
        The notebook's stem and the run's id (the run folder's name).
    run_dir, notebook, html : Path
        ``<reports>/<pipeline>/<run_id>/`` and the executed ``.ipynb`` and ``.html`` in it.
    manifest : dict
        The content of ``manifest.json``.
    error : str or None
        ``"<ename>: <evalue>"`` of a failed run, else ``None``.
    index : Path or None
        The reports index (``<reports>/index.html``) rebuilt after the run.
    """

    status: str
    pipeline: str
    run_id: str
    run_dir: Path
    notebook: Path
    html: Path
    manifest: dict
    error: str | None = None
    index: Path | None = None

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
    on_failure: FailureHook | None = None,
    kernel_env: Mapping[str, str] | None = None,
    answer: AnswerHook | None = None,
) -> RunResult:
    """Run a pipeline notebook with validated parameters and leave its report.

    Parameters
    ----------
    name_or_path : str or Path
        A pipeline name (notebook stem in ``pipelines_dir``) or a path to an ``.ipynb``.
    parameters : Mapping, optional
        Overrides of the notebook's parameters (see
        :func:`~nbrunner.overrides.validate_parameters`; strings are read as ``-p`` text).
    pipelines_dir : str or Path, optional
        Default: :func:`~nbrunner.catalog.default_pipelines_dir`.
    reports_dir : str or Path, optional
        Root of the run folders; default
        :func:`~nbrunner.catalog.default_reports_dir` (``$PHANTOMLAB_REPORTS_DIR``,
        else ``reports``).
    timeout_sec : float
        Wall-clock limit of the whole run in seconds (kernel start included).
    run_id : str, optional
        Folder name of the run; default :func:`new_run_id`. An existing run is never reused.
    progress : bool
        Show papermill's per-cell progress bar on stderr.
    cwd : str or Path, optional
        Working directory of the kernel; default the current directory, so relative paths in
        parameters (e.g. ``data_dir``) mean what they mean in the caller's shell.
    on_failure, kernel_env, answer : optional
        The caller's hooks: ``on_failure`` (:data:`~nbrunner.manifest.FailureHook`) is called
        when the run ends other than ``ok`` or is found dead, to close what the caller keeps
        outside the run folder; ``kernel_env`` is added to the executor's and kernel's
        environment; ``answer`` (:data:`~nbrunner.html.AnswerHook`) says what a finished
        run's results answer, first on its page and in its index row.

    Returns
    -------
    RunResult
        Status ``"ok"``, ``"failed"`` (a cell raised) or ``"timeout"``; the failed notebook
        and its HTML are kept either way. ``reports/index.html`` is rebuilt (at the start
        too: the run is listed as ``running`` while it runs).

    Notes
    -----
    The parameters reach the executor on its stdin, never its command line; URL passwords are
    masked in the executed notebook, its HTML and the manifest (the kernel reads the real
    value from its environment). On SIGTERM the executor and its kernel are stopped, the run
    is recorded as ``failed`` (``Terminated``), ``on_failure`` is called, and the signal is
    then re-raised (the process ends as ``kill`` asked). On Ctrl-C the same, then ``KeyboardInterrupt``. Runs whose runner was killed outright are marked
    ``died`` later (:func:`~nbrunner.index.mark_dead_runs`).

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
    OSError
        The notebook file cannot be read, or the kernelspec cannot be registered (nothing
        is written).
    """
    source = resolve_pipeline(name_or_path, pipelines_dir)
    with StopSignals() as stop:  # a SIGTERM from here on is recorded, then re-raised
        return _run(
            source,
            parameters,
            reports_dir,
            timeout_sec,
            run_id,
            progress,
            cwd,
            stop,
            {"on_failure": on_failure, "kernel_env": dict(kernel_env or {}), "answer": answer},
        )


def _run(
    source: Path,
    parameters: Mapping[str, Any] | None,
    reports_dir: str | Path | None,
    timeout_sec: float,
    run_id: str | None,
    progress: bool,
    cwd: str | Path | None,
    stop: StopSignals,
    hooks: dict,
) -> RunResult:
    """:func:`run_pipeline` once the notebook is found, with SIGTERM handled by ``stop``;
    ``hooks`` holds its ``on_failure``, ``kernel_env`` and ``answer``."""
    pipeline = source.stem
    # Read once, as the run starts: the manifest's hash is of the notebook as it was then (not
    # as it is when a long run ends), and the parameters are parsed from those same bytes.
    content = source.read_bytes()
    reports = Path(reports_dir) if reports_dir is not None else default_reports_dir()
    kernel = ensure_kernel()  # before the run folder: an environment problem leaves no husk
    beat_sec = heartbeat_interval()
    workdir = Path(cwd) if cwd is not None else Path.cwd()
    rid, run_dir = _make_run_dir(reports, pipeline, run_id)
    started = datetime.now(UTC)
    clock = time.monotonic()
    run = {
        "pipeline": pipeline,
        "run_id": rid,
        "run_dir": run_dir,
        "source": source,
        "source_sha256": hashlib.sha256(content).hexdigest(),
        "started": started,
        "clock": clock,
        "timeout_sec": timeout_sec,
        "notebook": f"{pipeline}.ipynb",
        "html": f"{pipeline}.html",
        "heartbeat_sec": beat_sec,
        "cwd": str(workdir.resolve()),
        **hooks,
    }
    out_nb = run_dir / run["notebook"]
    source_nb: nbformat.NotebookNode | None = None
    declared: list[Parameter] | None = None
    try:
        source_nb = read_notebook(source, content)
        declared = parse_parameters(source_nb, name=source.name)
        overrides = validate_parameters(declared, parameters or {})
    except ParameterError as exc:
        exc.result = _fail_before_start(run, exc, source_nb, declared, parameters or {})
        raise
    effective = {p.name: p.default for p in declared} | overrides
    running = build_manifest(run, "running", None, effective, overrides, {}, kernel)
    beat = Heartbeat(run_dir / MANIFEST_NAME, running, out_nb, beat_sec).start()
    try:
        write_running_page(running, run_dir / run["html"])
        # listed as running now; stale runs of dead runners marked died
        build_index(reports, on_failure=hooks["on_failure"], answer=hooks["answer"])
        logger.info("running %s as %s (timeout %.0f s)", source, run_dir, timeout_sec)
        shown = {k: mask_secrets(v) for k, v in effective.items()}
        rc, stopped = run_executor(
            source, out_nb, effective, kernel, workdir, run, progress, shown=shown, stop=stop
        )
        result = _complete(
            run, rc, stopped, source_nb, effective, overrides, declared, kernel, beat
        )
    finally:
        beat.stop()  # on an unexpected error the manifest stays "running" and goes stale
    if stopped == "interrupted":  # recorded; the caller still gets its KeyboardInterrupt
        raise KeyboardInterrupt(f"pipeline run {run_dir} interrupted")
    return result


_STOPPED = {
    "timeout": "the run exceeded its wall-clock limit of {timeout:g} s, stopped",
    "interrupted": "the run was interrupted (Ctrl-C or a signal) and stopped",
    "terminated": "the runner received SIGTERM (a scheduler or `kill` stopping it); the run "
    "was stopped",
}


def _complete(
    run: dict,
    rc: int,
    stopped: str | None,
    source_nb: nbformat.NotebookNode,
    effective: dict,
    overrides: dict,
    declared: list[Parameter],
    kernel: str,
    beat: Heartbeat,
) -> RunResult:
    """Read the executed notebook, decide the status, mark the error, :func:`_finish`."""
    out_nb = run["run_dir"] / run["notebook"]
    # No output notebook when the executor died before papermill's first save: report the
    # un-executed source (parsing it above did not change it).
    nb = nbformat.read(out_nb, as_version=4) if out_nb.is_file() else source_nb
    if stopped:  # timeout, interrupted, terminated: the notebook is partial, the cell marked
        evalue = _STOPPED[stopped].format(timeout=run["timeout_sec"])
        index = mark_failed(nb, f"**Run stopped.** {evalue}.", running_cell(nb))
        error = {"ename": ERROR_NAMES[stopped], "evalue": evalue}
        if index is not None:
            error |= {
                "cell": index,
                "cell_id": nb.cells[index].get("id"),
                "execution_count": nb.cells[index].get("execution_count"),
            }
        status = "timeout" if stopped == "timeout" else "failed"
    else:
        error = first_error(nb)
        if error is None and rc != 0:  # the executor died outside any cell (kernel, papermill)
            error = {"ename": ERROR_NAMES["executor"], "evalue": log_tail(run["run_dir"])}
            mark_failed(nb, f"**Run failed before finishing.** {error['evalue']}", None)
        status = "ok" if error is None and rc == 0 else "failed"
    nbformat.write(nb, out_nb)
    return _finish(run, nb, status, error, effective, overrides, declared, kernel, beat)


def _fail_before_start(
    run: dict,
    exc: ParameterError,
    nb: nbformat.NotebookNode | None,
    declared: list[Parameter] | None,
    raw: Mapping[str, Any],
) -> RunResult:
    """Leave the un-executed notebook, its HTML and a failed manifest for a bad parameter.

    ``nb`` is the source notebook as read at the start (marked here), or ``None`` when the
    file is not a notebook at all; then an empty one carries the error banner.
    """
    if nb is None:
        nb = nbformat.v4.new_notebook()
    try:
        index: int | None = find_parameters_cell(nb, run["source"].name)
    except ParameterError:
        index = None
    index = mark_failed(nb, f"**This run did not start: bad parameters.** {exc}", index)
    nbformat.write(nb, run["run_dir"] / run["notebook"])
    error = {"ename": ERROR_NAMES["parameters"], "evalue": str(exc)}
    if index is not None:
        error |= {"cell": index, "cell_id": nb.cells[index].get("id")}
    defaults = {p.name: p.default for p in declared or []}
    # "failed" for the exit code and the API; "refused" for readers: it never ran, so the
    # index lists it apart from the runs (nbrunner.index)
    run = run | {"refused": True}
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
    beat: Heartbeat | None = None,
) -> RunResult:
    """Write the HTML and the manifest of a finished run, rebuild the index, return the result.

    ``beat`` (the run's heartbeat) keeps the running manifest fresh while the HTML renders and
    is stopped right before the final manifest replaces it.
    """
    from nbrunner.results import collect_results

    run_dir: Path = run["run_dir"]
    manifest = build_manifest(
        run, status, error, parameters, overrides, collect_results(nb), kernel
    )
    if run.get("refused"):
        manifest["refused"] = True
    html_path = run_dir / run["html"]
    try:
        write_report(nb, manifest, html_path, declared=declared, answer=run.get("answer"))
    except Exception as exc:  # noqa: BLE001 - a report bug must not lose the run's manifest
        logger.exception("HTML export of %s failed", run_dir)
        manifest["html_error"] = f"{type(exc).__name__}: {exc}"
        write_report(nbformat.v4.new_notebook(), manifest, html_path, declared=declared)
    message = f"{error['ename']}: {error['evalue']}" if error else None
    if status != "ok":
        call_failure_hook(run.get("on_failure"), manifest, message or status, parameters)
    if beat is not None:
        beat.stop()
    write_json_atomic(run_dir / MANIFEST_NAME, manifest)
    index = build_index(
        run_dir.parents[1], on_failure=run.get("on_failure"), answer=run.get("answer")
    )
    if status != "ok":
        logger.info("run %s %s: %s", run_dir, status, message)
    return RunResult(
        status=status,
        pipeline=run["pipeline"],
        run_id=run["run_id"],
        run_dir=run_dir,
        notebook=run_dir / run["notebook"],
        html=html_path,
        manifest=manifest,
        error=message,
        index=index,
    )
