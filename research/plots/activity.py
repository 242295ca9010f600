"""Figures of a period's activity: trades per period by decision, cumulative R, win rates.

Each takes a frame of :mod:`research.analysis.activity` and returns the Figure (``ax=``
draws into an existing axis). A figure of R draws one cost basis and names it in its title
and axis label ("R net of costs" or "R gross"): executed and phantom trades are never drawn
on different bases side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.layout import _axis

_DECISION_COLOURS = {"executed": "tab:green", "phantom": "tab:grey", "all signals": "tab:blue"}
_BASIS_LABEL = {"net": "R net of costs", "gross": "R gross (before costs)"}
_RECORDED = "R as recorded (executed net, phantoms gross)"


def plot_activity(by_period: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Stacked bars of trades per period, executed vs phantom (all strategies together).

    ``by_period`` is :func:`research.analysis.activity.activity_by_period` output.
    """
    fig, ax = _axis(ax, (9.0, 3.6))
    wide = by_period.pivot_table(
        index="period", columns="decision", values="trades", aggfunc="sum", fill_value=0
    )
    bottom = np.zeros(len(wide))
    labels = [pd.Timestamp(p).strftime("%Y-%m-%d") for p in wide.index]
    x = np.arange(len(wide))
    for decision in [d for d in ("executed", "phantom") if d in wide]:
        ax.bar(
            x,
            wide[decision],
            bottom=bottom,
            label=decision,
            color=_DECISION_COLOURS[decision],
            width=0.85,
        )
        bottom += wide[decision].to_numpy()
    step = max(1, len(x) // 12)  # about a dozen date labels whatever the period's length
    ax.set_xticks(x[::step], labels[::step], rotation=30, ha="right")
    ax.set(ylabel="completed trades", title="Activity: executed vs phantom per period")
    ax.legend(loc="upper left")
    return fig


def plot_cumulative_r_by_decision(cum: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Cumulative R in exit order: executed, phantoms and all signals, on one cost basis.

    Parameters
    ----------
    cum : DataFrame
        :func:`research.analysis.activity.cumulative_r` output: ``time``, ``series``,
        ``cum_r`` (R) and ``basis`` (``'net'`` or ``'gross'``, named in the title and the
        axis label).
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        One line per series, legend ``series (trades, total R)``: the last point of each line
        is that series' total R on the figure's basis. A frame without ``basis`` (an older
        caller) is labelled "as recorded: executed net, phantoms gross".
    """
    fig, ax = _axis(ax, (9.0, 3.6))
    bases = set(cum["basis"]) if "basis" in cum else set()
    if len(bases) > 1:
        raise ValueError(f"cum mixes cost bases {sorted(bases)}. Fix: draw one basis per figure.")
    basis = _BASIS_LABEL.get(next(iter(bases)), "R") if bases else _RECORDED
    for series, g in cum.groupby("series", sort=False):
        ax.plot(
            g["time"],
            g["cum_r"],
            color=_DECISION_COLOURS.get(series),
            lw=1.6,
            label=f"{series} ({len(g)} trades, {g['cum_r'].iloc[-1]:+.1f} R)",
        )
    if cum.empty:
        ax.text(
            0.5,
            0.5,
            f"no trade with a known {basis}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="grey",
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set(ylabel=f"cumulative {basis}", title=f"Cumulative {basis} by decision (exit order)")
    if not cum.empty:
        ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return fig


def plot_win_rates(table: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Win rate with its 95 % interval per strategy, executed vs phantom, net of costs.

    ``table`` is :func:`research.analysis.activity.executed_vs_phantom` output: a win is a
    trade whose R net of costs is > 0 (phantoms as if executed); a bar is missing where the
    net outcome is unknown (trades without ``cost_r``).
    """
    fig, ax = _axis(ax, (7.0, 3.6))
    groups = list(dict.fromkeys(table[S.STRATEGY]))
    x = np.arange(len(groups))
    width = 0.38
    for i, decision in enumerate(("executed", "phantom")):
        rows = table.loc[table["decision"] == decision].set_index(S.STRATEGY).reindex(groups)
        pos = x + (i - 0.5) * width
        ax.bar(
            pos, rows["win_rate"], width=width, label=decision, color=_DECISION_COLOURS[decision]
        )
        err = np.vstack([rows["win_rate"] - rows["wr_low"], rows["wr_high"] - rows["win_rate"]])
        ax.errorbar(pos, rows["win_rate"], yerr=err, fmt="none", ecolor="black", capsize=3)
    ax.set_xticks(x, groups)
    ax.set(
        ylim=(0, 1),
        ylabel="win rate net of costs (95 % interval)",
        title="Executed vs phantom: wins net of costs",
    )
    ax.legend(loc="upper right")
    return fig
