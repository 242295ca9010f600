"""The workbench's pipeline runs: the general runner plus the SQL ``pipeline_runs`` rows.

:mod:`nbrunner` runs any papermill notebook and knows nothing of the research flow.
A pipeline notebook of this workbench may open a row in the audit trail's ``pipeline_runs``
table and say so with ``record(pipeline_run_id=...)``; it cannot close that row when it fails,
is stopped or dies. :func:`close_pipeline_run` does, as the runner's ``on_failure`` hook.
:func:`run_pipeline` / :func:`build_index` are the runner's with that hook, with the
workbench's answer hook (a report's verdict, a retrain's decision) and with the kernel's
progress bars as text (the CLI and the demo use them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat

from nbrunner.execute import RunResult
from nbrunner.execute import run_pipeline as _run_pipeline
from nbrunner.html import run_answer as _run_answer
from nbrunner.html import write_report as _write_report
from nbrunner.index import build_index as _build_index
from research.reports.answer import results_answer

logger = logging.getLogger(__name__)


def run_pipeline(
    name_or_path: str | Path, parameters: Mapping[str, Any] | None = None, **options: Any
) -> RunResult:
    """:func:`nbrunner.run_pipeline` (same arguments) for a workbench notebook.

    Its page and index row answer first (:func:`~research.reports.answer.results_answer`). It
    closes the notebook's ``pipeline_runs`` row when the run fails
    (:func:`close_pipeline_run`), and the kernel draws text progress bars
    (``PHANTOMLAB_PROGRESS=text``: a widget would show nothing in the run's log).
    """
    from research.progress import PROGRESS_ENV

    kernel_env = {PROGRESS_ENV: "text"} | dict(options.pop("kernel_env", None) or {})
    return _run_pipeline(
        name_or_path,
        parameters,
        on_failure=close_pipeline_run,
        kernel_env=kernel_env,
        answer=results_answer,
        **options,
    )


def build_index(reports_dir: str | Path | None = None) -> Path:
    """:func:`nbrunner.build_index`, closing the ``pipeline_runs`` rows of runs it
    finds dead (:func:`close_pipeline_run`), each row with the run's answer."""
    return _build_index(reports_dir, on_failure=close_pipeline_run, answer=results_answer)


def run_answer(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """:func:`nbrunner.html.run_answer` with the workbench's answers (:func:`results_answer`):
    what a run's page and index row show first."""
    return _run_answer(manifest, results_answer)


def write_report(
    nb: nbformat.NotebookNode, manifest: Mapping[str, Any], path: str | Path, **options: Any
) -> Path:
    """:func:`nbrunner.html.write_report` (same arguments) with the workbench's answers."""
    return _write_report(nb, manifest, path, answer=results_answer, **options)


def close_pipeline_run(
    manifest: dict, message: str, parameters: Mapping[str, Any] | None = None
) -> None:
    """Mark the notebook's SQL ``pipeline_runs`` row failed if it is still ``running``.

    The runner's :data:`~nbrunner.manifest.FailureHook`. A row the notebook closed
    itself is left as it is. Best effort: the manifest's ``pipeline_run_closed`` says ``True``
    or why not.

    Parameters
    ----------
    manifest : dict
        The run's manifest; its ``results.pipeline_run_id`` names the row (no id: nothing to do).
    message : str
        The row's ``error`` text.
    parameters : Mapping, optional
        The run's effective parameters: ``database_url`` (``None``: ``PHANTOMLAB_DATABASE_URL``,
        as the notebook's default) is the audit trail. None for a run found dead: the URL is
        then read from its manifest (:func:`_audit_url`).
    """
    run_id = (manifest.get("results") or {}).get("pipeline_run_id")
    if not run_id:
        return
    if parameters is None:
        database_url, why = _audit_url(manifest)
        if why is not None:
            manifest["pipeline_run_closed"] = why
            return
    else:
        database_url = parameters.get("database_url")
    try:
        from research.stores.audit import AuditTrail

        audit = AuditTrail(database_url, upgrade=False)
        try:
            runs = audit.runs()
            row = runs.loc[runs["run_id"] == str(run_id)]
            if len(row) and row["status"].iloc[0] != "running":
                manifest["pipeline_run_closed"] = (
                    f"left {row['status'].iloc[0]!r} (closed by the notebook)"
                )
                return
            audit.finish_run(str(run_id), "failed", error=message, report_path=manifest.get("html"))
        finally:
            audit.close()
        manifest["pipeline_run_closed"] = True
    except Exception as exc:  # noqa: BLE001 - the run's own artefacts matter more
        logger.warning("pipeline_runs row %s left open: %s", run_id, exc)
        manifest["pipeline_run_closed"] = f"{type(exc).__name__}: {exc}"


def _audit_url(manifest: dict) -> tuple[str | None, str | None]:
    """``(url, None)`` of the audit trail a dead run's notebook wrote to, or ``(None, why not)``.

    The manifest's ``database_url`` parameter (``None``: ``PHANTOMLAB_DATABASE_URL``, as in the
    notebook). A masked password is taken from ``PHANTOMLAB_DATABASE_URL`` when that names the
    same database; a relative SQLite path is resolved against the run's working directory
    (and must exist: no empty database is created).
    """
    from sqlalchemy.engine import make_url

    from research.config import Settings
    from research.urls import mask_url

    env = os.environ.get("PHANTOMLAB_DATABASE_URL")
    url = (manifest.get("parameters") or {}).get("database_url") or Settings.from_env().database_url
    if ":***@" in url:  # masked in the manifest: the real one must come from the environment
        if not env or mask_url(env) != url:
            return None, (
                f"the manifest holds {url} with its password masked. Fix: export "
                "PHANTOMLAB_DATABASE_URL with the password and close the row by hand"
            )
        url = env
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_absolute():
            path = Path(manifest.get("cwd") or ".") / path
        if not path.is_file():
            return None, f"no SQLite audit trail at {path}"
        url = parsed.set(database=str(path)).render_as_string(hide_password=False)
    return url, None
