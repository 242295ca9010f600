"""Figure of the leakage check: AUC in sample and out of sample, with and without lifecycle.

Draws :attr:`research.analysis.leakage.LeakageReport.variants`: the honest ``entry`` model
beside the same model given ``after_entry`` (lifecycle) features, all of them or one at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.layout import _axis

ENTRY = S.ENTRY_VARIANT  # the variant without any after_entry feature


def plot_leakage_auc(
    variants: pd.DataFrame, *, flagged=(), max_jump: float | None = 0.05, ax: Axes | None = None
) -> Figure:
    """In-sample vs out-of-sample AUC per feature set, the honest ``entry`` set on top.

    Parameters
    ----------
    variants : DataFrame
        ``LeakageReport.variants``: indexed by variant (``entry``, ``entry+all_lifecycle``,
        ``entry+<feature>``) with ``auc_in`` and ``auc_oos`` (AUC points).
    flagged : sequence of str
        ``LeakageReport.flagged``; their variants are labelled ``⚠``.
    max_jump : float or None
        The check's OOS AUC jump that flags a feature; drawn as a dotted line at the entry
        model's OOS AUC + ``max_jump`` (None: not drawn).
    ax : Axes, optional

    Returns
    -------
    Figure
        Grey segments join each set's two AUCs: a long segment is in-sample optimism; an OOS
        point right of the dotted line is a lifecycle feature that "predicts" from the future.
    """
    S.require_columns(variants, ["auc_in", "auc_oos"], "plot_leakage_auc")
    if ENTRY not in variants.index:
        raise ValueError(
            f"no {ENTRY!r} variant in {list(variants.index)}. Fix: pass "
            "LeakageReport.variants from research.analysis.leakage_check."
        )
    order = [ENTRY, *[v for v in variants.index if v != ENTRY]]
    g = variants.loc[order].iloc[::-1]  # barh-style: first row drawn on top
    fig, ax = _axis(ax, (7.0, 0.4 * len(g) + 1.6))
    y = np.arange(len(g))
    ax.hlines(y, g["auc_oos"], g["auc_in"], color="lightgrey", lw=3, zorder=1)
    ax.scatter(g["auc_in"], y, color="tab:orange", zorder=2, label="in sample")
    ax.scatter(g["auc_oos"], y, color="tab:blue", zorder=3, label="out of sample (purged)")
    ax.axvline(0.5, ls="--", color="grey", lw=1, label="no skill")
    base = float(variants.loc[ENTRY, "auc_oos"])
    if max_jump is not None and np.isfinite(base):
        ax.axvline(
            base + max_jump, ls=":", color="tab:red", label=f"entry OOS + {max_jump:.2f} (flag)"
        )
    flagged = set(flagged)
    names = [f"{v} ⚠" if v.removeprefix(f"{ENTRY}+") in flagged else str(v) for v in g.index]
    ax.set_yticks(y, names)
    ax.set(
        xlabel="ROC AUC",
        xlim=(min(0.4, float(np.nanmin(g[["auc_in", "auc_oos"]].values))), 1.02),
        title="Leakage: what after-entry features do to AUC (⚠ = flagged)",
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
