"""Figures of thresholds: the split at a threshold, threshold sweeps, qscore buckets and curves.

Inputs are the frames of :mod:`research.analysis.explorer` (closed, scored signals and their
sweeps) and of :mod:`research.thresholds` (``QscoreAdapter.bucket_stats_`` and the fitted
adapter's curves).
Every function takes ``ax=None`` and returns the :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.layout import _axis

_SET_STYLE = {
    "executed": {"color": "tab:green", "ls": "-"},
    "phantom": {"color": "tab:red", "ls": "-"},
    "all": {"color": "grey", "ls": "--"},
}
_METRICS = {
    "win_rate": ("wr_low", "wr_high", "win rate (95 % Wilson interval)"),
    "mean_r": ("r_low", "r_high", "mean R per signal (95 % interval)"),
}


def plot_threshold_split(frame: pd.DataFrame, threshold: float, ax: Axes | None = None) -> Figure:
    """Cumulative R over time of signals scoring ``>= threshold`` (executed) vs below (phantom).

    Parameters
    ----------
    frame : DataFrame
        Closed, scored signals (:func:`research.analysis.explorer.explorer_frame`): ``ml_score``
        (0-100), ``realized_rr`` (R) and ``exit_time`` (R is counted when the trade closes).
    threshold : float
        Score points 0-100.
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        Three step lines (executed, phantom, all signals dashed) in R; a filter that works
        keeps the green line rising while the red one falls.
    """
    S.require_columns(frame, (S.ML_SCORE, S.REALIZED_RR, S.EXIT_TIME), "explorer")
    fig, ax = _axis(ax, (7.0, 3.2))
    d = frame.sort_values(S.EXIT_TIME, kind="stable")
    executed = (d[S.ML_SCORE] >= threshold).to_numpy()
    r = d[S.REALIZED_RR].to_numpy(np.float64)
    for name, mask in (
        ("executed", executed),
        ("phantom", ~executed),
        ("all", np.ones_like(executed)),
    ):
        total = r[mask].sum() if mask.any() else 0.0
        ax.step(
            d[S.EXIT_TIME].to_numpy()[mask],
            np.cumsum(r[mask]),
            where="post",
            label=f"{name} (n={int(mask.sum())}, {total:+.1f} R)",
            **_SET_STYLE[name],
        )
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set(
        xlabel="exit time (UTC)",
        ylabel="cumulative R (no costs)",
        title=f"Score >= {threshold:g}: executed vs phantom",
    )
    if not len(d):
        ax.text(
            0.5,
            0.5,
            "no closed signals in this selection",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="grey",
        )
    else:
        ax.legend(fontsize=8, loc="upper left")
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def plot_threshold_sweep(
    sweep: pd.DataFrame,
    *,
    metric: str = "win_rate",
    mark: float | None = 70.0,
    ax: Axes | None = None,
) -> Figure:
    """Win rate or mean R of executed vs phantom signals as the threshold moves.

    Parameters
    ----------
    sweep : DataFrame
        :func:`research.analysis.explorer.threshold_sweep` output (``threshold``, ``set`` and the
        table's columns).
    metric : {'win_rate', 'mean_r'}
        What to draw, with its interval as a band.
    mark : float, optional
        A threshold to mark with a vertical line (default the seed's static 70).
    ax : matplotlib Axes, optional
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {list(_METRICS)}, got {metric!r}")
    lo, hi, label = _METRICS[metric]
    fig, ax = _axis(ax, (6.0, 3.6))
    for name, g in sweep.groupby("set", sort=False):
        style = _SET_STYLE.get(str(name), {})
        ax.plot(g["threshold"], g[metric], marker=".", label=str(name), **style)
        if name != "all":
            ax.fill_between(g["threshold"], g[lo], g[hi], color=style.get("color"), alpha=0.15)
    if mark is not None:
        ax.axvline(mark, color="black", ls=":", lw=1, label=f"threshold {mark:g}")
    ax.set(
        xlabel="threshold (score points)",
        ylabel=label,
        title=f"{metric.replace('_', ' ')} above (executed) vs below (phantom) the threshold",
    )
    ax.legend(fontsize=8)
    return fig


def _bucket_grid(stats: pd.DataFrame, column: str) -> pd.DataFrame:
    """``stats[column]`` (indexed ``session|volatility``) as sessions x volatility regimes."""
    return S.bucket_grid(stats[column], dtype=object if column == "note" else np.float64)


def plot_bucket_thresholds(
    bucket_stats: pd.DataFrame, *, title: str = "", ax: Axes | None = None
) -> Figure:
    """Heatmap of the qscore bucket thresholds, 4 sessions x 4 volatility regimes.

    Parameters
    ----------
    bucket_stats : DataFrame
        :attr:`research.thresholds.QscoreAdapter.bucket_stats_` (index ``session|volatility``,
        columns ``n, wins, threshold, note``).
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        Colour = the bucket's own threshold in score points (before the policy's floor and
        ceiling); each cell reads ``threshold / n trades, wins``. Blank cells have no threshold
        of their own and say why (the policy then falls back to the EV or static threshold).
    """
    S.require_columns(bucket_stats, ("n", "wins", "threshold", "note"), "bucket_stats")
    thr, n, wins = (_bucket_grid(bucket_stats, c) for c in ("threshold", "n", "wins"))
    note = _bucket_grid(bucket_stats, "note")
    fig, ax = _axis(ax, (7.0, 4.6))
    labels = np.empty(thr.shape, dtype=object)
    for i in range(thr.shape[0]):
        for j in range(thr.shape[1]):
            counts = (
                "no trades"
                if not n.iat[i, j] > 0
                else f"n={n.iat[i, j]:.0f}, w={wins.iat[i, j]:.0f}"
            )
            labels[i, j] = f"{thr.iat[i, j]:.1f}\n{counts}" if np.isfinite(thr.iat[i, j]) else ""
    sns.heatmap(
        thr,
        ax=ax,
        cmap="viridis",
        annot=labels,
        fmt="",
        annot_kws={"fontsize": 8},
        cbar_kws={"label": "threshold (score points)"},
        linewidths=0.5,
        linecolor="white",
    )
    for i in range(thr.shape[0]):
        for j in range(thr.shape[1]):
            if not np.isfinite(thr.iat[i, j]):
                why = str(note.iat[i, j] or "no threshold").replace(": ", ":\n")
                counts = f"n={n.iat[i, j]:.0f}\n" if n.iat[i, j] > 0 else ""
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    f"{counts}{why}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="grey",
                )
    ax.set(
        xlabel="volatility regime",
        ylabel="session",
        title=title or "Qscore bucket thresholds (blank: no threshold of its own)",
    )
    return fig


def plot_qscore_curves(
    adapter, *, p_min: float | None = None, buckets=None, ax: Axes | None = None
) -> Figure:
    """Fitted P(win) against qscore per bucket and pooled, with the break-even ``p_min``.

    Parameters
    ----------
    adapter : research.thresholds.QscoreAdapter
        A fitted adapter (it holds the isotonic curves; one restored by ``from_dict`` has none).
    p_min : float, optional
        Break-even win probability (0-1) to draw, e.g. ``ev_threshold(...).p_min``; where a
        curve first reaches it is that bucket's threshold.
    buckets : sequence of str, optional
        Buckets to draw (default every bucket with a curve).
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        Thin lines per bucket, the pooled curve in black, dots at each bucket's threshold,
        the dotted diagonal ``P(win) = qscore / 100`` (a perfectly calibrated score: there the
        bucket threshold equals the EV threshold ``100 * p_min``).
    """
    curves = getattr(adapter, "curves_", None)
    if curves is None or getattr(adapter, "global_curve_", None) is None:
        raise ValueError(
            "the adapter has no fitted curves. Fix: QscoreAdapter(rule=...).fit(trades)"
            " (an adapter restored with from_dict keeps thresholds only)."
        )
    fig, ax = _axis(ax, (7.5, 4.8))
    grid = np.linspace(0.0, 100.0, 201)
    names = [b for b in (buckets or sorted(curves)) if b in curves]
    stats = getattr(adapter, "bucket_stats_", None)
    palette = sns.color_palette("husl", max(len(names), 1))
    for color, bucket in zip(palette, names, strict=False):
        n = int(stats.at[bucket, "n"]) if stats is not None else None
        ax.plot(
            grid,
            adapter.curve(bucket, grid),
            color=color,
            lw=1.1,
            alpha=0.85,
            label=f"{bucket} (n={n})" if n is not None else bucket,
        )
        thr = adapter.thresholds_.get(bucket)
        if thr is not None:
            ax.scatter([thr], adapter.curve(bucket, [thr]), color=color, zorder=3, s=25)
    ax.plot(grid, adapter.curve(None, grid), color="black", lw=2.2, label="pooled")
    ax.plot([0, 100], [0, 1], color="grey", ls=":", lw=1, label="P(win) = qscore / 100")
    if p_min is not None:
        ax.axhline(p_min, color="tab:red", ls="--", lw=1.2, label=f"break-even p_min={p_min:.3f}")
        ax.axvline(
            100 * p_min, color="tab:red", ls=":", lw=1, label=f"EV threshold {100 * p_min:.1f}"
        )
    ax.set(
        xlabel="qscore (score points)",
        ylabel="fitted P(win)",
        xlim=(0, 100),
        ylim=(0, 1),
        title="EV curves: P(win) vs qscore per bucket",
    )
    ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_threshold_rules(
    seed_stats: pd.DataFrame,
    rigorous_stats: pd.DataFrame,
    *,
    floor: float | None = None,
    ceiling: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Threshold per bucket under the seed rule and under the rigorous (shrunk) rule.

    Parameters
    ----------
    seed_stats, rigorous_stats : DataFrame
        ``bucket_stats_`` of a :class:`~research.thresholds.QscoreAdapter` fitted with
        ``ThresholdConfig(rule='seed')`` and ``rule='rigorous'`` on the same trades.
    floor, ceiling : float, optional
        The policy's clamp (score points), drawn as a band.
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        One column per bucket (trades under its name): a circle for the seed rule, a diamond
        for the rigorous rule, joined by a line; a missing marker means no threshold of its own.
    """
    for name, stats in (("seed_stats", seed_stats), ("rigorous_stats", rigorous_stats)):
        S.require_columns(stats, ("n", "threshold"), name)
    buckets = list(seed_stats.index)
    seed = seed_stats["threshold"].reindex(buckets).to_numpy(np.float64)
    rig = rigorous_stats["threshold"].reindex(buckets).to_numpy(np.float64)
    n = seed_stats["n"].reindex(buckets).to_numpy()
    fig, ax = _axis(ax, (max(7.0, 0.55 * len(buckets) + 2), 4.2))
    x = np.arange(len(buckets))
    if floor is not None and ceiling is not None:
        ax.axhspan(
            floor, ceiling, color="grey", alpha=0.1, label=f"policy clamp [{floor:g}, {ceiling:g}]"
        )
    ax.vlines(x, np.fmin(seed, rig), np.fmax(seed, rig), color="grey", lw=1)
    # hollow and larger than the diamonds, so that equal thresholds show both markers
    ax.scatter(
        x,
        seed,
        marker="o",
        s=70,
        facecolors="none",
        edgecolors="tab:orange",
        linewidths=1.6,
        zorder=4,
        label="seed rule (own curve, n >= min_records)",
    )
    ax.scatter(
        x, rig, marker="D", color="tab:blue", zorder=3, label="rigorous rule (shrunk to pooled)"
    )
    ax.set_xticks(
        x,
        [f"{b}\nn={k}" for b, k in zip(buckets, n, strict=True)],
        rotation=60,
        fontsize=7,
        ha="right",
    )
    ax.set(
        ylabel="bucket threshold (score points)",
        ylim=(-3, 100),
        title="Bucket thresholds: seed vs rigorous rule",
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
