"""Summary of simulated outcomes: counts, win rate and R per group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import schema as S


def outcome_summary(signals: pd.DataFrame, outcomes: pd.DataFrame, by=S.STRATEGY) -> pd.DataFrame:
    """One row per group (default: strategy) of signals and their outcomes.

    Columns: ``signals``, ``closed`` (not censored), ``win_rate`` (wins / closed, timeouts
    count as not won), ``mean_r`` and ``total_r`` (realized R over closed trades), one count
    column per exit reason, ``censored`` and ``ambiguous`` (SL and TP inside one bar).
    """
    df = signals[[S.SIGNAL_ID, *([by] if isinstance(by, str) else by)]].merge(
        outcomes, on=S.SIGNAL_ID, validate="one_to_one"
    )
    closed = ~df[S.CENSORED].to_numpy()
    df = df.assign(
        _closed=closed,
        _win=(df[S.OUTCOME] == "win").to_numpy() & closed,
        _r=np.where(closed, df[S.REALIZED_RR], np.nan),
        **{f"_{r}": (df[S.EXIT_REASON] == r).to_numpy() for r in S.EXIT_REASONS},
    )
    g = df.groupby(by, observed=True, sort=True)
    out = pd.DataFrame(
        {
            "signals": g.size(),
            "closed": g["_closed"].sum(),
            "win_rate": g["_win"].sum() / g["_closed"].sum().replace(0, np.nan),
            "mean_r": g["_r"].mean(),
            "total_r": g["_r"].sum(),
            **{reason: g[f"_{reason}"].sum() for reason in S.EXIT_REASONS},
            "censored": g[S.CENSORED].sum(),
            "ambiguous": g[S.AMBIGUOUS_BAR].sum(),
        }
    )
    return out
