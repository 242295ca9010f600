"""Figures of the gate analysis (:func:`research.analysis.gates.analyze_gates`).

Each draws a frame of :class:`~research.analysis.gates.GateAnalysis`: the win rates of every
gate passing and failing with their Wilson intervals, the seed's pair synergy, and the seed's
ranking against the block-permutation null of the largest |delta| — a bar below the null's
95th percentile is as large as the largest of that many noisy deltas usually is. Win rates
and deltas are fractions (0-1) unless a label says percentage points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.layout import _axis


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


def plot_deltas_vs_null(
    singles: pd.DataFrame, null: pd.DataFrame, *, top: int = 20, ax: Axes | None = None
) -> Figure:
    """|delta| of the seed's top gates (its ranking order) against the permutation null.

    Parameters
    ----------
    singles : DataFrame
        ``GateAnalysis.singles`` (``delta`` in win-rate points, ``sufficient``,
        ``seed_rank``, ``confirmed``).
    null : DataFrame
        ``GateAnalysis.null`` (one row: ``median``, ``p95``, ``p_value``, ``n_perm``).
    top : int
        Gates drawn, by seed rank.
    ax : Axes, optional

    Returns
    -------
    Figure
        Bars: green = confirmed (FDR and the later period), grey = not; the sign of delta is
        written on each bar (the seed enables + and disables -).
    """
    S.require_columns(
        singles, ["delta", "sufficient", "seed_rank", "confirmed"], "plot_deltas_vs_null"
    )
    S.require_columns(null, ["median", "p95", "p_value", "n_perm"], "plot_deltas_vs_null")
    g = singles.loc[singles["sufficient"].astype(bool) & singles["seed_rank"].notna()]
    if g.empty:
        raise ValueError("no sufficient gate to draw. Fix: lower min_n or simulate more phantoms.")
    # the seed ranks by signed delta; |delta| order shows both its "enable" and "disable" picks
    g = g.reindex(g["delta"].abs().sort_values(ascending=False).index).head(top)
    fig, ax = _axis(ax, (max(6.0, 0.38 * len(g) + 2.0), 4.2))
    x = np.arange(len(g))
    ok = g["confirmed"].astype(bool).to_numpy()
    ax.bar(x, g["delta"].abs(), color=np.where(ok, "tab:green", "silver"), edgecolor="grey")
    for xi, d in zip(x, g["delta"], strict=True):
        ax.annotate(
            "+" if d > 0 else "−",
            (xi, abs(d)),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    n = null.iloc[0]
    ax.axhline(n["median"], ls=":", color="tab:red", label="noise: median of the largest |delta|")
    ax.axhline(n["p95"], ls="--", color="tab:red", label="noise: 95th percentile")
    ax.set_xticks(x, g.index, rotation=60, ha="right")
    ax.set(
        ylabel="|win rate pass - fail|",
        title=f"Gate deltas vs {int(n['n_perm'])} block permutations "
        f"(p = {n['p_value']:.3f}; green = confirmed)",
    )
    ax.legend(fontsize=8, loc="upper right")
    return fig
