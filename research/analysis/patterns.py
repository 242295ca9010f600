"""Patterns of completed trades: win rate and R by hour, session, weekday and market state.

The seed's "COMPLETED TRADE -> Available for pattern analysis" (best hours, sessions, market
conditions), with what a reader needs not to be fooled: every cell carries its count and
intervals (Wilson for the win rate, normal for mean R), and "best"/"worst" cells are chosen
only among cells with enough trades, flagged when their interval excludes the overall figure.
"""

from __future__ import annotations

import pandas as pd

from research import schema as S
from research.analysis.stats import (
    CELL_STATS,
    cell_stats,
    wilson_interval,  # noqa: F401  (re-exported: callers import it from here)
)

#: The context features a pattern can be cut by (all known at signal time).
DIMENSIONS: tuple[str, ...] = (
    "hour",
    S.SESSION,
    "weekday",
    S.VOLATILITY_REGIME,
    "trend_state",
    "volume_state",
)


def trades_with_context(outcomes: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Closed trades (censored dropped) joined with their context features by ``signal_id``."""
    S.require_columns(outcomes, (S.SIGNAL_ID, S.OUTCOME, S.REALIZED_RR), "pattern trades")
    closed = outcomes
    if S.CENSORED in outcomes:
        closed = outcomes.loc[~outcomes[S.CENSORED].to_numpy(bool)]
    missing = [d for d in DIMENSIONS if d not in features]
    if missing:
        raise S.SchemaError(
            f"features lack the context columns {missing}. Fix: pass the frame of "
            "research.features.build_features (indexed by signal_id)."
        )
    ctx = features[list(DIMENSIONS)]
    return closed.join(ctx, on=S.SIGNAL_ID, how="inner")


def pattern_table(
    trades: pd.DataFrame, by=DIMENSIONS, *, min_n: int = 30, confidence: float = 0.95
) -> pd.DataFrame:
    """One row per (dimension, value): ``n``, ``win_rate`` with Wilson ``wr_low``/``wr_high``,
    ``mean_r`` with ``r_low``/``r_high``, ``total_r``, ``enough`` (``n >= min_n``).

    ``trades`` is :func:`trades_with_context` output (or any frame with ``outcome``,
    ``realized_rr`` and the ``by`` columns). Timeouts count as trades that did not win.
    """
    if len(trades) == 0:
        raise ValueError("no trades to analyse. Fix: pass completed (non-censored) trades.")
    won = (trades[S.OUTCOME] == "win").to_numpy(bool)
    rr = trades[S.REALIZED_RR].to_numpy(float)
    rows = []
    for dim in [by] if isinstance(by, str) else by:
        # one cell per value as the table prints it (its text), in sorted order
        codes, values = pd.factorize(trades[dim].astype(str).to_numpy(), sort=True)
        for k, value in enumerate(values):
            cell = codes == k
            rows.append(
                {"dimension": dim, "value": value, **cell_stats(won[cell], rr[cell], confidence)}
            )
    table = pd.DataFrame(rows)
    table["enough"] = table["n"] >= min_n
    cols = ["dimension", "value", *(c for c in CELL_STATS if c != "wins"), "enough"]
    return table[cols]


def best_worst(
    table: pd.DataFrame, trades: pd.DataFrame, *, metric: str = "mean_r", k: int = 3
) -> pd.DataFrame:
    """The ``k`` best and worst cells by ``metric`` ('mean_r' or 'win_rate') among cells with
    enough trades; ``clear`` is True when the cell's interval excludes the overall value."""
    if metric not in ("mean_r", "win_rate"):
        raise ValueError(f"metric must be 'mean_r' or 'win_rate', got {metric!r}")
    overall = (
        float(trades[S.REALIZED_RR].mean())
        if metric == "mean_r"
        else float((trades[S.OUTCOME] == "win").mean())
    )
    lo, hi = ("r_low", "r_high") if metric == "mean_r" else ("wr_low", "wr_high")
    ok = table.loc[table["enough"]].sort_values(metric, ascending=False)
    best = ok.head(k).assign(rank="best", clear=lambda d: d[lo] > overall)
    worst = ok.tail(k).iloc[::-1].assign(rank="worst", clear=lambda d: d[hi] < overall)
    return pd.concat([best, worst], ignore_index=True).assign(overall=overall)


def pattern_matrix(
    trades: pd.DataFrame,
    rows: str = "weekday",
    cols: str = "hour",
    *,
    value: str = "win_rate",
    min_n: int = 10,
) -> pd.DataFrame:
    """A ``rows`` x ``cols`` grid of ``value`` ('win_rate', 'mean_r' or 'n') for heatmaps;
    cells with fewer than ``min_n`` trades are NaN (not drawn as if they meant something)."""
    g = trades.assign(_won=(trades[S.OUTCOME] == "win").to_numpy(float))
    agg = g.groupby([rows, cols], observed=True).agg(
        n=("_won", "size"), win_rate=("_won", "mean"), mean_r=(S.REALIZED_RR, "mean")
    )
    grid = agg[value].where(agg["n"] >= min_n) if value != "n" else agg["n"]
    return grid.unstack(cols)
