"""Figures of feature importance (:mod:`research.analysis.importance`).

The seed's in-sample impurity importance (MDI) as it evolves with the number of trades, the
out-of-sample permutation importance on purged walk-forward folds (drop in AUC, AUC points)
against a noise probe, and the two side by side: one point per entry feature, x = the seed's
MDI share, y = the drop in out-of-sample AUC when the feature is permuted, with the noise
probe's drop as the line a real feature must clear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.layout import _axis, place_labels

PROBE = S.NOISE_PROBE


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


def importance_pairs(
    permutation: pd.DataFrame, evolution: pd.DataFrame, *, size: int | str = "all"
) -> pd.DataFrame:
    """Both importances of every entry feature side by side, probe excluded.

    Parameters
    ----------
    permutation : DataFrame
        :func:`research.analysis.importance.permutation_importance_oos` output (``mean``,
        ``se``, ``beats_probe``; indexed by feature).
    evolution : DataFrame
        :func:`research.analysis.importance.impurity_evolution` output (rows features,
        columns sizes).
    size : int or 'all'
        The evolution column to compare (MDI after that many trades).

    Returns
    -------
    DataFrame
        Indexed by feature: ``mdi`` (share of impurity decrease, sums to 1), ``mdi_rank``,
        ``permutation`` (drop in OOS AUC, AUC points), ``se``, ``permutation_rank``,
        ``beats_probe``; sorted by ``permutation`` descending.
    """
    S.require_columns(permutation, ["mean", "se", "beats_probe"], "importance_pairs")
    if size not in evolution.columns:
        raise ValueError(
            f"size {size!r} is not a column of the evolution "
            f"{list(evolution.columns)}. Fix: pass one of them."
        )
    common = [f for f in evolution.index if f in permutation.index and f != PROBE]
    if not common:
        raise ValueError(
            "the two frames share no feature. Fix: compute both on the same features frame."
        )
    out = pd.DataFrame(
        {
            "mdi": evolution.loc[common, size].astype(float),
            "permutation": permutation.loc[common, "mean"].astype(float),
            "se": permutation.loc[common, "se"].astype(float),
            "beats_probe": permutation.loc[common, "beats_probe"].astype(bool),
        }
    )
    out["mdi_rank"] = out["mdi"].rank(ascending=False, method="min")
    out["permutation_rank"] = out["permutation"].rank(ascending=False, method="min")
    out.index.name = "feature"
    return out.sort_values("permutation", ascending=False)


def plot_importance_comparison(
    permutation: pd.DataFrame,
    evolution: pd.DataFrame,
    *,
    size: int | str = "all",
    label_top: int = 4,
    ax: Axes | None = None,
) -> Figure:
    """Scatter of in-sample MDI (x) against out-of-sample permutation importance (y).

    Error bars are ±2 s.e. of the fold means; dark points beat the noise probe
    (``beats_probe``), light ones do not. The dashed line is the probe's own drop in AUC, the
    dotted one the equal MDI share ``1 / n_features``. Features far right but not above the
    dashed line are what in-sample MDI invents (high-cardinality, noise-fitting columns).

    Parameters
    ----------
    permutation, evolution : DataFrame
        See :func:`importance_pairs`.
    size : int or 'all'
        MDI column to use.
    label_top : int
        Features named on the plot: the top ``label_top`` by either importance.
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    pairs = importance_pairs(permutation, evolution, size=size)
    fig, ax = _axis(ax, (7.0, 5.0))
    for beats, color, label in (
        (True, "tab:blue", "beats the probe"),
        (False, "lightsteelblue", "does not"),
    ):
        g = pairs.loc[pairs["beats_probe"] == beats]
        ax.errorbar(
            g["mdi"],
            g["permutation"],
            yerr=2 * g["se"],
            fmt="o",
            color=color,
            ecolor=color,
            capsize=2,
            label=f"{label} ({len(g)})",
        )
    if PROBE in permutation.index:
        ax.axhline(
            float(permutation.loc[PROBE, "mean"]), ls="--", color="tab:grey", label="noise probe"
        )
    ax.axvline(1.0 / len(evolution), ls=":", color="tab:grey", label="equal MDI share")
    top = pairs.index[(pairs["mdi_rank"] <= label_top) | (pairs["permutation_rank"] <= label_top)]
    ax.set_xlim(left=min(0.0, float(np.nanmin(pairs["mdi"]))))
    place_labels(ax, pairs.loc[top, "mdi"], pairs.loc[top, "permutation"], top)
    what = "all trades" if size == "all" else f"first {size} trades"
    ax.set(
        xlabel=f"impurity importance, MDI share in sample ({what})",
        ylabel="drop in out-of-sample AUC when permuted (±2 s.e.)",
        title="Seed (MDI) vs rigorous (permutation) importance",
    )
    ax.legend(fontsize=8, loc="best")
    return fig
