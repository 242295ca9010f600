"""Batch simulation: every signal of a frame against its symbol's bars, in one compiled pass."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from research import schema as S
from research.candles import timeframe_of
from research.config import SimulatorConfig
from research.phantom.rules import as_ns, finalize, simulate_batch, timeouts_ns

logger = logging.getLogger(__name__)


def _candles_for(candles, symbols: list[str]) -> dict[str, pd.DataFrame]:
    if isinstance(candles, pd.DataFrame):
        if len(symbols) > 1:
            raise S.SchemaError(
                f"one candle frame was given for signals of {len(symbols)} symbols {symbols}. "
                "Fix: pass a dict {symbol: candles} (e.g. research.load_folder) or filter the "
                "signals to one symbol."
            )
        return {symbols[0]: candles} if symbols else {}
    missing = [s for s in symbols if s not in candles]
    if missing:
        raise S.SchemaError(
            f"no candles for symbol(s) {missing}; candles were given for {sorted(candles)}. "
            "Fix: load those symbols too, or drop their signals."
        )
    return {s: candles[s] for s in symbols}


def simulate(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    signals: pd.DataFrame,
    config: SimulatorConfig | None = None,
) -> pd.DataFrame:
    """Simulate every signal on the bars after it and return the outcomes frame.

    Parameters
    ----------
    candles : DataFrame or mapping of symbol -> DataFrame
        Validated candles (DESIGN §3). One frame is enough when all signals share a symbol.
    signals : DataFrame
        Any signals frame with the columns of :data:`research.schema.SIGNAL_COLUMNS`
        (optionally ``timeout_hours``, ``ml_score``, ``was_executed``).
    config : SimulatorConfig, optional
        TP1 level, timeouts per strategy, timeout exit price, costs.

    Returns
    -------
    DataFrame
        One row per signal, in the input order, with :data:`research.schema.OUTCOME_COLUMNS`.
        ``censored`` rows (data ended first) have missing exit fields.
    """
    config = config or SimulatorConfig()
    S.validate_signals(signals)
    signals = signals.reset_index(drop=True)
    symbols = list(pd.unique(signals[S.SYMBOL]))
    frames = []
    for symbol, bars in _candles_for(candles, symbols).items():
        S.validate_candles(bars)
        sig = signals.loc[(signals[S.SYMBOL] == symbol).to_numpy()]
        arrays = run_kernel(bars, sig, config)
        frames.append(finalize(sig, *arrays[:-1], config=config).set_index(sig.index))
    if not frames:
        return pd.DataFrame(columns=list(S.OUTCOME_COLUMNS))
    out = pd.concat(frames).sort_index()
    logger.info("simulated %d signals (%d censored)", len(out), int(out[S.CENSORED].sum()))
    return out


def run_kernel(bars: pd.DataFrame, sig: pd.DataFrame, config: SimulatorConfig) -> tuple:
    """Run the compiled kernel for the signals of one symbol.

    Returns the kernel's arrays; the last item is the number of (signal, bar) checks done,
    the benchmark's unit of work.
    """
    return simulate_batch(*kernel_inputs(bars, sig, config))


def kernel_inputs(bars: pd.DataFrame, sig: pd.DataFrame, config: SimulatorConfig) -> tuple:
    """The plain arrays the compiled kernel takes (prices, ns times, start bars, levels)."""
    t_open = as_ns(bars.index)
    t_close = t_open + pd.Timedelta(timeframe_of(bars)).value
    signal_ns = as_ns(sig[S.SIGNAL_TIME])
    early = signal_ns < t_open[0]
    if early.any():
        raise S.SchemaError(
            f"{int(early.sum())} signal(s) of {sig[S.SYMBOL].iloc[0]} are before the first "
            f"candle ({bars.index[0]}), e.g. signal_id {sig.loc[early, S.SIGNAL_ID].iloc[0]}. "
            "Fix: load candles that cover the signals' period."
        )
    return (
        *(bars[k].to_numpy(np.float64) for k in (S.OPEN, S.HIGH, S.LOW, S.CLOSE)),
        t_close,
        np.searchsorted(t_open, signal_ns, side="left"),
        np.where(sig[S.SIDE].to_numpy() == S.LONG, 1.0, -1.0),
        *(sig[k].to_numpy(np.float64) for k in (S.ENTRY, S.SL, S.TP)),
        float(config.tp1_r),
        signal_ns + timeouts_ns(sig, config),
        config.timeout_exit == "entry",
    )
