"""The seed's in-sample impurity importance against out-of-sample permutation importance.

One scatter, one point per entry feature: x = the seed's MDI share (random forest, fitted and
read in sample), y = the drop in out-of-sample AUC when the feature is permuted on purged
walk-forward folds, with the noise probe's drop as the line a real feature must clear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.trades import _axis

PROBE = S.NOISE_PROBE


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


#: label offsets tried in turn, in points: right-above, right-below, left-above, left-below, ...
_OFFSETS = ((4, 3), (4, -10), (-4, 3), (-4, -10), (4, 12), (-4, 12), (4, -19), (-4, -19))


def _overlaps(box, placed) -> bool:
    return any(box.overlaps(other) for other in placed)


def place_labels(ax: Axes, xs, ys, names, *, fontsize: float = 7.0) -> list:
    """Name points without overlapping labels (adjustText is not a dependency).

    Each label tries the offsets of :data:`_OFFSETS` in turn and keeps the first whose box
    overlaps no label placed before it nor leaves the axes; a label that fits nowhere is left
    out (its point stays, the table beside the figure names it). Points are labelled from the
    highest down. Returns the placed :class:`~matplotlib.text.Annotation` objects.
    """
    fig = ax.figure
    ax.autoscale_view()  # the data limits as drawn: label boxes are measured in pixels
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed, texts = [], []
    order = np.argsort(-np.asarray(ys, dtype=float), kind="stable")
    xs, ys, names = np.asarray(xs, float), np.asarray(ys, float), [str(n) for n in names]
    for i in order:
        for dx, dy in _OFFSETS:
            text = ax.annotate(
                names[i],
                (xs[i], ys[i]),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=fontsize,
                ha="left" if dx > 0 else "right",
            )
            box = text.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 <= frame.y1
            if inside and not _overlaps(box, placed):
                placed.append(box)
                texts.append(text)
                break
            text.remove()
    return texts


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
