"""The first steps of the data flow on a market: signals, their features, phantom outcomes.

:func:`run_signals_and_phantoms` is DESIGN §2's steps 1-3 for every symbol and strategy; its
:class:`StudyData` is what every later step reads (the replay, the closed-trade dataset of
:mod:`research.dataset`, the analyses). Symbols are clustered point in time here, since the
cluster label is one of the features.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from research import schema as S
from research.config import SimulatorConfig
from research.features import SymbolClusterer, build_features
from research.phantom import simulate
from research.progress import tqdm
from research.signals import generate_signals

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class StudyData:
    """Everything the first steps produce: candles, signals, features, outcomes.

    Every signal is here, open or closed; the closed trades a model learns from are
    :meth:`research.dataset.ClosedTrades.from_study` of it.
    """

    candles: dict[str, pd.DataFrame]
    signals: pd.DataFrame
    features: pd.DataFrame
    outcomes: pd.DataFrame


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
    default each symbol on the first 20 % of its own history (:func:`cluster_symbols`), so
    files of different periods in one folder work.
    """
    clusters, cutoffs = cluster_symbols(candles, until=cluster_until)
    frames = []
    jobs = [(sym, strat) for sym in candles for strat in strategies]
    for sym, strat in tqdm(jobs, desc="signals", disable=not progress):
        frames.append(generate_signals(candles[sym], strat, symbol=sym))
    signals = pd.concat(frames, ignore_index=True).sort_values(S.SIGNAL_TIME, kind="stable")
    signals = signals.reset_index(drop=True)
    features = cluster_known_from(
        build_features(candles, signals, clusters=clusters), signals, cutoffs
    )
    outcomes = simulate(candles, signals, simulator)
    logger.info("%d signals on %d symbols", len(signals), len(candles))
    return StudyData(candles=dict(candles), signals=signals, features=features, outcomes=outcomes)


# --------------------------------------------------------------------------------------------
# symbol clusters, point in time
# --------------------------------------------------------------------------------------------
#: Share of each symbol's history its cluster profile is computed on (the bars before it).
CLUSTER_SHARE = 0.2
#: Bars a symbol needs before its clustering cut-off; with fewer its cluster is -1 (logged).
MIN_PROFILE_BARS = 50


def cluster_symbols(
    candles: Mapping[str, pd.DataFrame],
    *,
    until=None,
    n_clusters: int = 3,
    min_bars: int = MIN_PROFILE_BARS,
) -> tuple[SymbolClusterer | None, dict[str, pd.Timestamp]]:
    """Cluster the symbols on their early history, point in time.

    Parameters
    ----------
    candles : mapping of symbol -> candles
    until : datetime-like, optional
        One cut-off for every symbol (naive = UTC). By default each symbol's own: the open time
        of the bar at :data:`CLUSTER_SHARE` (20 %) of its history, so files of different
        periods in one folder (ADA 2014, BTC 2024) are each profiled on their own early bars.
    n_clusters : int
    min_bars : int
        Bars a symbol needs before its cut-off; with fewer its cluster is -1 (logged).

    Returns
    -------
    (SymbolClusterer or None, dict)
        The fitted clusterer (None, logged, when no symbol has ``min_bars`` bars: every
        cluster is -1) and each symbol's cut-off. A signal before its symbol's cut-off cannot
        know the label: :func:`run_signals_and_phantoms` gives it -1.
    """
    if until is None:
        cutoffs = {s: c.index[int(len(c) * CLUSTER_SHARE)] for s, c in candles.items() if len(c)}
    else:
        cutoffs = {s: S.utc_timestamp(until) for s in candles}
    enough = [s for s, cut in cutoffs.items() if (candles[s].index < cut).sum() >= min_bars]
    if not enough:
        logger.warning(
            "no symbol has %d bars before its clustering cut-off (%s); every symbol_cluster is -1",
            min_bars,
            cutoffs,
        )
        return None, cutoffs
    clusterer = SymbolClusterer(n_clusters=n_clusters)
    return clusterer.fit(candles, ends=cutoffs, min_bars=min_bars), cutoffs


def cluster_known_from(features: pd.DataFrame, signals: pd.DataFrame, cutoffs) -> pd.DataFrame:
    """``symbol_cluster`` = -1 for signals before their symbol's cut-off (label not yet known).

    ``features`` is row-aligned with ``signals`` (as :func:`build_features` returns it).
    """
    cut = pd.to_datetime(signals[S.SYMBOL].map(cutoffs), utc=True)
    early = (signals[S.SIGNAL_TIME] < cut).to_numpy(bool)
    if early.any():
        features[S.SYMBOL_CLUSTER] = np.where(early, -1, features[S.SYMBOL_CLUSTER]).astype(
            features[S.SYMBOL_CLUSTER].dtype
        )
        logger.info(
            "%d signal(s) before their symbol's clustering cut-off: cluster -1", int(early.sum())
        )
    return features
