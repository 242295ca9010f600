"""``reports/index.html``: every run of every pipeline on one offline page, newest first.

Before listing, :func:`mark_dead_runs` turns every ``running`` run whose heartbeat is stale
(its runner was killed outright) into a ``died`` one: manifest, HTML report and the SQL
``pipeline_runs`` row its notebook opened. So a later run, or ``phantomlab reports``, never
shows a dead run as running.
"""

from __future__ import annotations

import html
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbrunner.atomic import write_text_atomic
from nbrunner.catalog import default_reports_dir
from nbrunner.html import (
    AnswerHook,
    format_time,
    page,
    run_answer,
    shown_status,
    status_badge,
)
from nbrunner.manifest import (
    ERROR_NAMES,
    MANIFEST_NAME,
    FailureHook,
    call_failure_hook,
    heartbeat_age,
    is_stale,
    mark_failed,
    running_cell,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

INDEX_NAME = "index.html"
_MAX_METRICS = 4  # the index is an overview; the run's page has them all
_MAX_REASON = 200  # characters of a failure's reason in its row (the whole one on hover)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _e(value: Any) -> str:
    return html.escape(_text(value))


def _metrics(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    parts = []
    for k, v in list(value.items())[:_MAX_METRICS]:
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        parts.append(f"{_e(k)}={_e(text)}")
    more = len(value) - _MAX_METRICS
    return ", ".join(parts) + (f" (+{more})" if more > 0 else "")


def _link(run_rel: str, name: Any, label: str) -> str:
    if not isinstance(name, str) or not name:
        return ""
    return f'<a href="{_e(run_rel)}/{_e(name)}">{label}</a>'


def _outcome(m: dict, hook: AnswerHook | None) -> str:
    """The run's answer in its row: its failure reason, what the caller's answer ``hook`` says
    of its results (the workbench: the verdict, or published-or-kept and why), else (nothing to
    say) its metrics."""
    answer = run_answer(m, hook)
    if answer is None:
        return _metrics(m.get("metrics"))
    if answer["kind"] == "failed":
        why = _text(answer["short"])
        short = why if len(why) <= _MAX_REASON else why[: _MAX_REASON - 1] + "…"
        return f'<span class="reason" title="{_e(why)}">{_e(short)}</span>'
    detail = f"<br><small>{_e(answer['short'])}</small>" if answer["short"] else ""
    return f"<strong>{_e(answer['title'])}</strong>{detail}"


def _row(run_rel: str, m: dict, hook: AnswerHook | None) -> str:
    status = shown_status(m)
    duration = m.get("duration_sec")
    duration_text = f"{float(duration):.1f} s" if isinstance(duration, int | float) else ""
    version = m.get("model_version")
    return (
        f"<tr><td>{_e(m.get('pipeline'))}</td><td><code>{_e(m.get('run_id'))}</code></td>"
        f"<td>{status_badge(status)}</td><td>{_outcome(m, hook)}</td>"
        f'<td class="nowrap">{_e(format_time(m.get("started_at")))}</td><td>{duration_text}</td>'
        f"<td>{'' if version is None else _e(version)}</td>"
        f"<td>{_link(run_rel, m.get('html'), 'report')} "
        f"{_link(run_rel, m.get('notebook'), 'notebook')} "
        f"{_link(run_rel, MANIFEST_NAME, 'manifest')}</td></tr>"
    )


_HEAD = (
    "<tr><th>pipeline</th><th>run</th><th>status</th><th>outcome (verdict, decision or "
    "why it failed)</th><th>started (UTC)</th><th>duration</th><th>model version</th>"
    "<th>links</th></tr>"
)


def _refused_section(refused: list[tuple[str, dict]], hook: AnswerHook | None) -> str:
    """Runs refused before they started (bad parameters): not runs, so folded away apart."""
    if not refused:
        return ""
    rows = "".join(_row(rel, m, hook) for rel, m in refused)
    return (
        f'<details class="more"><summary>{len(refused)} refused before starting (bad '
        "parameters; nothing ran)</summary>"
        f'<table class="runs refused"><thead>{_HEAD}</thead><tbody>{rows}</tbody></table>'
        "</details>"
    )


def _mark_died(path: Path, manifest: dict, now: datetime, on_failure: FailureHook | None) -> None:
    """Turn the stale ``running`` manifest at ``path`` into a ``died`` run (see module doc)."""
    import nbformat

    from nbrunner.html import write_report

    run_dir = path.parent
    age = heartbeat_age(manifest, now) or 0.0
    last = manifest.get("heartbeat_at") or manifest.get("started_at")
    evalue = (
        f"its runner (pid {manifest.get('runner_pid')} on "
        f"{(manifest.get('host') or {}).get('hostname')}) stopped sending heartbeats at {last} "
        f"UTC ({age:.0f} s before this check, limit {manifest.get('stale_after_sec')} s): it was "
        "killed (kill -9, out of memory) or its machine stopped. Fix: see runner.log and the "
        "partial notebook, then run it again."
    )
    error: dict[str, Any] = {"ename": ERROR_NAMES["died"], "evalue": evalue}
    notebook = run_dir / str(manifest.get("notebook") or "")
    nb = None
    if notebook.is_file():
        try:
            nb = nbformat.read(notebook, as_version=4)
            cell = mark_failed(nb, f"**Run died.** {evalue}", running_cell(nb))
            if cell is not None:
                error |= {
                    "cell": cell,
                    "cell_id": nb.cells[cell].get("id"),
                    "execution_count": nb.cells[cell].get("execution_count"),
                }
            nbformat.write(nb, notebook)
        except Exception as exc:  # noqa: BLE001 - a half-saved notebook: report without it
            logger.warning("the partial notebook of %s is unreadable: %s", run_dir, exc)
            nb = None
    started = manifest.get("started_at")
    try:
        duration = (datetime.fromisoformat(last) - datetime.fromisoformat(started)).total_seconds()
    except (TypeError, ValueError):
        duration = None
    manifest |= {
        "status": "died",
        "error": error,
        "finished_at": last,
        "duration_sec": duration,
        "marked_died_at": now.isoformat(timespec="seconds"),
    }
    call_failure_hook(on_failure, manifest, f"{error['ename']}: {evalue}", None)
    if manifest.get("html"):
        try:
            write_report(nb or nbformat.v4.new_notebook(), manifest, run_dir / manifest["html"])
        except Exception as exc:  # noqa: BLE001 - the manifest matters more than the page
            manifest["html_error"] = f"{type(exc).__name__}: {exc}"
    write_json_atomic(path, manifest)
    logger.warning("run %s died (no heartbeat since %s); marked as such", run_dir, last)


def mark_dead_runs(
    reports_dir: str | Path | None = None,
    *,
    now: datetime | None = None,
    on_failure: FailureHook | None = None,
) -> list:
    """Mark every ``running`` run whose heartbeat is stale as ``died``; return their folders.

    A run's manifest says ``running`` from its start and its runner rewrites it every few
    seconds (:mod:`nbrunner.manifest`); one not rewritten for longer than its
    ``stale_after_sec`` belongs to a runner that is gone. Its manifest gets status ``died``
    and an error saying when the last heartbeat was; the partial notebook gets a banner on
    the cell that was running and an HTML report is drawn from it; ``on_failure`` is called
    with it (the workbench closes the SQL ``pipeline_runs`` row the notebook opened). Runs
    with a fresh heartbeat and finished runs are left alone.

    Parameters
    ----------
    reports_dir : str or Path, optional
        Default ``$PHANTOMLAB_REPORTS_DIR``, else ``reports``.
    now : datetime, optional
        The time to judge staleness at (default: now, UTC).
    on_failure : FailureHook, optional
        See :func:`~nbrunner.execute.run_pipeline`.
    """
    root = Path(reports_dir) if reports_dir is not None else default_reports_dir()
    now = now or datetime.now(UTC)
    marked = []
    for path in sorted(root.glob(f"*/*/{MANIFEST_NAME}")):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # listed as unreadable by build_index
        if not isinstance(manifest, dict) or not is_stale(manifest, now):
            continue
        try:
            _mark_died(path, manifest, now, on_failure)
        except Exception:  # noqa: BLE001 - one odd run must not hide the others
            logger.exception("could not mark the dead run %s", path.parent)
            continue
        marked.append(path.parent)
    return marked


def build_index(
    reports_dir: str | Path | None = None,
    *,
    on_failure: FailureHook | None = None,
    answer: AnswerHook | None = None,
) -> Path:
    """Write ``<reports_dir>/index.html`` listing every run; return its path.

    First marks runs whose runner died as ``died`` (:func:`mark_dead_runs`, which calls
    ``on_failure`` for each). Then scans
    ``<reports_dir>/*/*/manifest.json``. Runs are sorted newest first (by start time,
    then run id), with pipeline, run id, status (coloured), the outcome in words (the
    verdict, published or kept and why, or why it failed; else key metrics), start time,
    duration, model version and relative links to the run's HTML, notebook and manifest.
    Runs refused before they started (bad parameters: ``refused`` in the manifest) are not
    listed among the runs but in a folded "refused" section below. A manifest that cannot
    be read is listed in a note at the bottom instead of failing.

    Parameters
    ----------
    reports_dir : str or Path, optional
        Default ``$PHANTOMLAB_REPORTS_DIR``, else ``reports``; created if missing.
    on_failure : callable, optional
        Called for each run marked ``died`` (:func:`mark_dead_runs`).
    answer : callable, optional
        What a finished run's recorded results answer (:data:`~nbrunner.html.AnswerHook`).
    """
    root = Path(reports_dir) if reports_dir is not None else default_reports_dir()
    root.mkdir(parents=True, exist_ok=True)
    mark_dead_runs(root, on_failure=on_failure)
    runs: list[tuple[str, dict]] = []
    broken: list[tuple[str, str]] = []
    for path in sorted(root.glob(f"*/*/{MANIFEST_NAME}")):
        rel = path.parent.relative_to(root).as_posix()
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            broken.append((rel, f"{type(exc).__name__}: {exc}"))
            continue
        runs.append((rel, manifest))
    runs.sort(
        key=lambda r: (str(r[1].get("started_at", "")), str(r[1].get("run_id", ""))), reverse=True
    )
    refused = [(rel, m) for rel, m in runs if m.get("refused")]
    runs = [(rel, m) for rel, m in runs if not m.get("refused")]
    body = "".join(_row(rel, m, answer) for rel, m in runs)
    table = (
        f'<table class="runs"><thead>{_HEAD}</thead><tbody>{body}</tbody></table>'
        if runs
        else "<p>No runs yet. Start one with <code>phantomlab pipeline run NAME</code>.</p>"
    ) + _refused_section(refused, answer)
    note = ""
    if broken:
        items = "".join(f"<li><code>{_e(rel)}</code>: {_e(why)}</li>" for rel, why in broken)
        note = (
            '<div class="banner"><strong>Unreadable manifests (skipped):</strong>'
            f"<ul>{items}</ul></div>"
        )
    body = (
        f'<div class="meta">{len(runs)} run(s) in <code>{_e(root)}</code>, newest first.</div>'
        f"{table}{note}"
    )
    # Two runs finishing together both rebuild the page: replace it whole, never interleave.
    out = write_text_atomic(root / INDEX_NAME, page("Phantom Lab runs", body))
    if broken:
        logger.warning("reports index: skipped %d unreadable manifest(s)", len(broken))
    return out
