"""Trend pullback: trade in the direction of an ordered EMA stack after a pullback to the fast EMA.

Rules (long; short mirrored), all evaluated at the close of the signal bar:

1. Trend: ``EMA(fast) > EMA(mid) > EMA(slow)``.
2. Pullback: within the last ``pullback_bars`` bars some low came within ``touch_atr`` ATR of
   the fast EMA (or below it).
3. Resumption: the signal bar is bullish and closes above the fast EMA and above the previous
   bar's high.

Entry at the close, SL ``sl_atr`` ATR below, TP ``tp_r`` R above, then a cooldown.
``qscore`` (0-100) averages: EMA spread (fast-slow in ATR, capped at 3), slope of the mid EMA
(ATR per bar x 10, capped at 1), the signal bar's body ratio and its volume ratio (capped at 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import indicators as ind
from research import schema as S
from research.config import TrendConfig
from research.signals.common import assemble


def detect(candles: pd.DataFrame, config: TrendConfig) -> pd.DataFrame:
    """Signals of the trend pullback strategy (positions in ``bar``); see the module doc."""
    close, high, low = candles[S.CLOSE], candles[S.HIGH], candles[S.LOW]
    fast = ind.ema(close, config.ema_fast)
    mid = ind.ema(close, config.ema_mid)
    slow = ind.ema(close, config.ema_slow)
    atr = ind.atr(candles, config.atr_period)
    near = config.touch_atr * atr
    n = config.pullback_bars
    touched_long = (low - fast).rolling(n, min_periods=n).min() <= near
    touched_short = (high - fast).rolling(n, min_periods=n).max() >= -near
    bullish = close > candles[S.OPEN]
    bearish = close < candles[S.OPEN]
    long_ok = (fast > mid) & (mid > slow) & touched_long & bullish & (close > fast)
    long_ok &= close > high.shift(1)
    short_ok = (fast < mid) & (mid < slow) & touched_short & bearish & (close < fast)
    short_ok &= close < low.shift(1)
    direction = np.sign(fast - slow)
    spread = ((fast - slow).abs() / atr).clip(upper=3.0) / 3.0
    trend_slope = (direction * ind.slope(mid, 10, atr) * 10).clip(0.0, 1.0)
    vol = (ind.volume_ratio(candles[S.VOLUME]).fillna(1.0) / 2.0).clip(upper=1.0)
    qscore = 100.0 * (spread + trend_slope + ind.body_ratio(candles) + vol) / 4.0
    return assemble(
        candles,
        long_ok.fillna(False),
        short_ok.fillna(False),
        atr,
        config,
        qscore.fillna(0.0),
    )
