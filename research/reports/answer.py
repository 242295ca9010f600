"""A run's recorded results as its answer: the report's verdict, a retrain's decision.

The runner (:mod:`nbrunner`) shows :func:`results_answer` first on a run's page and in its
row of the reports index: it is the workbench's answer hook (:data:`nbrunner.html.AnswerHook`,
passed by :mod:`research.runs`). Each function takes the plain JSON a
notebook recorded (``record(verdict=...)``, ``record(published=..., reason=...)``) and returns
``{"kind", "title", "detail", "figures", "short"}``: a CSS kind, a one-line title, the basis
or reason, ``(label, value)`` headline figures, and a short line for the index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _r(value: Any) -> str:
    return f"{float(value):+.2f} R" if isinstance(value, int | float) else "n/a"


def _band(low: Any, high: Any) -> str:
    if not (isinstance(low, int | float) and isinstance(high, int | float)):
        return ""
    return f" [{float(low):+.2f}, {float(high):+.2f}]"


def _num(value: Any, digits: int = 3) -> str:
    return f"{float(value):.{digits}f}" if isinstance(value, int | float) else "n/a"


def verdict_answer(v: Mapping[str, Any]) -> dict[str, Any]:
    """The report pipeline's ``verdict`` result as a title, a basis line and headline figures."""
    figures = []
    if isinstance(v.get("skill_r"), int | float):
        figures = [
            (
                "skill, R gross per trade (95 %)",
                _r(v["skill_r"]) + _band(v.get("skill_low"), v.get("skill_high")),
            ),
            (
                "null band (no information)",
                _band(v.get("null_low"), v.get("null_high")).strip()
                + f" (p = {_num(v.get('null_p'))})",
            ),
            (
                "uplift, R net of costs per trade (95 %)",
                _r(v.get("uplift_r")) + _band(v.get("uplift_low"), v.get("uplift_high")),
            ),
            ("signals taken", f"{v.get('n_passed', 0):,} of {v.get('n', 0):,}"),
            ("AUC of the score", _num(v.get("auc"))),
        ]
    short = (
        f"{_r(v['skill_r'])}{_band(v.get('skill_low'), v.get('skill_high'))} skill gross, "
        f"{v.get('era', '')} era"
        if figures
        else ""
    )
    return {
        "kind": str(v.get("label", "none")),
        "title": f"Verdict: {v.get('headline', '?')}",
        "detail": f"Basis: {v.get('basis', 'not recorded')}.",
        "figures": figures,
        "short": short,
    }


def decision_answer(results: Mapping[str, Any]) -> dict[str, Any]:
    """A retrain's ``published``/``reason``/``metrics`` as published-or-kept and why."""
    version, m = results.get("model_version"), results.get("metrics") or {}
    if results.get("published"):
        title = f"Published v{version}" + (" (forced)" if results.get("forced") else "")
    else:
        title = f"Kept the champion v{version}"
    figures = [
        (label, _num(m[key]))
        for label, key in (
            ("challenger Brier, fair window (lower is better)", "challenger_brier"),
            ("champion Brier, fair window", "champion_brier"),
            ("challenger AUC", "challenger_auc"),
            ("champion AUC", "champion_auc"),
        )
        if isinstance(m.get(key), int | float)
    ]
    if isinstance(m.get("challenger_n"), int | float):
        figures.append(("trades in the fair window", f"{int(m['challenger_n']):,}"))
    return {
        "kind": "published" if results.get("published") else "kept",
        "title": title,
        "detail": f"Why: {results.get('reason', 'not recorded')}.",
        "figures": figures,
        "short": str(results.get("reason", "")),
    }


def results_answer(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer of a run's recorded ``results``: a report's verdict (:func:`verdict_answer`),
    a retrain's published-or-kept and why (:func:`decision_answer`), else None (nothing to
    judge: the index shows the run's metrics)."""
    if isinstance(results.get("verdict"), Mapping):
        return verdict_answer(results["verdict"])
    if isinstance(results.get("published"), bool) and "reason" in results:
        return decision_answer(results)
    return None
