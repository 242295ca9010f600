"""A period's activity from the audit trail: what was executed, what was tracked as a phantom.

Computed on completed trades (:meth:`research.stores.audit.AuditTrail.completed_trades`): R is
``realized_rr`` in multiples of the initial risk — net of execution costs for executed trades,
hypothetical (gross) for phantoms, as the seed records them. A win is ``outcome == 'win'``;
timeouts count as not-win.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import schema as S
from research.analysis.stats import wilson_interval

#: The two sides of the filter's decision, as labelled in the tables and figures.
EXECUTED, PHANTOM = "executed", "phantom"


def _decision(trades: pd.DataFrame) -> np.ndarray:
    return np.where(trades[S.WAS_EXECUTED].to_numpy(bool), EXECUTED, PHANTOM)


def executed_vs_phantom(trades: pd.DataFrame, by: str = S.STRATEGY) -> pd.DataFrame:
    """Per ``by`` value (and ``all``) and decision: trades, win rate with its 95 % Wilson
    interval, mean and total R.

    Returns a tidy frame ``[by, decision, trades, wins, win_rate, wr_low, wr_high, mean_r,
    total_r]``; a decision with no trades is left out.
    """
    S.require_columns(trades, (by, S.WAS_EXECUTED, S.OUTCOME, S.REALIZED_RR), "period trades")
    frame = trades.assign(decision=_decision(trades), _win=trades[S.OUTCOME].eq("win"))
    parts = [frame, frame.assign(**{by: "all"})]
    g = pd.concat(parts).groupby([by, "decision"], sort=False)
    out = g.agg(trades=("_win", "size"), wins=("_win", "sum"),
                mean_r=(S.REALIZED_RR, "mean"), total_r=(S.REALIZED_RR, "sum"))  # fmt: skip
    out = out.reset_index()
    out["win_rate"] = out["wins"] / out["trades"]
    out["wr_low"], out["wr_high"] = wilson_interval(out["wins"], out["trades"])
    cols = [by, "decision", "trades", "wins", "win_rate", "wr_low", "wr_high", "mean_r",
            "total_r"]  # fmt: skip
    return out[cols]


def activity_by_period(trades: pd.DataFrame, freq: str = "W", *,
                       time_column: str = S.EXIT_TIME) -> pd.DataFrame:  # fmt: skip
    """Trades and total R per calendar period, strategy and decision: a tidy frame
    ``[period, strategy, decision, trades, total_r]``; ``freq`` is a pandas period alias
    ('D', 'W', 'M'; 'MS' is an offset, not a period, and is refused by pandas)."""
    S.require_columns(trades, (time_column, S.STRATEGY, S.WAS_EXECUTED, S.REALIZED_RR),
                      "period trades")  # fmt: skip
    t = pd.to_datetime(trades[time_column], utc=True)
    period = t.dt.tz_localize(None).dt.to_period(freq).dt.start_time
    frame = trades.assign(period=period.to_numpy(), decision=_decision(trades))
    g = frame.groupby(["period", S.STRATEGY, "decision"], sort=True)
    out = g.agg(trades=(S.REALIZED_RR, "size"), total_r=(S.REALIZED_RR, "sum"))
    return out.reset_index()


def cumulative_r(trades: pd.DataFrame, *, time_column: str = S.EXIT_TIME) -> pd.DataFrame:
    """Cumulative R in exit order per decision and for every signal: ``[time, series, cum_r]``.

    ``all signals`` adds phantoms' gross R to executed trades' net R, so it is the seed's
    view of "what taking everything would have looked like", not a costed baseline (a replay
    frame has ``rr_if_executed`` for that).
    """
    S.require_columns(trades, (time_column, S.WAS_EXECUTED, S.REALIZED_RR), "period trades")
    frame = trades.sort_values(time_column, kind="stable")
    t = pd.to_datetime(frame[time_column], utc=True)
    r = frame[S.REALIZED_RR].to_numpy(float)
    rows = [pd.DataFrame({"time": t, "series": "all signals", "cum_r": np.cumsum(r)})]
    for name in (EXECUTED, PHANTOM):
        keep = _decision(frame) == name
        rows.append(pd.DataFrame({"time": t[keep], "series": name,
                                  "cum_r": np.cumsum(r[keep])}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def calibration_by_bucket(trades: pd.DataFrame, p, *, min_n: int = 30) -> pd.DataFrame:
    """Mean predicted P(win) against the observed win rate per session x volatility bucket.

    ``p`` holds the decision-time probabilities (0-1) of ``trades``' rows. Returns
    ``[session, volatility_regime, n, predicted, observed, gap]`` with ``gap = observed -
    predicted``; buckets with fewer than ``min_n`` trades get NaN rates (too noisy to read).
    """
    S.require_columns(trades, (S.SESSION, S.VOLATILITY_REGIME, S.OUTCOME), "period trades")
    frame = pd.DataFrame({S.SESSION: trades[S.SESSION].to_numpy(),
                          S.VOLATILITY_REGIME: trades[S.VOLATILITY_REGIME].to_numpy(),
                          "p": np.asarray(p, float),
                          "won": trades[S.OUTCOME].eq("win").to_numpy(float)})  # fmt: skip
    g = frame.groupby([S.SESSION, S.VOLATILITY_REGIME], sort=True)
    out = g.agg(n=("p", "size"), predicted=("p", "mean"), observed=("won", "mean"))
    out.loc[out["n"] < min_n, ["predicted", "observed"]] = np.nan
    out["gap"] = out["observed"] - out["predicted"]
    return out.reset_index()
