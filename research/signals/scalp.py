"""Scalp: micro-breakout in the direction of the fast EMA, with the seed's gate variables.

Trigger (long; short mirrored), at the close of the signal bar: the bar is bullish, closes above
the highest high of the previous ``breakout_bars`` bars and above ``EMA(ema_fast)``.
Entry at the close, SL ``sl_atr`` ATR below, TP ``tp_r`` R above, then a cooldown.

Gates are **recorded, not applied**: every scalp signal carries the 28 binary variables of the
seed's "Scalp Gate Analysis", each computed at signal time and oriented to the signal's side,
so that gate analysis can judge each one on phantom outcomes:

=================  ====  ==========================================================
group              n     columns (True = the gate passes)
=================  ====  ==========================================================
original gates     4     ``gate_htf`` close on the side of the higher-timeframe EMA;
                         ``gate_vol`` volume >= 1.2 x mean of the previous 20 bars;
                         ``gate_body`` body ratio >= 0.35; ``gate_vwap`` close on
                         the side of the session VWAP
body ratio         5     ``body_040`` ... ``body_060``: body / range >= 0.40 ... 0.60
VWAP distance      4     ``vwap_015`` ... ``vwap_060``: |close - VWAP| <= 0.15 ... 0.60 ATR
volume             3     ``vol_120``, ``vol_150``, ``vol_200``: volume ratio >= 1.2/1.5/2.0
BB width pctile    3     ``bbw_p25``, ``bbw_p50``, ``bbw_p75``: Bollinger width rank >= p
qscore             4     ``q_50`` ... ``q_80``: the signal's qscore >= 50/60/70/80
impulse            2     ``impulse_10``, ``impulse_15``: bar range >= 1.0 / 1.5 ATR
micro alignment    1     ``micro_seq``: the last 3 closes move in the side's direction
HTF variations     2     ``htf_strict``: HTF EMA stack (EMA(n) vs EMA(2n)) agrees;
                         ``htf_slope``: the HTF EMA slopes the side's way
=================  ====  ==========================================================

The higher timeframe is emulated causally on the base bars: an EMA of span
``htf_ema x htf_factor`` base bars (e.g. EMA20 of 1h bars ~ EMA240 of 5m bars).
``qscore`` (0-100) averages body ratio, volume ratio/2 (capped at 1), HTF agreement, closeness
to VWAP (1 - distance/1 ATR) and impulse (range/2 ATR, capped at 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research import indicators as ind
from research import schema as S
from research.config import ScalpConfig
from research.signals.common import assemble

BODY_LEVELS = (0.40, 0.45, 0.50, 0.55, 0.60)
VWAP_LEVELS = (0.15, 0.30, 0.45, 0.60)
VOLUME_LEVELS = (1.2, 1.5, 2.0)
BBW_LEVELS = (0.25, 0.50, 0.75)
QSCORE_LEVELS = (50, 60, 70, 80)
IMPULSE_LEVELS = (1.0, 1.5)

ORIGINAL_GATES = ("gate_htf", "gate_vol", "gate_body", "gate_vwap")
GATE_COLUMNS: tuple[str, ...] = (
    *ORIGINAL_GATES,
    *(f"body_{round(x * 100):03d}" for x in BODY_LEVELS),
    *(f"vwap_{round(x * 100):03d}" for x in VWAP_LEVELS),
    *(f"vol_{round(x * 100):03d}" for x in VOLUME_LEVELS),
    *(f"bbw_p{round(x * 100):02d}" for x in BBW_LEVELS),
    *(f"q_{x}" for x in QSCORE_LEVELS),
    *(f"impulse_{round(x * 10):02d}" for x in IMPULSE_LEVELS),
    "micro_seq",
    "htf_strict",
    "htf_slope",
)


def detect(candles: pd.DataFrame, config: ScalpConfig) -> pd.DataFrame:
    """Signals of the scalp strategy with their gate columns; see the module doc."""
    o, h, lo, c = (candles[k] for k in (S.OPEN, S.HIGH, S.LOW, S.CLOSE))
    atr = ind.atr(candles, config.atr_period)
    fast = ind.ema(c, config.ema_fast)
    n = config.breakout_bars
    prior_high = h.shift(1).rolling(n, min_periods=n).max()
    prior_low = lo.shift(1).rolling(n, min_periods=n).min()
    long_ok = (c > o) & (c > prior_high) & (c > fast)
    short_ok = (c < o) & (c < prior_low) & (c < fast)
    # +1 for a long setup, -1 for a short one: every gate below is oriented by it
    side = pd.Series(np.where(long_ok, 1.0, -1.0), index=candles.index)

    htf_span = config.htf_ema * config.htf_factor
    htf = ind.ema(c, htf_span)
    htf_slow = ind.ema(c, 2 * htf_span)
    vwap = ind.session_vwap(candles)
    vol_ratio = ind.volume_ratio(candles[S.VOLUME], config.volume_lookback)
    body = ind.body_ratio(candles)
    vwap_dist = (c - vwap).abs() / atr
    bbw_rank = ind.rolling_rank(
        ind.bollinger(c, config.bb_period)["width"], config.bb_rank_lookback
    )
    impulse = (h - lo) / atr
    htf_agrees = side * (c - htf) > 0

    qscore = (
        100.0
        * (
            body
            + (vol_ratio.fillna(1.0) / 2.0).clip(upper=1.0)
            + htf_agrees.astype(float)
            + (1.0 - vwap_dist).clip(0.0, 1.0).fillna(0.0)
            + (impulse / 2.0).clip(upper=1.0).fillna(0.0)
        )
        / 5.0
    )

    gates: dict[str, pd.Series] = {
        "gate_htf": htf_agrees,
        "gate_vol": vol_ratio >= 1.2,
        "gate_body": body >= 0.35,
        "gate_vwap": side * (c - vwap) > 0,
    }
    for x in BODY_LEVELS:
        gates[f"body_{round(x * 100):03d}"] = body >= x
    for x in VWAP_LEVELS:
        gates[f"vwap_{round(x * 100):03d}"] = vwap_dist <= x
    for x in VOLUME_LEVELS:
        gates[f"vol_{round(x * 100):03d}"] = vol_ratio >= x
    for x in BBW_LEVELS:
        gates[f"bbw_p{round(x * 100):02d}"] = bbw_rank >= x
    for x in QSCORE_LEVELS:
        gates[f"q_{x}"] = qscore >= x
    for x in IMPULSE_LEVELS:
        gates[f"impulse_{round(x * 10):02d}"] = impulse >= x
    step = side * c.diff()
    gates["micro_seq"] = (step > 0) & (step.shift(1) * side > 0) & (step.shift(2) * side > 0)
    gates["htf_strict"] = side * (htf - htf_slow) > 0
    gates["htf_slope"] = side * htf.diff(config.htf_factor) > 0
    assert tuple(gates) == GATE_COLUMNS  # one list of names, kept in the order documented
    # NaN comparisons are False: during warm-up a gate simply does not pass.
    extra = {name: g.fillna(False).to_numpy(bool) for name, g in gates.items()}
    return assemble(
        candles,
        long_ok.fillna(False),
        short_ok.fillna(False),
        atr,
        config,
        qscore.fillna(0.0),
        extra,
    )
