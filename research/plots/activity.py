"""Figures of a period's activity: trades per period by decision, cumulative R, win rates.

Each takes a frame of :mod:`research.analysis.activity` and returns the Figure (``ax=``
draws into an existing axis).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.trades import _axis

_DECISION_COLOURS = {"executed": "tab:green", "phantom": "tab:grey", "all signals": "tab:blue"}


def plot_activity(by_period: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Stacked bars of trades per period, executed vs phantom (all strategies together).

    ``by_period`` is :func:`research.analysis.activity.activity_by_period` output.
    """
    fig, ax = _axis(ax, (9.0, 3.6))
    wide = by_period.pivot_table(index="period", columns="decision", values="trades",
                                 aggfunc="sum", fill_value=0)  # fmt: skip
    bottom = np.zeros(len(wide))
    labels = [pd.Timestamp(p).strftime("%Y-%m-%d") for p in wide.index]
    x = np.arange(len(wide))
    for decision in [d for d in ("executed", "phantom") if d in wide]:
        ax.bar(x, wide[decision], bottom=bottom, label=decision,
               color=_DECISION_COLOURS[decision], width=0.85)  # fmt: skip
        bottom += wide[decision].to_numpy()
    step = max(1, len(x) // 12)  # about a dozen date labels whatever the period's length
    ax.set_xticks(x[::step], labels[::step], rotation=30, ha="right")
    ax.set(ylabel="completed trades", title="Activity: executed vs phantom per period")
    ax.legend(loc="upper left")
    return fig


def plot_cumulative_r_by_decision(cum: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Cumulative R in exit order: executed (net), phantoms (gross) and all signals.

    ``cum`` is :func:`research.analysis.activity.cumulative_r` output.
    """
    fig, ax = _axis(ax, (9.0, 3.6))
    for series, g in cum.groupby("series", sort=False):
        ax.plot(g["time"], g["cum_r"], label=f"{series} ({len(g)})",
                color=_DECISION_COLOURS.get(series), lw=1.6)  # fmt: skip
    ax.axhline(0, color="black", lw=0.8)
    ax.set(ylabel="cumulative R", title="Cumulative R by decision (exit order)")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    return fig


def plot_win_rates(table: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Win rate with its 95 % interval per strategy, executed vs phantom.

    ``table`` is :func:`research.analysis.activity.executed_vs_phantom` output.
    """
    fig, ax = _axis(ax, (7.0, 3.6))
    groups = list(dict.fromkeys(table[S.STRATEGY]))
    x = np.arange(len(groups))
    width = 0.38
    for i, decision in enumerate(("executed", "phantom")):
        rows = table.loc[table["decision"] == decision].set_index(S.STRATEGY).reindex(groups)
        pos = x + (i - 0.5) * width
        ax.bar(pos, rows["win_rate"], width=width, label=decision,
               color=_DECISION_COLOURS[decision])  # fmt: skip
        err = np.vstack([rows["win_rate"] - rows["wr_low"], rows["wr_high"] - rows["win_rate"]])
        ax.errorbar(pos, rows["win_rate"], yerr=err, fmt="none", ecolor="black", capsize=3)
    ax.set_xticks(x, groups)
    ax.set(ylim=(0, 1), ylabel="win rate (95 % interval)", title="Executed vs phantom")
    ax.legend(loc="upper right")
    return fig
