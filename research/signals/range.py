"""Range: fade the edges of a flat channel.

Rules (long; short mirrored at the top), evaluated at the close of the signal bar:

1. Channel: the high/low of the previous ``lookback`` bars (signal bar excluded) spans at most
   ``max_width_atr`` ATR, and the slow EMA moves less than ``max_slope_atr`` ATR per bar.
2. Rejection: the signal bar's low reached the bottom ``edge_frac`` of the channel and the bar
   closed bullish back above that zone, still inside the channel.

Entry at the close, SL ``sl_atr`` ATR below, TP ``tp_r`` R above, then a cooldown.
``qscore`` (0-100) averages: flatness (1 - slope / max slope), the rejection wick as a share of
the bar, how deep into the edge zone the bar reached, and the body ratio.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import indicators as ind
from research import schema as S
from research.config import RangeConfig
from research.signals.common import assemble


def detect(candles: pd.DataFrame, config: RangeConfig) -> pd.DataFrame:
    """Signals of the range strategy (positions in ``bar``); see the module doc."""
    o, h, lo, c = (candles[k] for k in (S.OPEN, S.HIGH, S.LOW, S.CLOSE))
    atr = ind.atr(candles, config.atr_period)
    n = config.lookback
    top = h.shift(1).rolling(n, min_periods=n).max()
    bottom = lo.shift(1).rolling(n, min_periods=n).min()
    width = top - bottom
    trend = ind.slope(ind.ema(c, config.ema_period), 10, atr).abs()
    flat = (width <= config.max_width_atr * atr) & (trend <= config.max_slope_atr)
    low_zone = bottom + config.edge_frac * width
    high_zone = top - config.edge_frac * width
    long_ok = flat & (lo <= low_zone) & (c > low_zone) & (c > o) & (c < top)
    short_ok = flat & (h >= high_zone) & (c < high_zone) & (c < o) & (c > bottom)
    bar_range = (h - lo).where(h > lo)
    # the rejection wick: below the body for a long, above it for a short
    wick = (np.minimum(o, c) - lo).where(long_ok, h - np.maximum(o, c)) / bar_range
    depth = ((low_zone - lo).where(long_ok, h - high_zone) / (config.edge_frac * width)).clip(0, 1)
    flatness = (1.0 - trend / config.max_slope_atr).clip(0, 1)
    qscore = (
        100.0
        * (flatness + wick.clip(0, 1).fillna(0) + depth.fillna(0) + ind.body_ratio(candles))
        / 4.0
    )
    return assemble(
        candles,
        long_ok.fillna(False),
        short_ok.fillna(False),
        atr,
        config,
        qscore.fillna(0.0),
    )
