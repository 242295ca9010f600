"""The whole data flow as plain calls — what the CLI, the notebooks and the pipelines run.

Each function is one arrow of DESIGN §2 over many symbols and strategies; notebooks call these
so that the same work is never written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from research import schema as S
from research.candles import load_folder
from research.config import SimulatorConfig
from research.features import SymbolClusterer, build_features
from research.phantom import simulate
from research.signals import generate_signals
from research.synthetic import edge, make_markets

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class StudyData:
    """Everything the first steps produce: candles, signals, features, outcomes."""

    candles: dict[str, pd.DataFrame]
    signals: pd.DataFrame
    features: pd.DataFrame
    outcomes: pd.DataFrame


def load_market(
    data_dir: str | Path | None = None,
    *,
    symbols: Sequence[str] | None = None,
    timeframe: str | None = None,
    n_bars: int = 20_000,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Candles by symbol: a folder of user files, or the built-in synthetic market.

    The synthetic market (three symbols with a planted ``body_momentum`` edge) needs no data.
    With ``data_dir`` the keys are file stems (e.g. ``BTC_USDT_5m``); ``symbols`` filters them.
    """
    if data_dir is None:
        markets = make_markets(n_bars=n_bars, seed=seed, edges=(edge("body_momentum"),))
    else:
        markets = load_folder(data_dir, timeframe=timeframe)
    if symbols:
        missing = [s for s in symbols if s not in markets]
        if missing:
            raise ValueError(
                f"symbol(s) {missing} not found; available: {sorted(markets)}. "
                "Fix: pick from the available keys (file stems for a data folder)."
            )
        markets = {s: markets[s] for s in symbols}
    return markets


def run_signals_and_phantoms(
    candles: Mapping[str, pd.DataFrame],
    strategies: Sequence[str] = S.STRATEGIES,
    *,
    simulator: SimulatorConfig | None = None,
    cluster_until=None,
    progress: bool = True,
) -> StudyData:
    """Signals of every strategy on every symbol, their features and phantom outcomes.

    ``cluster_until``: symbols are clustered on bars before this time (point in time); by
    default on the first 20 % of the shortest history.
    """
    if cluster_until is None:
        starts = [c.index[len(c) // 5] for c in candles.values()]
        cluster_until = min(starts)
    clusters = SymbolClusterer(n_clusters=3).fit(candles, end=cluster_until)
    frames = []
    jobs = [(sym, strat) for sym in candles for strat in strategies]
    for sym, strat in tqdm(jobs, desc="signals", disable=not progress):
        frames.append(generate_signals(candles[sym], strat, symbol=sym))
    signals = pd.concat(frames, ignore_index=True).sort_values(S.SIGNAL_TIME, kind="stable")
    signals = signals.reset_index(drop=True)
    features = build_features(candles, signals, clusters=clusters)
    outcomes = simulate(candles, signals, simulator)
    logger.info("%d signals on %d symbols", len(signals), len(candles))
    return StudyData(candles=dict(candles), signals=signals, features=features, outcomes=outcomes)
