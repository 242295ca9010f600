"""Figure of the filter uplift (:mod:`research.analysis.uplift`): skill and net uplift per row.

Draws :func:`research.analysis.uplift.filter_uplift` (``ReplayResult.uplift``) or rows of
:func:`~research.analysis.uplift.uplift_table`: per row the skill (mean gross R of the passed
signals minus that of all signals) beside its null band, and the net uplift (the same difference
in R net of costs), each with its block-bootstrap interval. R is in multiples of the initial
risk, and the two cost bases are named on the figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from research import schema as S
from research.plots.layout import _axis

_UPLIFT_COLUMNS = ("uplift", "ci_low", "ci_high", "n", "n_passed")
_SKILL = {"marker": "o", "color": "tab:blue"}
_NET = {"marker": "s", "color": "tab:orange"}


def _finite(*values) -> bool:
    return all(isinstance(v, (int, float, np.number)) and np.isfinite(v) for v in values)


def _too_few(row: pd.Series) -> bool:
    """A row the analysis gave no interval: its note says "too few" (older frames without a
    note: a point without a finite interval)."""
    note = row.get("note")
    if isinstance(note, str) and note:
        return "too few" in note
    return not _finite(row.get("ci_low"), row.get("ci_high"))


def _row_name(name, row: pd.Series, varying: list[str]) -> str:
    """``era · strategy (rule)`` for rows of a long :func:`uplift_table` (era and rule only
    where they vary), else the index value."""
    strategy = str(row[S.STRATEGY]) if S.STRATEGY in row.index else str(name)
    label = f"{row['era']} · {strategy}" if "era" in varying else strategy
    return f"{label} ({row['rule']} rule)" if "rule" in varying else label


def _estimate(
    ax: Axes, value: float, low: float, high: float, y: float, *, interval: bool, **style
) -> None:
    """A point with its interval (hollow and without one when ``interval`` is False)."""
    if interval and _finite(low, high):
        ax.errorbar(
            value,
            y,
            xerr=[[value - low], [high - value]],
            capsize=3,
            fmt=style["marker"],
            color=style["color"],
        )
    else:
        ax.plot(
            value,
            y,
            ls="none",
            marker=style["marker"],
            color=style["color"],
            markerfacecolor="white",
        )


def plot_uplift(uplift: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Skill (gross) beside its null band, and the net uplift, per row, with their intervals.

    Parameters
    ----------
    uplift : DataFrame
        :func:`research.analysis.uplift.filter_uplift` (``ReplayResult.uplift``: index
        strategy and ``'all'``) or rows of :func:`research.analysis.uplift.uplift_table`
        (columns ``rule``, ``era``, ``strategy``; the ones that vary name the rows). Columns,
        R per trade: ``uplift`` with ``ci_low``, ``ci_high`` (net of costs), ``n``,
        ``n_passed`` and, when present, ``skill`` with ``skill_low``, ``skill_high`` (gross),
        ``null_low``, ``null_high`` (rotation null of the skill) and ``note``.
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        Per row, a circle for the skill (mean gross R of the passed signals minus that of all
        signals) over a grey bar spanning the null control's 95 % band — the skill the same
        choices get when shifted in time against the outcomes — and a square for the net
        uplift (the same difference in R net of costs); lines are 95 % block-bootstrap
        intervals. Rows the analysis gave no interval (fewer than 30 passed trades) are drawn
        hollow, without an interval, their label ending in "too few"; rows where no signal
        passed say so instead of a point.
    """
    S.require_columns(uplift, _UPLIFT_COLUMNS, "uplift")
    fig, ax = _axis(ax, (9.0, 0.62 * len(uplift) + 1.9))
    varying = [c for c in ("era", "rule") if c in uplift and uplift[c].nunique() > 1]
    has_skill = "skill" in uplift
    y = np.arange(len(uplift))[::-1]
    labels = [
        _draw_row(ax, yi, _row_name(name, row, varying), row, has_skill=has_skill)
        for yi, (name, row) in zip(y, uplift.iterrows(), strict=True)
    ]
    ax.axvline(0.0, color="black", lw=0.8)
    ax.margins(x=0.06)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(uplift) - 0.3)
    ax.legend(
        handles=_legend_handles(uplift, has_skill=has_skill),
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    ax.set(
        xlabel="mean R of passed - mean R of all signals (R per trade, 95 % interval)",
        title="Filter uplift: skill (R gross) against its null, and net of costs",
    )
    return fig


def _draw_row(ax: Axes, yi: float, name: str, row: pd.Series, *, has_skill: bool) -> str:
    """Draw one row of :func:`plot_uplift` at height ``yi`` (R per trade); return its label.

    The skill (gross) sits above the row's centre over its null band, the net uplift below;
    a row the analysis gave no interval is drawn hollow and its label says "too few".
    """
    label = f"{name} ({int(row['n_passed'])}/{int(row['n'])} passed)"
    skill = row["skill"] if has_skill else np.nan
    if not _finite(row["uplift"]) and not _finite(skill):
        ax.text(0.0, yi, "no signal passed", va="center", ha="center", fontsize=8, color="grey")
        return label
    interval = not _too_few(row)
    y_net = yi - 0.17 if has_skill else yi
    if has_skill and _finite(row.get("null_low"), row.get("null_high")):
        ax.barh(
            yi + 0.17,
            row["null_high"] - row["null_low"],
            left=row["null_low"],
            height=0.26,
            color="lightgrey",
            zorder=0,
        )
    if has_skill and _finite(skill):
        _estimate(
            ax,
            skill,
            row.get("skill_low"),
            row.get("skill_high"),
            yi + 0.17,
            interval=interval,
            **_SKILL,
        )
    if _finite(row["uplift"]):
        _estimate(
            ax, row["uplift"], row["ci_low"], row["ci_high"], y_net, interval=interval, **_NET
        )
    return label if interval else f"{label}: too few"


def _legend_handles(uplift: pd.DataFrame, *, has_skill: bool) -> list:
    """Legend entries of :func:`plot_uplift`: the marks drawn, and the hollow one if any."""
    handles = [Line2D([], [], ls="none", label="net uplift: R net of costs", **_NET)]
    if has_skill:
        handles = [
            Line2D([], [], ls="none", label="skill: R gross (before costs)", **_SKILL),
            Patch(color="lightgrey", label="null band: skill of shifted choices"),
            *handles,
        ]
    if not all(map(_finite, uplift["ci_low"], uplift["ci_high"])):
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="o",
                color="grey",
                markerfacecolor="white",
                label="hollow: too few passed trades, no interval",
            )
        )
    return handles
