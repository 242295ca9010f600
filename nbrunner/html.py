"""The HTML report of one run: a self-contained, offline page (no script, no CDN, images inline).

nbconvert's ``basic`` template renders the executed notebook's cells (code hidden, outputs and
markdown kept, figures as base64 ``data:`` images); this module wraps it in a small page of its
own with inline CSS that answers first: status, then for a failed run a red banner with the
error, for a report run its verdict (interval and basis), for a retrain whether it published
or kept the champion and why (:func:`run_answer`); then the notebook's findings; the effective
parameters (default vs overridden) and the recorded results folded away (``<details>``) at
the bottom. The ``lab``/``classic``
templates are not used because they load require.js and MathJax from CDNs, which fail offline.
"""

from __future__ import annotations

import copy
import html
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from nbrunner.atomic import write_text_atomic

# Cells that only repeat the error banner in the notebook itself (papermill's and ours).
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
RUNNER_ERROR_TAG = "phantomlab-error"

STATUS_COLOURS = {
    "ok": "#1a7f37",
    "failed": "#cf222e",
    "timeout": "#bc4c00",
    "running": "#0969da",
    "died": "#6e2c00",
    "refused": "#59636e",
}
_TITLES = {
    "timeout": "Run timed out",
    "died": "Run died",
    "refused": "Run refused before it started (bad parameters)",
}  # else "Run failed"

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: #1f2328; max-width: 1100px; margin: 1.5rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
.meta { color: #59636e; margin-bottom: 1rem; }
.status { display: inline-block; padding: .05rem .55rem; border-radius: 1rem; color: #fff;
          font-weight: 600; font-size: .85rem; }
.banner { background: #ffebe9; border: 2px solid #cf222e; color: #82071e; padding: .8rem 1rem;
          border-radius: 6px; margin: 1rem 0; }
.banner pre { white-space: pre-wrap; margin: .4rem 0 0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d1d9e0; padding: .25rem .6rem; text-align: left;
         vertical-align: top; }
thead th { background: #f6f8fa; }
tr.overridden td { background: #fff8c5; }
tr.rejected td { background: #ffebe9; }
td.nowrap, table.runs td code { white-space: nowrap; }
.dataframe td, .dataframe th { text-align: right; }
section.report { border-top: 1px solid #d1d9e0; margin-top: 1.5rem; padding-top: .5rem; }
.output_area img { max-width: 100%; height: auto; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; font-size: .85rem; }
.output_error pre { background: #fff0f0; }
.ansi-red-fg { color: #cf222e; } .ansi-green-fg { color: #1a7f37; }
.ansi-yellow-fg { color: #9a6700; } .ansi-blue-fg { color: #0969da; }
.ansi-cyan-fg { color: #1b7c83; } .ansi-magenta-fg { color: #8250df; }
.ansi-bold { font-weight: bold; }
code { background: #f6f8fa; padding: 0 .2rem; }
.answer { border: 2px solid #59636e; border-radius: 6px; padding: .7rem 1rem; margin: 1rem 0; }
.answer h2 { font-size: 1.25rem; margin: 0 0 .3rem; }
.answer p { margin: .2rem 0 .5rem; }
.answer table { margin: .3rem 0 0; }
.answer-skill, .answer-published { border-color: #1a7f37; background: #f0fff4; }
.answer-harm, .answer-failed { border-color: #cf222e; background: #fff5f5; }
.answer-none, .answer-too_few, .answer-kept, .answer-no_replay { border-color: #9a6700;
  background: #fffbea; }
details.more { margin-top: 1.5rem; border-top: 1px solid #d1d9e0; padding-top: .5rem; }
details.more summary { cursor: pointer; font-weight: 600; }
"""

_NBCONVERT_LOG = logging.getLogger(f"{__name__}.nbconvert")
_NBCONVERT_LOG.setLevel(logging.ERROR)

# Any tag that would make the browser fetch something from the network.
_EXTERNAL = re.compile(
    r"<(script|link|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>"
    r"(?:.*?</\1>)?",
    flags=re.IGNORECASE | re.DOTALL,
)


#: A caller's answer to a finished run's recorded results (``record(...)``, a mapping):
#: ``{"kind", "title", "detail", "figures": [(label, text)], "short"}``, or None for nothing.
AnswerHook = Callable[[Mapping[str, Any]], "dict[str, Any] | None"]


def _without_results(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without the outputs of ``record(...)``: their values open the page (the answer)
    and close it (recorded results); a ``phantomlab results: {...}`` dump between the
    findings helps no reader."""
    from nbrunner.results import RESULT_MIME

    shown = copy.deepcopy(nb)
    for cell in shown.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                o for o in cell.get("outputs", []) if RESULT_MIME not in o.get("data", {})
            ]
    return shown


def render_cells(nb: nbformat.NotebookNode) -> str:
    """The notebook's cells as an HTML fragment: outputs and markdown, no code, no prompts."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    # nbconvert warns once per figure that it has no alt text (matplotlib's never do).
    exporter.log = _NBCONVERT_LOG
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={PAPERMILL_ERROR_TAG, RUNNER_ERROR_TAG}),
        enabled=True,
    )
    body, _ = exporter.from_notebook_node(_without_results(nb))
    # An output may itself carry a CDN script (e.g. a plotting library's HTML); offline it
    # would only fail, so it goes.
    return _EXTERNAL.sub("", body)


def page(title: str, body: str) -> str:
    """A whole offline HTML page: inline :data:`CSS`, ``title`` as its title and heading.

    ``body`` is HTML placed after the heading; the run reports and the index share this one
    scaffold so they look alike.
    """
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def status_badge(status: str, tooltip: str | None = None) -> str:
    """The coloured status pill (``ok`` green, ``failed`` red, ``timeout`` orange, ``running``
    blue, ``died`` brown)."""
    colour = STATUS_COLOURS.get(status, "#59636e")
    hover = f' title="{html.escape(tooltip)}"' if tooltip else ""
    return f'<span class="status" style="background:{colour}"{hover}>{html.escape(status)}</span>'


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return html.escape(value)
    return html.escape(json.dumps(value, ensure_ascii=False, default=str))


def format_time(iso: Any) -> str:
    """``2026-11-26T10:15:00+00:00`` as ``2026-11-26 10:15:00`` (the pages say UTC once)."""
    text = "" if iso is None else str(iso)
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text


def parameters_table(
    parameters: Mapping[str, Any], overrides: Mapping[str, Any], declared: list | None = None
) -> str:
    """Effective parameters, one row each: name, type, value, source, help.

    The source is ``default``, ``overridden (default ...)``, or, for a run refused before it
    started, ``rejected`` (the requested value differs from the one shown, the default) and
    ``unknown`` for names the notebook does not declare. ``declared`` is the notebook's
    :class:`~nbrunner.params.Parameter` list (for types and help).
    """
    info = {p.name: p for p in declared or []}
    rows = []
    for name, value in parameters.items():
        p = info.get(name)
        kind, source = "default", "default"
        if name in overrides and overrides[name] == value:
            kind, source = "overridden", "overridden"
            if p is not None:
                source += f" (default {_cell(p.default)})"
        elif name in overrides:
            kind, source = (
                "rejected",
                f"rejected <code>{_cell(overrides[name])}</code>, default used",
            )
        rows.append(
            f'<tr class="{kind}"><td><code>{_cell(name)}</code></td>'
            f"<td>{_cell(p.type_text) if p else ''}</td><td><code>{_cell(value)}</code></td>"
            f"<td>{source}</td><td>{_cell(p.help) if p else ''}</td></tr>"
        )
    for name in overrides:
        if name not in parameters:
            rows.append(
                f'<tr class="rejected"><td><code>{_cell(name)}</code></td><td></td><td><code>'
                f"{_cell(overrides[name])}</code></td><td>unknown, not applied</td><td></td></tr>"
            )
    if not rows:
        return "<p>No parameters.</p>"
    head = "<tr><th>parameter</th><th>type</th><th>value</th><th>source</th><th>help</th></tr>"
    return f'<table class="parameters"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _value_text(value: Any) -> str:
    """A recorded value for a reader: 3 decimals for floats, nested dicts one per line."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return "<br>".join(f"{_cell(k)}: {_value_text(v)}" for k, v in value.items())
    return _cell(value)


def _results_table(results: Mapping[str, Any]) -> str:
    """What the notebook recorded (the manifest's ``results``), folded away, formatted."""
    if not results:
        return ""
    rows = "".join(
        f"<tr><td><code>{_cell(k)}</code></td><td>{_value_text(v)}</td></tr>"
        for k, v in results.items()
    )
    return (
        f'<details class="more"><summary>Recorded results ({len(results)})</summary>'
        '<table class="results"><thead><tr><th>name</th><th>value</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></details>"
    )


def _banner(error: Mapping[str, Any] | None, status: str) -> str:
    if status == "ok":
        return ""
    error = error or {}
    where = ""
    if error.get("cell") is not None:
        anchor = error.get("cell_id")
        label = f"cell {error['cell']}"
        where = f' in <a href="#cell-id={_cell(anchor)}">{label}</a>' if anchor else f" in {label}"
    title = _TITLES.get(status, "Run failed")
    return (
        f'<div class="banner" role="alert"><strong>{title}{where}: '
        f"{_cell(error.get('ename', 'Error'))}</strong><pre>{_cell(error.get('evalue', ''))}"
        "</pre></div>"
    )


def shown_status(manifest: Mapping[str, Any]) -> str:
    """The status a reader sees: ``refused`` for a run stopped by bad parameters before it
    started (its manifest says ``failed`` with ``refused: true``), else the manifest's."""
    if manifest.get("refused"):
        return "refused"
    return str(manifest.get("status", "failed"))


def run_answer(
    manifest: Mapping[str, Any], answer: AnswerHook | None = None
) -> dict[str, Any] | None:
    """What the run found, first: ``{"kind", "title", "detail", "figures", "short"}`` or None.

    A failed, timed-out, died or refused run answers with its error; a finished run with what
    the caller's ``answer`` hook makes of its recorded results (the workbench's: a report's
    verdict, a retrain's published-or-kept and why; :mod:`research.runs`). Without a hook, or
    when the hook has nothing to say, None.
    """
    status = shown_status(manifest)
    results = manifest.get("results") or {}
    if status not in ("ok", "running"):
        error = manifest.get("error") or {}
        why = f"{_text(error.get('ename', 'Error'))}: {_text(error.get('evalue', ''))}"
        return {
            "kind": "failed",
            "title": _TITLES.get(status, "Run failed"),
            "detail": why,
            "figures": [],
            "short": why,
        }
    return answer(results) if answer is not None and results else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def answer_block(manifest: Mapping[str, Any], answer: AnswerHook | None = None) -> str:
    """The answer (:func:`run_answer`) as the first block of a run's page (``id="verdict"``)."""
    answer = run_answer(manifest, answer)
    if answer is None or answer["kind"] == "failed":  # a failure's banner is the answer
        return ""
    rows = "".join(f"<tr><th>{_cell(k)}</th><td>{_cell(v)}</td></tr>" for k, v in answer["figures"])
    table = f'<table class="headline"><tbody>{rows}</tbody></table>' if rows else ""
    return (
        f'<div class="answer answer-{_cell(answer["kind"])}" id="verdict">'
        f"<h2>{_cell(answer['title'])}</h2><p>{_cell(answer['detail'])}</p>{table}</div>"
    )


def write_report(
    nb: nbformat.NotebookNode,
    manifest: Mapping[str, Any],
    path: str | Path,
    *,
    declared: list | None = None,
    answer: AnswerHook | None = None,
) -> Path:
    """Write the run's self-contained HTML report to ``path`` and return it.

    Parameters
    ----------
    nb : NotebookNode
        The executed (or partially executed / un-executed) notebook.
    manifest : Mapping
        The run's manifest (pipeline, run_id, status, parameters, overrides, started_at,
        duration_sec, error, results).
    path : str or Path
        Output ``.html`` file.
    declared : list of Parameter, optional
        The notebook's declared parameters, for types and help in the parameters table.
    answer : callable, optional
        The caller's :data:`AnswerHook`: what the recorded results answer, shown first.
    """
    status = shown_status(manifest)
    title = f"{manifest.get('pipeline', '?')} · {manifest.get('run_id', '?')}"
    duration = manifest.get("duration_sec")
    meta = (
        f"{status_badge(status)} "
        f"started {_cell(format_time(manifest.get('started_at')))} UTC"
        + (f", {float(duration):.1f} s" if duration is not None else "")
        + f' · notebook <a href="{_cell(manifest.get("notebook", ""))}">'
        f"{_cell(manifest.get('notebook', ''))}</a>" + ' · <a href="../../index.html">all runs</a>'
    )
    params = parameters_table(
        manifest.get("parameters", {}), manifest.get("overrides", {}), declared
    )
    # the answer first, the notebook's findings next, the inputs folded away at the bottom
    body = (
        f'<div class="meta">{meta}</div>'
        f"{_banner(manifest.get('error'), status)}"
        f"{answer_block(manifest, answer)}"
        f'<section class="report">{render_cells(nb)}</section>'
        f'<details class="more"><summary>Parameters ({len(manifest.get("parameters") or {})})'
        f"</summary>{params}</details>"
        f"{_results_table(manifest.get('results') or {})}"
    )
    # atomic: a browser (or the index) never reads half a page; a died run's is rewritten
    return write_text_atomic(path, page(title, body))


def write_running_page(manifest: Mapping[str, Any], path: str | Path) -> Path:
    """A placeholder report for a run in progress: status, start, parameters; replaced at the end.

    The index links every run's HTML; while the run goes on this page says so instead of a
    broken link.
    """
    title = f"{manifest.get('pipeline', '?')} · {manifest.get('run_id', '?')}"
    body = (
        f'<div class="meta">{status_badge("running")} started '
        f"{_cell(format_time(manifest.get('started_at')))} UTC · "
        '<a href="../../index.html">all runs</a></div>'
        "<p>This run is in progress. This page is replaced by the report when it ends; if its "
        "runner is killed, the next <code>phantomlab reports</code> (or run) marks it "
        "<em>died</em>.</p><h2>Parameters</h2>"
        f"{parameters_table(manifest.get('parameters', {}), manifest.get('overrides', {}))}"
    )
    return write_text_atomic(path, page(title, body))
