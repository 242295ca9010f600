"""The whole data flow as plain calls — what the CLI, the notebooks and the pipelines run.

Each function is one arrow of DESIGN §2 over many symbols and strategies; notebooks call these
so that the same work is never written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
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

#: The synthetic markets of the analysis notebooks: the planted ``volume_momentum`` edge, or none.
MARKETS: tuple[str, ...] = ("planted", "null")


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


def research_market(
    market: str = "planted",
    *,
    data_dir: str | Path | None = None,
    symbols: Sequence[str] | None = None,
    timeframe: str | None = None,
    n_bars: int = 20_000,
    seed: int = 0,
    edge_drift: float = 0.12,
) -> dict[str, pd.DataFrame]:
    """Candles of the analysis notebooks: the user's files, or a market with one known truth.

    Parameters
    ----------
    market : {'planted', 'null'}
        Synthetic market: ``'planted'`` drifts price for 12 bars in the direction of any bar
        whose volume is at least twice its 20-bar mean (``volume_momentum``); ``'null'`` is a
        martingale, so every "finding" on it is noise. Checked even with ``data_dir``, so a
        typo fails the same way whatever the data.
    data_dir : str or Path, optional
        Folder of user candle files (:func:`load_market`); empty or None = synthetic market.
    symbols, timeframe :
        File keys and bar length to keep; used only with ``data_dir``.
    n_bars, seed :
        Bars of 5 minutes per synthetic symbol (three symbols) and the market's seed.
    edge_drift : float
        Strength of the planted edge, sigma units per bar (the library default is 0.12).

    Returns
    -------
    dict of DataFrame
        Candles by symbol.
    """
    if market not in MARKETS:
        raise ValueError(f"market={market!r} is unknown. Fix: use 'planted' or 'null'.")
    if data_dir:
        return load_market(data_dir, symbols=symbols, timeframe=timeframe)
    edges = (edge("volume_momentum", drift=edge_drift),) if market == "planted" else ()
    # trend drift off: the planted edge (or nothing) is the only directional effect to find
    return make_markets(n_bars=n_bars, seed=seed, edges=edges, trend_drift=0.0)


def describe_market(candles: Mapping[str, pd.DataFrame]) -> str:
    """One line: each symbol's number of bars and first .. last day."""
    return "; ".join(
        f"{name}: {len(c):,} bars, {c.index[0]:%Y-%m-%d} .. {c.index[-1]:%Y-%m-%d}"
        for name, c in candles.items()
    )


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


class ClosedTrades(NamedTuple):
    """Finished trades of one study, row-aligned and in time order (see :func:`closed_rows`)."""

    signals: pd.DataFrame
    outcomes: pd.DataFrame
    features: pd.DataFrame
    y: np.ndarray


def closed_rows(
    study: StudyData, strategy: str | None = None, *, learn_from_timeouts: bool = False
) -> ClosedTrades:
    """The trades a model learns from: finished, labelled *win* (take-profit) or not.

    Parameters
    ----------
    study : StudyData
        :func:`run_signals_and_phantoms` output (signals, outcomes and features row-aligned).
    strategy : str, optional
        Keep only this strategy's signals; None keeps every strategy of the study.
    learn_from_timeouts : bool
        Keep timeouts as not-win trades (rigorous) or drop them (the seed's rule). Censored
        trades, still open at the end of the data, are always dropped: their label is unknown.

    Returns
    -------
    ClosedTrades
        ``(signals, outcomes, features, y)``: signals and outcomes re-indexed from 0, features
        keep their ``signal_id`` index, ``y`` is 1 for a win and 0 otherwise.
    """
    outcomes = study.outcomes
    known = ~outcomes[S.CENSORED].to_numpy(bool) & (
        learn_from_timeouts | (outcomes[S.OUTCOME] != "timeout").to_numpy(bool)
    )
    if strategy is not None:
        available = sorted(study.signals[S.STRATEGY].unique())
        if strategy not in available:
            raise ValueError(
                f"strategy={strategy!r} has no signals in this study; available: {available}. "
                "Fix: pick one of those, or run_signals_and_phantoms with it."
            )
        known &= (study.signals[S.STRATEGY] == strategy).to_numpy(bool)
    signals = study.signals[known].reset_index(drop=True)
    outcomes = outcomes[known].reset_index(drop=True)
    y = (outcomes[S.OUTCOME] == "win").to_numpy(int)
    logger.info("%d closed trades of %d signals", len(y), len(study.signals))
    return ClosedTrades(signals=signals, outcomes=outcomes, features=study.features[known], y=y)
