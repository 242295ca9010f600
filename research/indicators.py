"""Causal technical indicators shared by the strategies and the feature extractors.

Every function here is *causal*: the value at bar ``i`` uses bars ``<= i`` only (recursive
EWMs, trailing windows, cumulative sums reset at fixed clock times). That is what makes a
signal or feature computed at a bar's close point-in-time. Inputs are candles frames or Series
on their index; outputs are Series on the same index. Lengths are in bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import schema as S


def ema(series: pd.Series, span: int) -> pd.Series:
    """Exponential moving average (``adjust=False``, recursive, so strictly causal)."""
    return series.ewm(span=span, adjust=False, min_periods=span).mean()


def true_range(candles: pd.DataFrame) -> pd.Series:
    """True range in price units: max(high, previous close) - min(low, previous close)."""
    prev = candles[S.CLOSE].shift(1)
    hi = np.fmax(candles[S.HIGH], prev)
    lo = np.fmin(candles[S.LOW], prev)
    return hi - lo


def atr(candles: pd.DataFrame, period: int = 14) -> pd.Series:
    """Wilder's average true range, price units."""
    return true_range(candles).ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()


def rsi(close: pd.Series, period: int = 14) -> pd.Series:
    """Wilder's RSI, 0-100; 50 where there was no movement at all."""
    delta = close.diff()
    up = delta.clip(lower=0).ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()
    down = (-delta).clip(lower=0).ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()
    total = up + down
    return (100.0 * up / total).where(total > 0, 50.0).where(up.notna())


def adx(candles: pd.DataFrame, period: int = 14) -> pd.Series:
    """Wilder's average directional index, 0-100 (trend strength, direction-free)."""
    high, low = candles[S.HIGH], candles[S.LOW]
    up, down = high.diff(), -low.diff()
    plus = up.where((up > down) & (up > 0), 0.0)
    minus = down.where((down > up) & (down > 0), 0.0)
    smooth = {"alpha": 1.0 / period, "adjust": False, "min_periods": period}
    tr = true_range(candles).ewm(**smooth).mean()
    plus_di = 100 * plus.ewm(**smooth).mean() / tr
    minus_di = 100 * minus.ewm(**smooth).mean() / tr
    di_sum = plus_di + minus_di
    dx = (100 * (plus_di - minus_di).abs() / di_sum).where(di_sum > 0, 0.0)
    return dx.ewm(**smooth).mean()


def bollinger(close: pd.Series, period: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Bollinger bands: ``mid``, ``upper``, ``lower`` (price) and ``width`` (fraction of mid)."""
    mid = close.rolling(period, min_periods=period).mean()
    sd = close.rolling(period, min_periods=period).std(ddof=0)
    return pd.DataFrame(
        {"mid": mid, "upper": mid + k * sd, "lower": mid - k * sd, "width": 2 * k * sd / mid}
    )


def rolling_rank(series: pd.Series, window: int) -> pd.Series:
    """Percentile rank (0-1] of each value within its trailing ``window`` (current included)."""
    return series.rolling(window, min_periods=max(2, window // 4)).rank(pct=True)


def body_ratio(candles: pd.DataFrame) -> pd.Series:
    """|close - open| / (high - low), 0-1; 0 for a bar without range."""
    rng = candles[S.HIGH] - candles[S.LOW]
    body = (candles[S.CLOSE] - candles[S.OPEN]).abs()
    return (body / rng).where(rng > 0, 0.0)


def session_vwap(candles: pd.DataFrame) -> pd.Series:
    """Volume-weighted average typical price since 00:00 UTC of the bar's day (price units).

    Where the day has no volume so far (FX quote data, halted markets) it falls back to the
    time-weighted average of the typical price, so the value is always defined.
    """
    typical = (candles[S.HIGH] + candles[S.LOW] + candles[S.CLOSE]) / 3.0
    day = candles.index.floor("D")
    vol = candles[S.VOLUME]
    pv = (typical * vol).groupby(day).cumsum()
    cum_vol = vol.groupby(day).cumsum()
    twap = typical.groupby(day).cumsum() / typical.groupby(day).cumcount().add(1)
    return (pv / cum_vol).where(cum_vol > 0, twap)


def volume_ratio(volume: pd.Series, lookback: int = 20) -> pd.Series:
    """Volume / mean of the previous ``lookback`` bars; 1 where that mean is 0 (no volume data)."""
    mean = volume.shift(1).rolling(lookback, min_periods=lookback).mean()
    return (volume / mean).where(mean > 0, 1.0).where(mean.notna())


def slope(series: pd.Series, bars: int, scale: pd.Series) -> pd.Series:
    """Change of ``series`` over ``bars`` bars per bar, in units of ``scale`` (e.g. ATR)."""
    return (series - series.shift(bars)) / bars / scale
