"""Figures of calibration (:mod:`research.analysis.calibration`): the reliability diagram,
metrics per fold and per bucket.

The reliability diagram draws :func:`~research.analysis.metrics.reliability_table`; the
others draw frames of :func:`research.analysis.calibration.calibration_comparison`, in which the
seed's in-sample calibration (``rule == 'in_sample'``) and the rigorous out-of-fold one
(``rule == 'oof'``) are judged on the same later test folds.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.layout import _axis

METRICS = ("auc", "brier", "log_loss", "ece")
# what a reader should know about each metric, shown as the panel's axis label
_LABELS = {
    "auc": "AUC (0.5 = no ranking skill)",
    "brier": "Brier score (lower is better)",
    "log_loss": "log loss (lower is better)",
    "ece": "ECE (0 = calibrated)",
}


def plot_reliability(reliability: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Reliability diagram: observed win rate against mean predicted P(win), per rule.

    Parameters
    ----------
    reliability : DataFrame
        :func:`research.analysis.metrics.reliability_table` output (``predicted``,
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


def _panels(
    ax: Axes | Sequence[Axes] | None, n: int, size: tuple[float, float]
) -> tuple[Figure, list[Axes]]:
    """``n`` axes side by side: new ones (``size`` inches each) or the ``n`` given.

    One given Axes is accepted only when ``n == 1``; otherwise pass a sequence of ``n`` axes.
    """
    if ax is None:
        fig, axes = plt.subplots(
            1, n, figsize=(size[0] * n, size[1]), layout="constrained", squeeze=False
        )
        return fig, list(axes[0])
    axes = [ax] if isinstance(ax, Axes) else list(ax)
    if len(axes) != n:
        raise ValueError(
            f"{len(axes)} axes given for {n} panels. Fix: pass {n} axes "
            "(e.g. plt.subplots(1, n)[1]) or ax=None."
        )
    return axes[0].figure, axes


def _rules(frame: pd.DataFrame, who: str) -> list[str]:
    """Rules in display order: the seed's in-sample first, then out-of-fold, then others."""
    S.require_columns(frame, ["rule"], who)
    seen = list(dict.fromkeys(frame["rule"].astype(str)))
    if not seen:
        raise ValueError(f"{who}: the frame is empty. Fix: pass calibration_comparison output.")
    return sorted(seen, key=lambda r: (["in_sample", "oof"] + seen).index(r))


def plot_fold_metrics(
    by_fold: pd.DataFrame,
    *,
    metrics: Sequence[str] = METRICS,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Out-of-sample metrics per walk-forward test fold, one line per calibration rule.

    Parameters
    ----------
    by_fold : DataFrame
        ``calibration_comparison(...)["by_fold"]``: ``fold``, ``rule`` and the metric columns
        (AUC and ECE in probability points, Brier in squared probability, log loss in nats).
    metrics : sequence of str
        Columns to draw, one panel each.
    ax : Axes or sequence of Axes, optional
        One axis per metric; default a new figure with the panels side by side.

    Returns
    -------
    Figure
    """
    S.require_columns(by_fold, ["fold", *metrics], "plot_fold_metrics")
    rules = _rules(by_fold, "plot_fold_metrics")
    fig, axes = _panels(ax, len(metrics), (3.4, 3.2))
    for a, metric in zip(axes, metrics, strict=True):
        for rule in rules:
            g = by_fold.loc[by_fold["rule"].astype(str) == rule].sort_values("fold")
            a.plot(g["fold"], g[metric], marker="o", label=rule)
        if metric == "auc":
            a.axhline(0.5, ls="--", color="grey", lw=1)
        a.set(xlabel="test fold (later →)", ylabel=_LABELS.get(metric, metric), title=metric)
        a.set_xticks(sorted(by_fold["fold"].unique()))
    axes[0].legend(title="calibration", fontsize=8)
    return fig


def bucket_grid(by_bucket: pd.DataFrame, rule: str, metric: str = "ece") -> pd.DataFrame:
    """One rule's bucket metric as a session x volatility-regime grid (NaN: bucket left out).

    ``by_bucket`` is ``calibration_comparison(...)["by_bucket"]`` (buckets keyed
    ``"session|volatility_regime"``); rows follow :data:`research.schema.SESSIONS`, columns
    :data:`research.schema.VOLATILITY_REGIMES`.
    """
    S.require_columns(by_bucket, ["rule", "bucket", metric], "bucket_grid")
    g = by_bucket.loc[by_bucket["rule"].astype(str) == rule]
    return S.bucket_grid(zip(g["bucket"].astype(str), g[metric].to_numpy(float), strict=True))


def plot_bucket_calibration(
    by_bucket: pd.DataFrame, *, metric: str = "ece", ax: Axes | Sequence[Axes] | None = None
) -> Figure:
    """Calibration error per ``session x volatility`` bucket, one heatmap per rule.

    The panels share one colour scale, so the rule with the hotter map is the worse
    calibrated. Each cell shows the metric and its test rows; blank cells are buckets with
    fewer than 30 test rows (left out by ``calibration_comparison``: their ECE is noise).

    Parameters
    ----------
    by_bucket : DataFrame
        ``calibration_comparison(...)["by_bucket"]``: ``rule``, ``bucket``, ``n`` and metrics.
    metric : str
        Column to map; default ``'ece'`` (mean |observed - predicted| win rate, prob. points).
    ax : Axes or sequence of Axes, optional
        One axis per rule; default a new figure.

    Returns
    -------
    Figure
    """
    S.require_columns(by_bucket, ["bucket", "n", metric], "plot_bucket_calibration")
    rules = _rules(by_bucket, "plot_bucket_calibration")
    fig, axes = _panels(ax, len(rules), (4.6, 3.6))
    vmax = float(np.nanmax(by_bucket[metric].to_numpy(float)))
    vmax = vmax if np.isfinite(vmax) and vmax > 0 else 1.0
    for a, rule in zip(axes, rules, strict=True):
        grid = bucket_grid(by_bucket, rule, metric)
        counts = bucket_grid(by_bucket, rule, "n")
        text = grid.map(lambda v: "" if pd.isna(v) else f"{v:.2f}") + counts.map(
            lambda n: "" if pd.isna(n) else f"\nn={int(n)}"
        )
        sns.heatmap(
            grid,
            ax=a,
            vmin=0.0,
            vmax=vmax,
            cmap="rocket_r",
            annot=text,
            fmt="",
            annot_kws={"fontsize": 7},
            cbar=a is axes[-1],
            cbar_kws={"label": metric},
        )
        a.set_title(f"{rule}: {metric} by bucket")
        a.tick_params(axis="y", labelrotation=0)
    return fig
