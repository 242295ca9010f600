"""Figures of the pattern cells (:mod:`research.analysis.patterns`): win rate or mean R per
value of one context dimension with its interval, and heatmaps of two dimensions.

Intervals are drawn wherever the frame has them, so that a reader sees how much each number
can be trusted; cells without enough trades are drawn hollow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research.plots.layout import _axis


def plot_pattern_cells(
    table: pd.DataFrame, dimension: str, *, metric: str = "win_rate", ax: Axes | None = None
) -> Figure:
    """Win rate (or mean R) per value of one dimension with its interval and count.

    ``table`` is :func:`research.analysis.patterns.pattern_table` output; cells without
    enough trades are drawn hollow.
    """
    if metric not in ("win_rate", "mean_r"):
        raise ValueError(f"metric must be 'win_rate' or 'mean_r', got {metric!r}")
    lo, hi = ("wr_low", "wr_high") if metric == "win_rate" else ("r_low", "r_high")
    g = table.loc[table["dimension"] == dimension]
    if g.empty:
        raise ValueError(
            f"no cells for dimension {dimension!r}; the table has {sorted(set(table['dimension']))}"
        )
    fig, ax = _axis(ax, (max(4.0, 0.45 * len(g) + 2), 3.8))
    x = np.arange(len(g))
    err = np.vstack([g[metric] - g[lo], g[hi] - g[metric]])
    ax.errorbar(x, g[metric], yerr=err, fmt="none", ecolor="grey", capsize=3)
    enough = g["enough"].to_numpy(bool)
    ax.scatter(x[enough], g[metric][enough], color="tab:blue", zorder=3, label="enough trades")
    ax.scatter(
        x[~enough],
        g[metric][~enough],
        facecolors="none",
        edgecolors="tab:blue",
        zorder=3,
        label="too few trades",
    )
    for xi, n in zip(x, g["n"], strict=True):
        ax.annotate(
            f"{n}",
            (xi, 0),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=7,
            color="grey",
        )
    ax.set_xticks(x, g["value"], rotation=45 if len(g) > 8 else 0)
    ax.set(xlabel=dimension, ylabel=metric, title=f"{metric} by {dimension} (95 % intervals)")
    ax.legend(fontsize=8)
    return fig


def plot_pattern_heatmap(
    grid: pd.DataFrame, *, title: str = "", center: float | None = None, ax: Axes | None = None
) -> Figure:
    """Heatmap of :func:`research.analysis.patterns.pattern_matrix` (NaN cells left blank)."""
    fig, ax = _axis(ax, (min(14.0, 0.5 * grid.shape[1] + 3), 0.45 * grid.shape[0] + 2))
    sns.heatmap(
        grid,
        ax=ax,
        cmap="RdYlGn",
        center=center,
        annot=grid.shape[1] <= 12,
        fmt=".2f",
        cbar_kws={"shrink": 0.8},
    )
    ax.set_title(title or "pattern heatmap (blank: too few trades)")
    return fig
