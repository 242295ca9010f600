"""Figures of trades: R distribution, exit reasons, candles with signals.

Every function takes the frames of DESIGN §3 (candles, signals, outcomes) as they come out of
the library, plus ``ax=None``: with an axis it draws there, without one it creates a figure.
It returns the :class:`matplotlib.figure.Figure` so a notebook can save it. Nothing is computed
here beyond the grouping a figure needs (counts, means for labels); importing this module
changes no global matplotlib or seaborn style.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from research import schema as S
from research.candles import timeframe_of
from research.plots.layout import _axis

_SIDE_STYLE = {S.LONG: ("^", "tab:green"), S.SHORT: ("v", "tab:red")}


def _closed_trades(outcomes: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """Outcomes of finished (not censored) trades with the ``strategy`` of their signal."""
    S.require_columns(outcomes, (S.SIGNAL_ID, S.EXIT_REASON, S.REALIZED_RR), "outcomes")
    S.require_columns(signals, (S.SIGNAL_ID, S.STRATEGY), "signals")
    trades = outcomes.merge(signals[[S.SIGNAL_ID, S.STRATEGY]], on=S.SIGNAL_ID, how="inner")
    trades = trades[trades[S.EXIT_REASON].notna() & trades[S.REALIZED_RR].notna()]
    return trades.astype({S.STRATEGY: str})


def _strategy_order(trades: pd.DataFrame) -> list[str]:
    """Strategies in :data:`research.schema.STRATEGIES` order, then any others by name."""
    seen = set(trades[S.STRATEGY])
    return [s for s in S.STRATEGIES if s in seen] + sorted(seen - set(S.STRATEGIES))


def plot_r_distribution(
    outcomes: pd.DataFrame, signals: pd.DataFrame, ax: Axes | None = None
) -> Figure:
    """Histogram of realized R multiples per strategy, finished trades only.

    Parameters
    ----------
    outcomes : DataFrame
        Outcomes frame (:func:`research.simulate`); censored rows are left out.
    signals : DataFrame
        Signals frame the outcomes came from; gives each ``signal_id`` its ``strategy``.
    ax : matplotlib Axes, optional
        Axis to draw on; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Density-scaled step histograms (each strategy integrates to 1, so small and large
        strategies compare by shape), a dashed line at R = 0, legend ``strategy (n, mean R)``.
    """
    fig, ax = _axis(ax, (8.0, 4.5))
    trades = _closed_trades(outcomes, signals)
    order = _strategy_order(trades)
    stats = trades.groupby(S.STRATEGY)[S.REALIZED_RR].agg(["size", "mean"])
    labels = {s: f"{s} (n={stats.at[s, 'size']}, mean R={stats.at[s, 'mean']:+.2f})" for s in order}
    trades = trades.assign(label=trades[S.STRATEGY].map(labels))
    if len(trades):
        sns.histplot(
            data=trades,
            x=S.REALIZED_RR,
            hue="label",
            hue_order=[labels[s] for s in order],
            stat="density",
            common_norm=False,
            element="step",
            bins=min(60, max(10, int(np.sqrt(len(trades))))),
            ax=ax,
        )
        legend = ax.get_legend()
        if legend is not None:
            legend.set_title("strategy")
    ax.axvline(0.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("realized R (multiples of initial risk)")
    ax.set_ylabel("density (per strategy)")
    ax.set_title(f"Realized R of {len(trades)} finished phantom trades")
    return fig


def plot_exit_reasons(
    outcomes: pd.DataFrame, signals: pd.DataFrame, ax: Axes | None = None
) -> Figure:
    """Bar chart of exit reasons (tp, sl, be, timeout) per strategy, with the win rate.

    Parameters
    ----------
    outcomes : DataFrame
        Outcomes frame (:func:`research.simulate`); censored rows are left out.
    signals : DataFrame
        Signals frame the outcomes came from; gives each ``signal_id`` its ``strategy``.
    ax : matplotlib Axes, optional
        Axis to draw on; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Grouped bars of trade counts; each strategy's tick label carries its number of finished
        trades and its win rate (``outcome == 'win'`` among them).
    """
    fig, ax = _axis(ax, (8.0, 4.5))
    trades = _closed_trades(outcomes, signals)
    order = _strategy_order(trades)
    counts = (
        trades.assign(**{S.EXIT_REASON: pd.Categorical(trades[S.EXIT_REASON], S.EXIT_REASONS)})
        .groupby([S.STRATEGY, S.EXIT_REASON], observed=False)
        .size()
        .rename("trades")
        .reset_index()
    )
    if len(counts):
        sns.barplot(
            data=counts,
            x=S.STRATEGY,
            y="trades",
            hue=S.EXIT_REASON,
            order=order,
            hue_order=list(S.EXIT_REASONS),
            ax=ax,
        )
        win = (trades[S.OUTCOME] == "win").groupby(trades[S.STRATEGY]).mean()
        size = trades.groupby(S.STRATEGY).size()
        ax.set_xticks(
            range(len(order)),
            [f"{s}\nn={size[s]}, win {win[s]:.0%}" for s in order],
        )
    ax.set_xlabel("strategy (finished trades, win rate)")
    ax.set_ylabel("trades (count)")
    ax.set_title("Exit reasons per strategy")
    return fig


def plot_candles_with_signals(
    candles: pd.DataFrame,
    signals: pd.DataFrame,
    ax: Axes | None = None,
    max_bars: int = 2000,
) -> Figure:
    """Close price of the last ``max_bars`` bars with the entries of the signals in that window.

    Parameters
    ----------
    candles : DataFrame
        Candles of one symbol (DESIGN §3).
    signals : DataFrame
        Signals of that symbol; each is drawn at its ``signal_time`` (the close of the bar that
        produced it) and ``entry`` price, ``^`` for long and ``v`` for short.
    ax : matplotlib Axes, optional
        Axis to draw on; default a new figure.
    max_bars : int
        Number of most recent bars shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if max_bars < 1:
        raise ValueError(f"max_bars must be >= 1, got {max_bars}. Fix: pass e.g. 2000.")
    S.require_columns(signals, (S.SIDE, S.SIGNAL_TIME, S.ENTRY), "signals")
    fig, ax = _axis(ax, (11.0, 4.5))
    window = candles.iloc[-max_bars:]
    ax.plot(window.index, window[S.CLOSE], color="tab:gray", linewidth=0.8, label="close")
    if len(window):
        start, end = window.index[0], window.index[-1] + timeframe_of(candles)
        times = signals[S.SIGNAL_TIME]
        shown = signals[((times > start) & (times <= end)).to_numpy()]
        for side, (marker, color) in _SIDE_STYLE.items():
            rows = shown[shown[S.SIDE] == side]
            ax.scatter(
                rows[S.SIGNAL_TIME],
                rows[S.ENTRY],
                marker=marker,
                color=color,
                s=30,
                zorder=3,
                label=f"{side} entry ({len(rows)})",
            )
    symbol = candles.attrs.get("symbol", "")
    ax.set_title(f"{symbol} close, last {len(window)} bars, with signal entries".strip())
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("price (quote currency)")
    ax.legend(loc="best")
    return fig
