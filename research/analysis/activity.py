"""A period's activity from the audit trail: what was executed, what was tracked as a phantom.

Computed on completed trades (:meth:`research.stores.audit.AuditTrail.completed_trades`). R is
in multiples of the initial risk. The audit trail records it on two bases — executed trades
**net** of the venue's costs, phantoms **gross** (hypothetical, no costs), as the seed does —
so nothing here compares them as recorded: :func:`restate` puts every trade on one basis with
the signal's ``cost_r`` (round-trip costs in R, a registered entry feature the audit trail
stores with each trade): ``net = gross - cost_r``. Tables give R net of costs (``mean_r``,
``total_r``, win rates) and R gross (``mean_r_gross``, ``total_r_gross``) side by side; a trade
without ``cost_r`` (recorded by an older version) is known on its recorded basis only, and a
figure that would need it on the other one is NaN (tables) or left out (cumulative lines). A
win is ``outcome == 'win'`` on the same basis (the simulator's rule: a trade that did not time
out wins when its R > 0); timeouts count as not-win.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import schema as S
from research.analysis.stats import wilson_interval
from research.costs import outcome_on_basis

#: The two sides of the filter's decision, as labelled in the tables and figures.
EXECUTED, PHANTOM = "executed", "phantom"
#: The cost bases, and how a table or a figure names them.
NET, GROSS = "net", "gross"
BASIS_LABEL = {NET: "R net of costs", GROSS: "R gross (before costs)"}
#: The signal's round-trip costs in R (the registered entry feature, ``research.features``).
COST_R = S.COST_R  # re-exported: the report and its tests read act.COST_R


def _decision(trades: pd.DataFrame) -> np.ndarray:
    return np.where(trades[S.WAS_EXECUTED].to_numpy(bool), EXECUTED, PHANTOM)


def missing_cost(trades: pd.DataFrame) -> int:
    """Number of trades without a finite ``cost_r``: their R is known on one basis only."""
    if COST_R not in trades:
        return len(trades)
    return int(
        (~np.isfinite(pd.to_numeric(trades[COST_R], errors="coerce").to_numpy(np.float64))).sum()
    )


def restate(trades: pd.DataFrame, basis: str = NET) -> pd.DataFrame:
    """``trades`` with ``realized_rr`` and ``outcome`` on one cost basis.

    Parameters
    ----------
    trades : DataFrame
        Completed trades: ``was_executed``, ``outcome``, ``realized_rr`` (R as recorded:
        executed net of costs, phantoms gross) and, to convert, ``cost_r`` (R per trade).
    basis : {'net', 'gross'}
        ``'net'``: phantoms are charged ``cost_r`` as if they had been executed;
        ``'gross'``: executed trades get ``cost_r`` back.

    Returns
    -------
    DataFrame
        A copy with ``realized_rr`` in R on ``basis`` — NaN for a trade that has to be
        converted but has no ``cost_r`` — and ``outcome`` re-derived for converted trades by
        the simulator's rule (timeouts stay timeouts, else win when R > 0; missing when R is
        unknown). Trades already on ``basis`` keep their recorded values.
    """
    if basis not in BASIS_LABEL:
        raise ValueError(f"basis={basis!r} is unknown. Fix: use 'net' or 'gross'.")
    S.require_columns(trades, (S.WAS_EXECUTED, S.OUTCOME, S.REALIZED_RR), "period trades")
    executed = trades[S.WAS_EXECUTED].to_numpy(bool)
    r = trades[S.REALIZED_RR].to_numpy(np.float64)
    cost = (
        pd.to_numeric(trades[COST_R], errors="coerce").to_numpy(np.float64)
        if COST_R in trades
        else np.full(len(trades), np.nan)
    )
    convert = ~executed if basis == NET else executed
    rr = np.where(convert, r - cost if basis == NET else r + cost, r)
    recorded = trades[S.OUTCOME].astype(object).to_numpy()
    outcome = np.where(convert, outcome_on_basis(recorded, rr), recorded).astype(object)
    outcome[convert & ~np.isfinite(rr)] = None
    return trades.assign(**{S.REALIZED_RR: rr, S.OUTCOME: outcome})


def _sum(values: pd.Series) -> float:
    return float(values.to_numpy(np.float64).sum())  # NaN when any trade's R is unknown


def _mean(values: pd.Series) -> float:
    return float(values.to_numpy(np.float64).mean()) if len(values) else np.nan


def executed_vs_phantom(trades: pd.DataFrame, by: str = S.STRATEGY) -> pd.DataFrame:
    """Per ``by`` value (and ``all``) and decision: trades, win rate with its 95 % Wilson
    interval, mean and total R — executed and phantoms on the same basis.

    Returns a tidy frame ``[by, decision, trades, wins, win_rate, wr_low, wr_high, mean_r,
    total_r, mean_r_gross, total_r_gross]``: ``wins``, ``win_rate`` and ``mean_r``/``total_r``
    (R per trade / R) **net** of costs for every trade (phantoms as if executed), the
    ``_gross`` columns the same trades before costs (:func:`restate`). A figure needing a trade
    without ``cost_r`` is NaN rather than a mix of bases; a decision with no trades is left out.
    """
    S.require_columns(trades, (by, S.WAS_EXECUTED, S.OUTCOME, S.REALIZED_RR), "period trades")
    net, gross = restate(trades, NET), restate(trades, GROSS)
    won = net[S.OUTCOME].map({"win": 1.0, "loss": 0.0, "timeout": 0.0}).astype(float)
    frame = trades[[by]].assign(
        decision=_decision(trades),
        _win=won.to_numpy(),
        _net=net[S.REALIZED_RR].to_numpy(),
        _gross=gross[S.REALIZED_RR].to_numpy(),
    )
    parts = [frame, frame.assign(**{by: "all"})]
    g = pd.concat(parts).groupby([by, "decision"], sort=False)
    out = g.agg(
        trades=("_win", "size"),
        wins=("_win", _sum),
        mean_r=("_net", _mean),
        total_r=("_net", _sum),
        mean_r_gross=("_gross", _mean),
        total_r_gross=("_gross", _sum),
    )
    out = out.reset_index()
    out["win_rate"] = out["wins"] / out["trades"]
    out["wr_low"], out["wr_high"] = wilson_interval(out["wins"], out["trades"])
    cols = [
        by,
        "decision",
        "trades",
        "wins",
        "win_rate",
        "wr_low",
        "wr_high",
        "mean_r",
        "total_r",
        "mean_r_gross",
        "total_r_gross",
    ]
    return out[cols]


def activity_by_period(
    trades: pd.DataFrame, freq: str = "W", *, time_column: str = S.EXIT_TIME
) -> pd.DataFrame:
    """Trades and total R per calendar period, strategy and decision: a tidy frame
    ``[period, strategy, decision, trades, total_r, total_r_gross]`` (R net of costs and R
    gross, :func:`restate`; NaN where a trade lacks ``cost_r``); ``freq`` is a pandas period
    alias ('D', 'W', 'M'; 'MS' is an offset, not a period, and is refused by pandas)."""
    S.require_columns(
        trades, (time_column, S.STRATEGY, S.WAS_EXECUTED, S.REALIZED_RR), "period trades"
    )
    t = pd.to_datetime(trades[time_column], utc=True)
    period = t.dt.tz_localize(None).dt.to_period(freq).dt.start_time
    net = restate(trades, NET)[S.REALIZED_RR].to_numpy()
    gross = restate(trades, GROSS)[S.REALIZED_RR].to_numpy()
    frame = trades.assign(
        period=period.to_numpy(), decision=_decision(trades), _net=net, _gross=gross
    )
    g = frame.groupby(["period", S.STRATEGY, "decision"], sort=True)
    out = g.agg(trades=("_net", "size"), total_r=("_net", _sum), total_r_gross=("_gross", _sum))
    return out.reset_index()


def cumulative_r(
    trades: pd.DataFrame, *, basis: str = NET, time_column: str = S.EXIT_TIME
) -> pd.DataFrame:
    """Cumulative R in exit order per decision and for every signal, on one cost basis.

    Parameters
    ----------
    trades : DataFrame
        Completed trades (see :func:`restate` for the columns).
    basis : {'net', 'gross'}
        R net of costs (phantoms charged ``cost_r`` as if executed) or R gross.
    time_column : str

    Returns
    -------
    DataFrame
        ``[time, series, cum_r, basis]`` with ``series`` in ``executed``, ``phantom``,
        ``all signals``; ``cum_r`` in R. A series with any trade whose R is unknown on
        ``basis`` (no ``cost_r``) is left out rather than drawn on a mix of bases, so the
        last point of each series is the matching ``total_r`` (net) or ``total_r_gross`` of
        :func:`executed_vs_phantom`.
    """
    S.require_columns(trades, (time_column, S.WAS_EXECUTED, S.REALIZED_RR), "period trades")
    frame = restate(trades.sort_values(time_column, kind="stable"), basis)
    t = pd.to_datetime(frame[time_column], utc=True)
    r = frame[S.REALIZED_RR].to_numpy(float)
    decision = _decision(frame)
    rows = []
    series = {
        "all signals": np.ones(len(frame), bool),
        EXECUTED: decision == EXECUTED,
        PHANTOM: decision == PHANTOM,
    }
    for name, keep in series.items():
        if keep.any() and np.isfinite(r[keep]).all():
            rows.append(
                pd.DataFrame({"time": t[keep], "series": name, "cum_r": np.cumsum(r[keep])})
            )
    out = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(
            {
                "time": pd.Series(dtype="datetime64[ns, UTC]"),
                "series": pd.Series(dtype=object),
                "cum_r": pd.Series(dtype=float),
            }
        )
    )
    return out.assign(basis=basis)


def calibration_by_bucket(trades: pd.DataFrame, p, *, min_n: int = 30) -> pd.DataFrame:
    """Mean predicted P(win) against the observed win rate per session x volatility bucket.

    ``p`` holds the decision-time probabilities (0-1) of ``trades``' rows. Returns
    ``[session, volatility_regime, n, predicted, observed, gap]`` with ``gap = observed -
    predicted``; buckets with fewer than ``min_n`` trades get NaN rates (too noisy to read).
    """
    S.require_columns(trades, (S.SESSION, S.VOLATILITY_REGIME, S.OUTCOME), "period trades")
    frame = pd.DataFrame(
        {
            S.SESSION: trades[S.SESSION].to_numpy(),
            S.VOLATILITY_REGIME: trades[S.VOLATILITY_REGIME].to_numpy(),
            "p": np.asarray(p, float),
            "won": trades[S.OUTCOME].eq("win").to_numpy(float),
        }
    )
    g = frame.groupby([S.SESSION, S.VOLATILITY_REGIME], sort=True)
    out = g.agg(n=("p", "size"), predicted=("p", "mean"), observed=("won", "mean"))
    out.loc[out["n"] < min_n, ["predicted", "observed"]] = np.nan
    out["gap"] = out["observed"] - out["predicted"]
    return out.reset_index()
