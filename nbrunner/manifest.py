"""``manifest.json`` of a run, and reading the outcome out of an executed notebook.

The manifest is the machine-readable record of one run (the HTML is the human one)::

    {"pipeline", "run_id", "status": "running" | "ok" | "failed" | "timeout" | "died",
     "parameters": effective values (defaults merged with overrides), "overrides",
     "started_at", "finished_at" (ISO 8601, UTC; null while running), "duration_sec",
     "timeout_sec", "heartbeat_at", "heartbeat_sec", "stale_after_sec", "runner_pid", "cwd",
     "notebook", "html", "log" (file names inside the run folder),
     "source": {"path", "sha256"} (the input notebook, hashed as read when the run started),
     "error": {"ename", "evalue", "cell", "cell_id", "execution_count"} | null,
     "results": merged `record(...)` values, "model_version", "metrics" (from results),
     "kernel", "host", "versions"}

Passwords in URL parameters (``postgresql://u:***@host/db``) are masked in ``parameters`` and
``overrides``: the manifest, like the HTML drawn from it, is meant to be shared.

**Liveness.** The manifest is written when the run starts, with status ``running``, and
rewritten every ``heartbeat_sec`` seconds (:data:`HEARTBEAT_ENV`, default
:data:`DEFAULT_HEARTBEAT_SEC`) with a fresh ``heartbeat_at`` until the final one replaces it.
A ``running`` manifest whose heartbeat is older than ``stale_after_sec`` (3 x the interval +
:data:`STALE_MARGIN_SEC`: 20 s by default) belongs to a runner that was killed (``kill -9``,
out of memory, a reboot); :func:`~nbrunner.index.mark_dead_runs` marks it ``died``.
Heartbeats use the wall clock (UTC): runners and readers sharing a reports folder need
synchronised clocks (NTP).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat

from nbrunner.atomic import write_text_atomic
from nbrunner.html import RUNNER_ERROR_TAG
from nbrunner.masking import mask_url  # stdlib only at import: no redis, no SQLAlchemy

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
LOG_NAME = "runner.log"
ERROR_NAMES = {
    "timeout": "Timeout",
    "interrupted": "Interrupted",
    "executor": "ExecutorError",
    "parameters": "ParameterError",
    "terminated": "Terminated",
    "died": "RunnerDied",
}
HEARTBEAT_ENV = "PHANTOMLAB_HEARTBEAT_SEC"
DEFAULT_HEARTBEAT_SEC = 5.0
STALE_FACTOR = 3  # heartbeats a run may miss before it counts as dead ...
STALE_MARGIN_SEC = 5.0  # ... plus this (a busy disk, a loaded machine)
_VERSIONED = (
    "phantomlab",
    "papermill",
    "nbclient",
    "nbconvert",
    "ipykernel",
    "numpy",
    "pandas",
    "scikit-learn",
)


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
    """Versions of Python and of the installed distributions a run depends on."""
    out = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    # the workbench first, as before; read from its installed metadata, not by importing it
    return {k: out[k] for k in ("phantomlab", "python") if k in out} | out


def mask_secrets(value: Any) -> Any:
    """``value`` with the password of any URL text (also inside a list) replaced by ``***``.

    Parameters such as ``database_url`` may carry a password; the manifest and the HTML
    report are shared and kept, so they show ``postgresql://u:***@host/db`` instead (and
    ``unix:///run/redis.sock?password=***``). Other values are returned as they are. The
    executor hands a value this changes to the kernel through its environment, so the
    executed notebook shows the masked text too.
    """
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if not isinstance(value, str) or "://" not in value:  # not a URL: nothing to hide
        return value
    return mask_url(value)  # never raises: text it cannot parse is masked conservatively


def heartbeat_interval() -> float:
    """Seconds between two heartbeats of a running run: ``$PHANTOMLAB_HEARTBEAT_SEC``, else 5.

    Raises
    ------
    ValueError
        The variable is set but not a positive number.
    """
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT_SEC
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < 86400:
        raise ValueError(
            f"{HEARTBEAT_ENV}={raw!r} is not a number of seconds between 0 and 86400. Fix: set "
            f"it to e.g. {DEFAULT_HEARTBEAT_SEC:g}, or unset it."
        )
    return value


def stale_after(heartbeat_sec: float) -> float:
    """Age (seconds) of the last heartbeat after which a ``running`` run counts as dead."""
    return STALE_FACTOR * heartbeat_sec + STALE_MARGIN_SEC


def heartbeat_age(manifest: dict, now: datetime | None = None) -> float | None:
    """Seconds since a manifest's last heartbeat (else its start); ``None`` if it has neither."""
    for key in ("heartbeat_at", "started_at"):
        try:
            beat = datetime.fromisoformat(str(manifest.get(key)))
        except ValueError:
            continue
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        return ((now or datetime.now(UTC)) - beat).total_seconds()
    return None


def is_stale(manifest: dict, now: datetime | None = None) -> bool:
    """Whether ``manifest`` says ``running`` but its runner stopped beating (it died).

    The limit is the run's own ``stale_after_sec`` (what its runner promised), else
    :func:`stale_after` of the default interval. A running manifest without any readable
    time is stale: no runner writes one.
    """
    if manifest.get("status") != "running":
        return False
    limit = manifest.get("stale_after_sec")
    if not isinstance(limit, int | float) or isinstance(limit, bool) or not limit > 0:
        limit = stale_after(DEFAULT_HEARTBEAT_SEC)
    age = heartbeat_age(manifest, now)
    return age is None or age > limit


def build_manifest(
    run: dict,
    status: str,
    error: dict | None,
    parameters: dict,
    overrides: dict,
    results: dict,
    kernel: str | None,
) -> dict[str, Any]:
    """The manifest of a run, finished or (status ``"running"``) just started.

    See the module docstring for its fields. ``run`` holds ``pipeline``, ``run_id``,
    ``started``, ``timeout_sec``, the file names ``notebook`` and ``html``, ``source`` /
    ``source_sha256`` (the input notebook as read when the run started) and optionally
    ``heartbeat_sec`` and ``cwd``. A running manifest has no ``finished_at`` /
    ``duration_sec`` yet, and carries the heartbeat fields. Passwords in URL parameters are
    masked (:func:`mask_secrets`).
    """
    from nbrunner.jsonable import to_jsonable

    running = status == "running"
    finished = None if running else datetime.now(UTC)
    started: datetime = run["started"]
    manifest = {
        "pipeline": run["pipeline"],
        "run_id": run["run_id"],
        "status": status,
        "parameters": {k: mask_secrets(v) for k, v in parameters.items()},
        "overrides": {k: mask_secrets(v) for k, v in overrides.items()},
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished and finished.isoformat(timespec="seconds"),
        "duration_sec": finished and round((finished - started).total_seconds(), 3),
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
        "runner_pid": os.getpid(),
        "cwd": run.get("cwd"),
    }
    if running:
        beat = run.get("heartbeat_sec", DEFAULT_HEARTBEAT_SEC)
        manifest |= {
            "heartbeat_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "heartbeat_sec": beat,
            "stale_after_sec": stale_after(beat),
        }
    return to_jsonable(manifest)


#: ``hook(manifest, message, parameters)``, called when a run ends other than ``ok`` (failed,
#: timed out, stopped) or is found dead: what the caller keeps outside the run folder (e.g. a
#: database row the notebook opened) is closed there. ``message`` is ``"Ename: evalue"``;
#: ``parameters`` are the run's effective values, passwords unmasked (None for a dead run: only
#: its manifest is left). The hook may note what it did in ``manifest`` (written after it).
FailureHook = Callable[[dict, str, Mapping[str, Any] | None], None]


def call_failure_hook(
    hook: FailureHook | None, manifest: dict, message: str, parameters: Mapping[str, Any] | None
) -> None:
    """Run the caller's :data:`FailureHook`, if any; its error is logged, never raised (the
    run's own artefacts matter more)."""
    if hook is None:
        return
    try:
        hook(manifest, message, parameters)
    except Exception:  # noqa: BLE001 - a caller's hook must not lose the run's manifest
        logger.exception("the failure hook of run %s raised", manifest.get("run_id"))


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` via a temporary file (readers never see half)."""
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
