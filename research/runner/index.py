"""``reports/index.html``: every run of every pipeline on one offline page, newest first."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

from research.runner.atomic import write_text_atomic
from research.runner.catalog import default_reports_dir
from research.runner.html import format_time, page, status_badge
from research.runner.manifest import MANIFEST_NAME

logger = logging.getLogger(__name__)

INDEX_NAME = "index.html"
_MAX_METRICS = 4  # the index is an overview; the run's page has them all


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


def _row(run_rel: str, m: dict) -> str:
    status = str(m.get("status", "?"))
    duration = m.get("duration_sec")
    duration_text = f"{float(duration):.1f} s" if isinstance(duration, int | float) else ""
    error = m.get("error") or {}
    tooltip = f"{_text(error.get('ename'))}: {_text(error.get('evalue'))}" if error else None
    version = m.get("model_version")
    return (
        f"<tr><td>{_e(m.get('pipeline'))}</td><td><code>{_e(m.get('run_id'))}</code></td>"
        f"<td>{status_badge(status, tooltip)}</td>"
        f'<td class="nowrap">{_e(format_time(m.get("started_at")))}</td><td>{duration_text}</td>'
        f"<td>{'' if version is None else _e(version)}</td><td>{_metrics(m.get('metrics'))}</td>"
        f"<td>{_link(run_rel, m.get('html'), 'report')} "
        f"{_link(run_rel, m.get('notebook'), 'notebook')} "
        f"{_link(run_rel, MANIFEST_NAME, 'manifest')}</td></tr>"
    )


def build_index(reports_dir: str | Path | None = None) -> Path:
    """Write ``<reports_dir>/index.html`` listing every run; return its path.

    Scans ``<reports_dir>/*/*/manifest.json``. Runs are sorted newest first (by start time,
    then run id), with pipeline, run id, status (coloured), start time, duration, model
    version, key metrics and relative links to the run's HTML, notebook and manifest. A
    manifest that cannot be read is listed in a note at the bottom instead of failing.

    Parameters
    ----------
    reports_dir : str or Path, optional
        Default ``$PHANTOMLAB_REPORTS_DIR``, else ``reports``; created if missing.
    """
    root = Path(reports_dir) if reports_dir is not None else default_reports_dir()
    root.mkdir(parents=True, exist_ok=True)
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
    runs.sort(key=lambda r: (str(r[1].get("started_at", "")), str(r[1].get("run_id", ""))),
              reverse=True)  # fmt: skip
    head = ("<tr><th>pipeline</th><th>run</th><th>status</th><th>started (UTC)</th>"
            "<th>duration</th><th>model version</th><th>metrics</th><th>links</th>"
            "</tr>")  # fmt: skip
    body = "".join(_row(rel, m) for rel, m in runs)
    table = (
        f'<table class="runs"><thead>{head}</thead><tbody>{body}</tbody></table>'
        if runs
        else "<p>No runs yet. Start one with <code>phantomlab pipeline run NAME</code>.</p>"
    )
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
