"""Shared tail of the strategies: cooldown and entry/SL/TP pricing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import schema as S


def cooldown(candidates: np.ndarray, bars: int) -> np.ndarray:
    """Keep candidate bar positions at least ``bars`` apart, earliest first (one pass, causal)."""
    keep, last = [], -(10**12)
    for i in candidates:
        if i - last >= bars:
            keep.append(i)
            last = i
    return np.asarray(keep, dtype=np.int64)


def assemble(
    candles, long_ok, short_ok, atr_values, config, qscore, extra: dict | None = None
) -> pd.DataFrame:
    """Common tail of every strategy: pick bars, apply cooldown, price entry/SL/TP.

    ``long_ok``/``short_ok`` are boolean arrays per bar; where both hold the bar is skipped
    (a contradictory setup is no setup). SL = entry -/+ ``config.sl_atr`` x ATR, TP = entry
    +/- ``config.tp_r`` x R. Bars without a positive ATR are skipped (no risk unit, no trade),
    and so are the first ``config.warmup_bars`` bars (indicators not yet defined).
    """
    sl_atr, tp_r = config.sl_atr, config.tp_r
    long_ok = np.asarray(long_ok, bool)
    short_ok = np.asarray(short_ok, bool)
    atr_values = np.asarray(atr_values, np.float64)
    valid = np.isfinite(atr_values) & (atr_values > 0)
    valid[: config.warmup_bars] = False
    either = (long_ok ^ short_ok) & valid
    bars = cooldown(np.flatnonzero(either), config.cooldown_bars)
    sign = np.where(long_ok[bars], 1.0, -1.0)
    entry = candles[S.CLOSE].to_numpy()[bars]
    risk = sl_atr * atr_values[bars]
    out = pd.DataFrame(
        {
            "bar": bars,
            S.SIDE: np.where(sign > 0, S.LONG, S.SHORT),
            S.ENTRY: entry,
            S.SL: entry - sign * risk,
            S.TP: entry + sign * tp_r * risk,
            S.QSCORE: np.clip(np.asarray(qscore, np.float64)[bars], 0.0, 100.0),
        }
    )
    # a stop below zero is not a price: skip such (extreme-volatility) setups
    out = out[(out[S.SL] > 0) & (out[S.TP] > 0)]
    for name, values in (extra or {}).items():
        out[name] = np.asarray(values)[out["bar"].to_numpy()]
    return out.reset_index(drop=True)
