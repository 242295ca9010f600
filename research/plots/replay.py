"""Figures of a replay of the online loop (:func:`research.replay.replay`).

Each function takes one of the replay's plain frames — ``decisions``, ``retrains`` or
``threshold_fits`` (its ``uplift`` is drawn by :mod:`research.plots.uplift`) — so a report can
draw them from frames it loaded from disk as well as from a live
:class:`~research.replay.ReplayResult`. Expected columns are listed per
function (names from :mod:`research.schema`). R is in multiples of the initial risk, and every
figure of R draws one cost basis and names it: ``rr_if_executed`` (R net of the venue's costs
for every signal, phantoms as if executed) or ``rr_gross`` (before costs), so executed +
phantoms = all signals exactly and a net figure is never set beside a gross one unlabelled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.plots.layout import _axis

_RETRAIN_COLUMNS = ("strategy", S.MODEL_VERSION, "at", "n_trades")
_FIT_COLUMNS = ("strategy", S.THRESHOLD_VERSION, "at", "n_trades", "buckets")
_SOURCE_COLORS = {"bucket": "tab:blue", "ev": "tab:orange", "static": "grey"}
_BASIS_LABEL = {"net": "R net of costs", "gross": "R gross (before costs)"}
_RR_GROSS, _COST_R = S.RR_GROSS, S.COST_R


def plot_decisions_over_time(
    decisions: pd.DataFrame, *, freq: str = "W", ax: Axes | None = None
) -> Figure:
    """Signals per period, stacked: executed by the filter, executed by exploration, phantoms.

    Parameters
    ----------
    decisions : DataFrame
        ``ReplayResult.decisions``: ``signal_time``, ``was_executed`` and optionally
        ``explored`` (below threshold but executed at random).
    freq : str
        Period of the bars, a pandas frequency (default ``'W'``, weeks ending Sunday).
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        One stacked bar per period (labelled by its last day); the title gives the share
        executed overall.
    """
    S.require_columns(decisions, (S.SIGNAL_TIME, S.WAS_EXECUTED), "decisions")
    executed = decisions[S.WAS_EXECUTED].to_numpy(bool)
    explored = (
        decisions[S.EXPLORED].to_numpy(bool)
        if S.EXPLORED in decisions
        else np.zeros(len(decisions), bool)
    )
    kinds = pd.DataFrame(
        {
            S.SIGNAL_TIME: decisions[S.SIGNAL_TIME].to_numpy(),
            "executed (filter)": executed & ~explored,
            "executed (exploration)": explored,
            "phantom": ~executed,
        }
    )
    counts = kinds.groupby(pd.Grouper(key=S.SIGNAL_TIME, freq=freq)).sum()
    fig, ax = _axis(ax, (max(6.0, 0.25 * len(counts) + 3), 3.6))
    x = np.arange(len(counts))
    bottom = np.zeros(len(counts))
    colors = {
        "executed (filter)": "tab:green",
        "executed (exploration)": "tab:olive",
        "phantom": "tab:red",
    }
    for column, color in colors.items():
        values = counts[column].to_numpy(np.float64)
        if column == "executed (exploration)" and not values.any():
            continue  # no exploration in this replay: no empty legend entry
        ax.bar(x, values, bottom=bottom, color=color, label=column, width=0.85)
        bottom += values
    step = max(1, len(counts) // 12)
    ax.set_xticks(
        x[::step],
        [t.strftime("%Y-%m-%d") for t in counts.index[::step]],
        rotation=45,
        ha="right",
        fontsize=8,
    )
    share = executed.mean() if len(executed) else np.nan
    ax.set(
        xlabel=f"period ({freq})",
        ylabel="signals",
        title=f"Decisions over time: {share:.1%} of {len(executed)} signals executed",
    )
    ax.legend(fontsize=8)
    return fig


def _r_on_basis(d: pd.DataFrame, basis: str) -> np.ndarray:
    """R per signal on ``basis``: ``rr_if_executed`` (net) or ``rr_gross`` (gross; frames
    without it: net + ``cost_r``)."""
    if basis == "net":
        return d[S.RR_IF_EXECUTED].to_numpy(np.float64)
    if _RR_GROSS in d:
        return d[_RR_GROSS].to_numpy(np.float64)
    S.require_columns(d, (_COST_R,), "decisions (for R gross)")
    return d[S.RR_IF_EXECUTED].to_numpy(np.float64) + d[_COST_R].to_numpy(np.float64)


def plot_cumulative_r(
    decisions: pd.DataFrame, *, by: str | None = None, basis: str = "net", ax: Axes | None = None
) -> Figure:
    """Cumulative R over exit time on one cost basis: executed vs all signals vs phantoms.

    Parameters
    ----------
    decisions : DataFrame
        ``ReplayResult.decisions``: ``exit_time``, ``censored``, ``was_executed`` and
        ``rr_if_executed`` (R net of execution costs, whatever the decision) or, for
        ``basis='gross'``, ``rr_gross`` (R before costs; or ``cost_r`` to add back).
    by : str, optional
        A column (e.g. ``'strategy'``) to draw one executed line per value as well.
    basis : {'net', 'gross'}
        R net of the venue's costs for every signal (phantoms as if executed), or R gross;
        named in the title and the axis label.
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        Step lines in R, counted when each trade closes; censored signals are left out. The
        last point of each set's line is its ``total_r`` (net) or ``total_r_gross`` in
        :func:`research.analysis.uplift.replay_summary`. The filter adds value where the
        executed line ends above the one of all signals *per trade* — compare slopes, and read
        the uplift table for the interval.
    """
    if basis not in _BASIS_LABEL:
        raise ValueError(f"basis={basis!r} is unknown. Fix: use 'net' or 'gross'.")
    S.require_columns(
        decisions, (S.EXIT_TIME, S.CENSORED, S.WAS_EXECUTED, S.RR_IF_EXECUTED), "decisions"
    )
    d = decisions.loc[~decisions[S.CENSORED].to_numpy(bool)].sort_values(S.EXIT_TIME, kind="stable")
    fig, ax = _axis(ax, (8.0, 4.0))
    executed = d[S.WAS_EXECUTED].to_numpy(bool)
    r = _r_on_basis(d, basis)
    t = d[S.EXIT_TIME].to_numpy()
    lines = [
        ("executed", executed, "tab:green", "-"),
        ("all signals", np.ones_like(executed), "black", "--"),
        ("phantoms", ~executed, "tab:red", "-"),
    ]
    for label, mask, color, ls in lines:
        ax.step(
            t[mask],
            np.cumsum(r[mask]),
            where="post",
            color=color,
            ls=ls,
            label=f"{label} (n={int(mask.sum())}, {r[mask].sum():+.1f} R)",
        )
    if by is not None:
        S.require_columns(d, (by,), "decisions")
        for value, color in zip(
            sorted(d[by].astype(str).unique()), sns.color_palette("muted"), strict=False
        ):
            mask = executed & (d[by].astype(str) == value).to_numpy()
            ax.step(
                t[mask],
                np.cumsum(r[mask]),
                where="post",
                color=color,
                lw=0.9,
                alpha=0.8,
                label=f"executed {value} ({r[mask].sum():+.1f} R)",
            )
    ax.axhline(0.0, color="black", lw=0.6)
    words = _BASIS_LABEL[basis]
    ax.set(
        xlabel="exit time (UTC)",
        ylabel=f"cumulative {words}",
        title=f"Cumulative {words}: executed vs all signals vs phantoms",
    )
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_retrain_timeline(
    retrains: pd.DataFrame, threshold_fits: pd.DataFrame | None = None, ax: Axes | None = None
) -> Figure:
    """When each model version and each threshold refit came, per strategy, and on how much data.

    Parameters
    ----------
    retrains : DataFrame
        ``ReplayResult.retrains``: ``strategy``, ``model_version``, ``at`` (event time),
        ``n_trades`` (training rows).
    threshold_fits : DataFrame, optional
        ``ReplayResult.threshold_fits``: ``strategy``, ``threshold_version``, ``at``,
        ``n_trades``, ``buckets`` (buckets with their own threshold).
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        One row per strategy: triangles at retrains (area ~ training rows, labelled ``v{N}``),
        crosses just below at threshold refits (labelled with the buckets learnt).
    """
    S.require_columns(retrains, _RETRAIN_COLUMNS, "retrains")
    fits = threshold_fits if threshold_fits is not None else pd.DataFrame(columns=_FIT_COLUMNS)
    S.require_columns(fits, _FIT_COLUMNS, "threshold_fits")
    seen = set(retrains["strategy"]) | set(fits["strategy"])
    order = [s for s in S.STRATEGIES if s in seen] + sorted(seen - set(S.STRATEGIES))
    fig, ax = _axis(ax, (8.0, 0.9 * max(len(order), 1) + 1.8))
    row = {s: i for i, s in enumerate(order)}
    most = max(float(retrains["n_trades"].max()) if len(retrains) else 1.0, 1.0)
    if len(retrains):
        yr = retrains["strategy"].map(row).to_numpy(np.float64)
        ax.scatter(
            retrains["at"],
            yr,
            s=30 + 170 * retrains["n_trades"] / most,
            marker="^",
            color="tab:purple",
            label="retrain (area ~ training rows)",
            zorder=3,
        )
        for at, yi, v, n in zip(
            retrains["at"], yr, retrains[S.MODEL_VERSION], retrains["n_trades"], strict=True
        ):
            ax.annotate(
                f"v{v}\n{n}",
                (at, yi),
                xytext=(0, 8),
                textcoords="offset points",
                ha="center",
                fontsize=6,
            )
    if len(fits):
        yf = fits["strategy"].map(row).to_numpy(np.float64) - 0.25
        ax.scatter(fits["at"], yf, marker="x", color="tab:blue", label="threshold refit", zorder=3)
        for at, yi, b in zip(fits["at"], yf, fits["buckets"], strict=True):
            ax.annotate(
                f"{b}b",
                (at, yi),
                xytext=(0, -10),
                textcoords="offset points",
                ha="center",
                fontsize=6,
                color="tab:blue",
            )
    if not len(retrains) and not len(fits):
        ax.text(
            0.5,
            0.5,
            "no retrain and no threshold refit",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="grey",
        )
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(-0.8, max(len(order), 1) - 0.3)
    ax.set(
        xlabel="event time (UTC)",
        title="Retrains (v = model version, rows) and threshold "
        "refits (b = buckets with their own threshold)",
    )
    ax.tick_params(axis="x", labelrotation=30)
    if len(retrains) or len(fits):
        ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_threshold_timeline(decisions: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """The threshold each signal faced over time, coloured by where it came from.

    Parameters
    ----------
    decisions : DataFrame
        ``ReplayResult.decisions``: ``signal_time``, ``threshold`` (score points),
        ``threshold_source`` (``bucket`` | ``ev`` | ``static``) and ``strategy``.
    ax : matplotlib Axes, optional

    Returns
    -------
    Figure
        One dot per signal (marker = strategy). The static 70 holds until the first refit;
        then buckets with enough trades get their own threshold (spread at one time = spread
        across buckets) and the others fall back to the EV threshold.
    """
    S.require_columns(
        decisions, (S.SIGNAL_TIME, S.THRESHOLD, S.THRESHOLD_SOURCE, S.STRATEGY), "decisions"
    )
    fig, ax = _axis(ax, (8.0, 4.0))
    d = decisions.astype({S.THRESHOLD_SOURCE: str, S.STRATEGY: str})
    sources = [s for s in _SOURCE_COLORS if s in set(d[S.THRESHOLD_SOURCE])]
    sources += sorted(set(d[S.THRESHOLD_SOURCE]) - set(sources))
    palette = {s: _SOURCE_COLORS.get(s, "tab:brown") for s in sources}
    if len(d):
        sns.scatterplot(
            data=d,
            x=S.SIGNAL_TIME,
            y=S.THRESHOLD,
            hue=S.THRESHOLD_SOURCE,
            hue_order=sources,
            palette=palette,
            style=S.STRATEGY,
            s=12,
            alpha=0.7,
            linewidth=0,
            ax=ax,
        )
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set(
        xlabel="signal time (UTC)",
        ylabel="threshold (score points)",
        title="Threshold in force per signal, by source",
    )
    ax.tick_params(axis="x", labelrotation=30)
    return fig
