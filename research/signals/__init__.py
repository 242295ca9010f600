"""Signals: one module per strategy of the seed, one entry point, one frame contract.

``generate_signals(candles, strategy, symbol)`` returns the signals frame of DESIGN §3:
``signal_id`` (deterministic uuid5 of symbol, strategy, side and time, so a rerun gives the same
ids), ``symbol``, ``strategy``, ``side``, ``signal_time`` (the *close* time of the bar that
produced the signal: nothing after it was used), ``entry`` (that bar's close), ``sl`` (from
ATR), ``tp`` (an R multiple), ``qscore`` (the strategy's rule-based quality, 0-100), and for
scalp the seed's gate variables (:data:`research.signals.scalp.GATE_COLUMNS`).
"""

from __future__ import annotations

import uuid

import pandas as pd

from research import schema as S
from research.candles import timeframe_of
from research.config import RangeConfig, ScalpConfig, TrendConfig
from research.signals import range as range_strategy
from research.signals import scalp, trend

_STRATEGIES = {
    "trend": (trend.detect, TrendConfig),
    "range": (range_strategy.detect, RangeConfig),
    "scalp": (scalp.detect, ScalpConfig),
}
_NAMESPACE = uuid.UUID("6f0d3c1e-55a4-4bde-9a43-2f7a0f3c9b11")
GATE_COLUMNS = scalp.GATE_COLUMNS


def new_signal_ids(symbol: str, strategy: str, sides, times) -> list[str]:
    """Deterministic uuid5 ids: the same signal on the same data always gets the same id."""
    return [
        str(uuid.uuid5(_NAMESPACE, f"{symbol}|{strategy}|{side}|{pd.Timestamp(t).isoformat()}"))
        for side, t in zip(sides, times, strict=True)
    ]


def generate_signals(
    candles: pd.DataFrame,
    strategy: str,
    symbol: str | None = None,
    config: TrendConfig | RangeConfig | ScalpConfig | None = None,
) -> pd.DataFrame:
    """Run one strategy over validated candles and return its signals frame.

    Parameters
    ----------
    candles : DataFrame
        Candles of one symbol (DESIGN §3).
    strategy : {'trend', 'range', 'scalp'}
    symbol : str, optional
        Defaults to ``candles.attrs['symbol']``.
    config : frozen config of that strategy, optional

    Returns
    -------
    DataFrame
        The signals frame, sorted by ``signal_time``; empty (with the columns) if none.
    """
    if strategy not in _STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}. Fix: use one of {sorted(_STRATEGIES)}.")
    detect, config_type = _STRATEGIES[strategy]
    config = config or config_type()
    if not isinstance(config, config_type):
        raise TypeError(
            f"strategy {strategy!r} takes a {config_type.__name__}, got {type(config).__name__}"
        )
    symbol = symbol or candles.attrs.get("symbol")
    if not symbol:
        raise ValueError(
            "no symbol: pass symbol=... or load the candles with research.load_candles, "
            "which sets candles.attrs['symbol']."
        )
    S.validate_candles(candles)
    found = detect(candles, config)  # positions, side, entry, sl, tp, qscore, extra columns
    times = candles.index[found.pop("bar").to_numpy()] + timeframe_of(candles)
    out = pd.DataFrame(
        {
            S.SIGNAL_ID: new_signal_ids(symbol, strategy, found[S.SIDE], times),
            S.SYMBOL: symbol,
            S.STRATEGY: strategy,
            S.SIDE: found[S.SIDE].to_numpy(),
            S.SIGNAL_TIME: times,
        }
    )
    for col in found.columns.drop(S.SIDE):
        out[col] = found[col].to_numpy()
    return S.validate_signals(out)
