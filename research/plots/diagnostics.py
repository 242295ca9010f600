"""Figures of the analyses: reliability diagrams and pattern cells/heatmaps.

Each takes a frame computed in :mod:`research.analysis` and draws it; intervals are drawn
wherever the frame has them, so that a reader sees how much each number can be trusted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.trades import _axis


def plot_reliability(reliability: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Reliability diagram: observed win rate against mean predicted P(win), per rule.

    Parameters
    ----------
    reliability : DataFrame
        :func:`research.analysis.calibration.reliability_table` output (``predicted``,
        ``observed``, ``count``), optionally stacked with a ``rule`` column (as in
        :func:`~research.analysis.calibration.calibration_comparison`).
    ax : matplotlib Axes, optional
    """
    fig, ax = _axis(ax, (5.5, 5.0))
    frame = reliability if "rule" in reliability else reliability.assign(rule="model")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    for rule, g in frame.groupby("rule", sort=False):
        ax.plot(g["predicted"], g["observed"], marker="o", label=str(rule))
        # marker area ~ count: a point backed by few trades should look light
        ax.scatter(
            g["predicted"], g["observed"], s=20 + 200 * g["count"] / frame["count"].max(), alpha=0.3
        )
    ax.set(
        xlabel="mean predicted P(win)",
        ylabel="observed win rate",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Reliability (out of sample)",
    )
    ax.legend(loc="upper left")
    return fig


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


def plot_gate_deltas(singles: pd.DataFrame, *, top: int = 15, ax: Axes | None = None) -> Figure:
    """Win rate when each gate passes vs fails, with Wilson intervals, largest |delta| first.

    ``singles`` is :attr:`research.analysis.gates.GateAnalysis.singles`. Gates that survive the
    FDR and the confirmation period are labelled ``✓``: the seed's raw ranking is the order,
    the check marks are what a reader may act on.
    """
    g = singles.loc[singles["sufficient"]].copy()
    g = g.reindex(g["delta"].abs().sort_values(ascending=False).index).head(top).iloc[::-1]
    fig, ax = _axis(ax, (7.0, 0.35 * len(g) + 1.5))
    y = np.arange(len(g))
    for col, lo, hi, dy, color, label in (
        ("wr_pass", "wr_pass_lo", "wr_pass_hi", 0.15, "tab:green", "gate passes"),
        ("wr_fail", "wr_fail_lo", "wr_fail_hi", -0.15, "tab:red", "gate fails"),
    ):
        ax.errorbar(
            g[col],
            y + dy,
            xerr=np.vstack([g[col] - g[lo], g[hi] - g[col]]),
            fmt="o",
            color=color,
            capsize=2,
            label=label,
        )
    names = [
        f"{name} ✓" if ok else str(name) for name, ok in zip(g.index, g["confirmed"], strict=True)
    ]
    ax.set_yticks(y, names)
    ax.set(
        xlabel="win rate (95 % Wilson interval)",
        title="Gates: pass vs fail (✓ = confirmed after FDR and a later period)",
    )
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_synergy_heatmap(combos: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Pair synergy ``WR(both pass) - mean(WR(v1), WR(v2))`` as a symmetric heatmap, in
    win-rate percentage points (the colour bar's unit; ``combos`` holds fractions).

    ``combos`` is :attr:`research.analysis.gates.GateAnalysis.combos` (pairs are its rows of
    ``size == 2``, named ``"a & b"``).
    """
    pairs = combos.loc[combos["size"] == 2, "synergy"]
    if pairs.empty:
        raise ValueError("no pairs in the combinations frame; run analyze_gates with top_k >= 2")
    names = [str(i).split(" & ") for i in pairs.index]
    gates = sorted({n for pair in names for n in pair})
    grid = pd.DataFrame(np.nan, index=gates, columns=gates)
    for (a, b), v in zip(names, pairs, strict=True):
        # synergy is a difference of win rates (fractions): shown in percentage points, so the
        # colour bar's label and its values agree (+0.05 -> +5.0 points)
        grid.loc[a, b] = grid.loc[b, a] = 100.0 * v
    fig, ax = _axis(ax, (0.55 * len(gates) + 3, 0.5 * len(gates) + 2))
    sns.heatmap(
        grid,
        ax=ax,
        cmap="vlag",
        center=0.0,
        annot=len(gates) <= 10,
        fmt="+.1f",
        cbar_kws={"label": "synergy (win-rate percentage points)"},
    )
    ax.set_title("Pair synergy of the top gates (seed's measure)")
    return fig


def plot_importance_evolution(
    evolution: pd.DataFrame, *, top: int = 12, ax: Axes | None = None
) -> Figure:
    """The seed's impurity importance after 30, 100, 300 and all trades, top features.

    ``evolution`` is :func:`research.analysis.importance.impurity_evolution` output (rows
    features, one column per sample size). Lines that cross a lot mean an unstable ranking.
    """
    last = evolution.columns[-1]
    keep = evolution[last].sort_values(ascending=False).head(top).index
    fig, ax = _axis(ax, (7.0, 4.5))
    x = np.arange(len(evolution.columns))
    for name in keep:
        ax.plot(x, evolution.loc[name].to_numpy(float), marker="o", label=str(name))
    ax.set_xticks(x, [f"{c} trades" if c != "all" else "all trades" for c in evolution.columns])
    ax.set(
        ylabel="impurity importance (MDI, in sample)", title="Feature importance evolution (seed)"
    )
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_permutation_importance(
    perm: pd.DataFrame, *, top: int = 15, ax: Axes | None = None
) -> Figure:
    """Out-of-sample permutation importance (drop in AUC) with ±2 s.e., the noise probe marked.

    ``perm`` is :func:`research.analysis.importance.permutation_importance_oos` output; a
    feature is only worth reading if it sits clearly right of the probe's line.
    """
    probe = S.NOISE_PROBE
    g = perm.sort_values("mean", ascending=False).head(top).iloc[::-1]
    fig, ax = _axis(ax, (7.0, 0.35 * len(g) + 1.5))
    y = np.arange(len(g))
    colors = [
        "tab:grey" if i == probe else ("tab:blue" if ok else "lightsteelblue")
        for i, ok in zip(g.index, g["beats_probe"], strict=True)
    ]
    ax.barh(y, g["mean"], xerr=2 * g["se"], color=colors, ecolor="grey", capsize=2)
    if probe in perm.index:
        ax.axvline(perm.loc[probe, "mean"], color="tab:grey", ls="--", label="noise probe")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(y, g.index)
    ax.set(
        xlabel="drop in out-of-sample AUC when permuted (±2 s.e.)",
        title="Permutation importance on purged folds",
    )
    return fig
