"""``manifest.json`` of a run, and reading the outcome out of an executed notebook.

The manifest is the machine-readable record of one run (the HTML is the human one)::

    {"pipeline", "run_id", "status": "ok" | "failed" | "timeout",
     "parameters": effective values (defaults merged with overrides), "overrides",
     "started_at", "finished_at" (ISO 8601, UTC), "duration_sec", "timeout_sec",
     "notebook", "html", "log" (file names inside the run folder),
     "source": {"path", "sha256"} (the input notebook, hashed as read when the run started),
     "error": {"ename", "evalue", "cell", "cell_id", "execution_count"} | null,
     "results": merged `record(...)` values, "model_version", "metrics" (from results),
     "kernel", "host", "versions"}

Passwords in URL parameters (``postgresql://u:***@host/db``) are masked in ``parameters`` and
``overrides``: the manifest, like the HTML drawn from it, is meant to be shared.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat

from research.runner.atomic import write_text_atomic
from research.runner.html import RUNNER_ERROR_TAG
from research.stores.backends import mask_url  # stdlib only at import: no redis, no SQLAlchemy

MANIFEST_NAME = "manifest.json"
LOG_NAME = "runner.log"
ERROR_NAMES = {"timeout": "Timeout", "interrupted": "Interrupted", "executor": "ExecutorError",
               "parameters": "ParameterError"}  # fmt: skip
_VERSIONED = ("papermill", "nbclient", "nbconvert", "ipykernel", "numpy", "pandas", "scikit-learn")


def first_error(nb: nbformat.NotebookNode) -> dict[str, Any] | None:
    """The first error output of an executed notebook: ename, evalue, cell index/id, In [n]."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return {
                    "ename": out.get("ename", "Error"),
                    "evalue": out.get("evalue", ""),
                    "cell": i,
                    "cell_id": cell.get("id"),
                    "execution_count": cell.get("execution_count"),
                }
    return None


def running_cell(nb: nbformat.NotebookNode) -> int | None:
    """Index of the cell papermill last marked as running (the one a timeout interrupted)."""
    for i, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return i
    return None


def mark_failed(nb: nbformat.NotebookNode, message: str, index: int | None) -> int | None:
    """Put ``message`` (markdown) on top of ``nb``; mark cell ``index`` as failed.

    Returns the marked cell's new index (one lower in the list, the banner sits above it).
    The banner carries a tag the HTML report drops (it draws its own from the manifest).
    """
    banner = nbformat.v4.new_markdown_cell(
        f'<span style="color:#cf222e">{message}</span>', metadata={"tags": [RUNNER_ERROR_TAG]}
    )
    nb.cells.insert(0, banner)
    nb.metadata.setdefault("papermill", {})["exception"] = True
    if index is None:
        return None
    cell = nb.cells[index + 1]
    cell.metadata.setdefault("papermill", {})["status"] = "failed"
    return index + 1


def log_tail(run_dir: Path, n_lines: int = 15) -> str:
    """Last lines of the run's ``runner.log`` (the executor's own error, if any)."""
    path = Path(run_dir) / LOG_NAME
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "the executor exited with an error and left no log"
    return "\n".join(lines[-n_lines:]) or "the executor exited with an error and an empty log"


def _versions() -> dict[str, str]:
    import research

    out = {"phantomlab": research.__version__, "python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def mask_secrets(value: Any) -> Any:
    """``value`` with the password of any URL text (also inside a list) replaced by ``***``.

    Parameters such as ``database_url`` may carry a password; the manifest and the HTML
    report are shared and kept, so they show ``postgresql://u:***@host/db`` instead. Other
    values are returned as they are.
    """
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if not isinstance(value, str) or "@" not in value:  # no userinfo, nothing to hide
        return value
    try:
        return mask_url(value)
    except ValueError:  # urlsplit refuses e.g. an unbalanced "[": then it is no URL
        return value


def build_manifest(
    run: dict,
    status: str,
    error: dict | None,
    parameters: dict,
    overrides: dict,
    results: dict,
    kernel: str | None,
) -> dict[str, Any]:
    """The manifest of a finished run (see the module docstring for its fields).

    ``run`` holds ``pipeline``, ``run_id``, ``started``, ``timeout_sec``, the file names
    ``notebook`` and ``html``, and ``source`` / ``source_sha256`` (the input notebook as read
    when the run started). Passwords in URL parameters are masked (:func:`mask_secrets`).
    """
    from research.stores.jsonable import to_jsonable

    finished = datetime.now(UTC)
    started: datetime = run["started"]
    manifest = {
        "pipeline": run["pipeline"],
        "run_id": run["run_id"],
        "status": status,
        "parameters": {k: mask_secrets(v) for k, v in parameters.items()},
        "overrides": {k: mask_secrets(v) for k, v in overrides.items()},
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "duration_sec": round((finished - started).total_seconds(), 3),
        "timeout_sec": run["timeout_sec"],
        "notebook": run["notebook"],
        "html": run["html"],
        "log": LOG_NAME,
        "source": {"path": str(Path(run["source"]).resolve()), "sha256": run["source_sha256"]},
        "error": error,
        "results": results,
        "model_version": results.get("model_version"),
        "metrics": results.get("metrics"),
        "kernel": kernel,
        "host": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python_executable": sys.executable,
        },
        "versions": _versions(),
    }
    return to_jsonable(manifest)


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` via a temporary file (readers never see half)."""
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
