"""Figure of the gate analysis against its null: the seed's ranking beside what noise gives.

Draws :class:`research.analysis.gates.GateAnalysis` ``singles`` and ``null``: every
sufficient gate's |delta| in the seed's rank order, with the block-permutation null of the
largest |delta| as horizontal lines. A bar below the null's 95th percentile is as large as
the largest of that many noisy deltas usually is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.trades import _axis


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
