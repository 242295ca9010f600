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

from research import schema as S
from research.candles import load_folder, parse_timeframe, timeframe_of
from research.config import SimulatorConfig
from research.features import SymbolClusterer, build_features
from research.phantom import simulate
from research.progress import tqdm
from research.signals import generate_signals
from research.signals.external import match_symbols
from research.signals.extras import extra_columns

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

    The synthetic market needs no data: :func:`research.known_answer.known_answer_market`,
    three hourly symbols whose only edge is a planted, signal-varying ``volume_momentum`` one.
    With ``data_dir`` the keys are file stems (e.g. ``BTC_USDT_5m``); ``symbols`` filters them.
    """
    if data_dir is None:
        from research.known_answer import known_answer_market

        markets = known_answer_market("planted", n_bars=n_bars, seed=seed)
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
    _one_bar_length(markets)
    return markets


def _one_bar_length(markets: Mapping[str, pd.DataFrame]) -> None:
    """Refuse to pool bars of different lengths: a feature (an RSI, a volume spike, a timeout
    in bars) means something else on 5-minute and on hourly bars, and the analyses pool every
    symbol's signals."""
    lengths: dict[str, list[str]] = {}
    for key, frame in markets.items():
        tf = frame.attrs.get("timeframe")
        lengths.setdefault(
            S.timeframe_label(parse_timeframe(tf)) if tf is not None else "unknown", []
        ).append(key)
    if len(lengths) > 1:
        held = "; ".join(f"{tf}: {', '.join(keys)}" for tf, keys in sorted(lengths.items()))
        raise ValueError(
            f"the files hold bars of {len(lengths)} lengths ({held}); pooling them would mix "
            "what every feature means. Fix: pass timeframe= (e.g. timeframe='5m', --timeframe "
            "on the command line) or symbols= of one bar length."
        )


def research_market(
    market: str = "planted",
    *,
    data_dir: str | Path | None = None,
    symbols: Sequence[str] | None = None,
    timeframe: str | None = None,
    n_bars: int = 20_000,
    seed: int = 0,
    edge_drift: float = 0.15,
) -> dict[str, pd.DataFrame]:
    """Candles of the analysis notebooks: the user's files, or a market with one known truth.

    Parameters
    ----------
    market : {'planted', 'null'}
        Synthetic market (:func:`research.known_answer.known_answer_market`, hourly bars):
        ``'planted'`` drifts price for 12 bars in the direction of any bar whose volume is at
        least twice its 20-bar mean (``volume_momentum``); ``'null'`` is a martingale, so every
        "finding" on it is noise. Checked even with ``data_dir``, so a
        typo fails the same way whatever the data.
    data_dir : str or Path, optional
        Folder of user candle files (:func:`load_market`); empty or None = synthetic market.
    symbols, timeframe :
        File keys and bar length to keep; used only with ``data_dir``.
    n_bars, seed :
        Hourly bars per synthetic symbol (three symbols) and the market's seed.
    edge_drift : float
        Strength of the planted edge, sigma units per bar (the known-answer default, 0.15).

    Returns
    -------
    dict of DataFrame
        Candles by symbol.
    """
    if market not in MARKETS:
        raise ValueError(f"market={market!r} is unknown. Fix: use 'planted' or 'null'.")
    if data_dir:
        return load_market(data_dir, symbols=symbols, timeframe=timeframe)
    from research.known_answer import known_answer_market

    # trend drift off: the planted edge (or nothing) is the only directional effect to find
    return known_answer_market(market, n_bars=n_bars, seed=seed, drift=edge_drift)


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
    features = _cluster_known_from(
        build_features(candles, signals, clusters=clusters), signals, cutoffs
    )
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


# --------------------------------------------------------------------------------------------
# symbol clusters, point in time; a user's own signals
# --------------------------------------------------------------------------------------------
#: Share of each symbol's history its cluster profile is computed on (the bars before it).
CLUSTER_SHARE = 0.2
#: Bars a symbol needs before its clustering cut-off; with fewer its cluster is -1 (logged).
MIN_PROFILE_BARS = 50
#: Timeout of a user's signals without their own ``timeout_hours``, hours.
DEFAULT_TIMEOUT_HOURS = 24.0


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


def _cluster_known_from(features: pd.DataFrame, signals: pd.DataFrame, cutoffs) -> pd.DataFrame:
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


def study_from_signals(
    candles: Mapping[str, pd.DataFrame],
    signals: pd.DataFrame,
    *,
    simulator: SimulatorConfig | None = None,
    timeout_hours: float = DEFAULT_TIMEOUT_HOURS,
    progress: bool = True,
) -> StudyData:
    """A study of a user's own signals: features, the file's extra columns, phantom outcomes.

    Parameters
    ----------
    candles : mapping of symbol -> candles
        E.g. :func:`load_market` of a data folder (keys are file stems).
    signals : DataFrame
        :func:`research.signals.external.load_signals` output (any strategy names; ``x_*``
        columns are the bot's own features).
    simulator : SimulatorConfig, optional
        Bar rules of the phantoms (TP1, timeout exit, costs).
    timeout_hours : float
        Timeout, hours > 0, of signals without a ``timeout_hours`` of their own (whatever
        their strategy's name). Written into the frame's ``timeout_hours`` column, which the
        replay's executed trades use too.
    progress : bool
        Progress bar over the three steps.

    Returns
    -------
    StudyData
        Signals sorted by time; features = the registered signal-time features plus the
        ``x_*`` columns, indexed by ``signal_id``; outcomes row-aligned with the signals.

    Notes
    -----
    Each signal's symbol is matched to a candle key
    (:func:`research.signals.external.match_symbols`: exact, else the one stem starting with
    it); an unknown or ambiguous symbol is an error listing the file stems. Signals outside
    their candles' period (``signal_time`` before the first bar's close or after the last
    one's) are **dropped**, with a logged warning and their count (a bot's log often outlasts
    the candle files); none left is an error. Symbols are clustered as in
    :func:`run_signals_and_phantoms`, on their own first 20 %.
    """
    if not timeout_hours > 0:
        raise ValueError(f"timeout_hours must be > 0, got {timeout_hours}. Fix: e.g. 24.")
    S.require_columns(signals, S.SIGNAL_COLUMNS, "signals")
    signals = _inside_candles(match_symbols(signals, candles), candles)
    own = signals.get(S.TIMEOUT_HOURS, pd.Series(np.nan, index=signals.index))
    signals[S.TIMEOUT_HOURS] = own.astype("float64").fillna(float(timeout_hours))
    signals = S.validate_signals(signals.sort_values(S.SIGNAL_TIME, kind="stable"))
    signals = signals.reset_index(drop=True)
    bar = tqdm(total=3, desc="study", disable=not progress)
    clusters, cutoffs = cluster_symbols(candles)
    features = build_features(candles, signals, clusters=clusters)
    features = _cluster_known_from(features, signals, cutoffs)
    bar.update()
    features = features.join(signals.set_index(S.SIGNAL_ID)[extra_columns(signals)])
    bar.update()
    outcomes = simulate(candles, signals, simulator)
    bar.update()
    bar.close()
    logger.info(
        "%d signals of %d symbol(s), %d features each (%d of the file's own)",
        len(signals),
        signals[S.SYMBOL].nunique(),
        features.shape[1],
        len(extra_columns(signals)),
    )
    return StudyData(candles=dict(candles), signals=signals, features=features, outcomes=outcomes)


def _inside_candles(signals: pd.DataFrame, candles: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Signals whose time falls within their candles' period (the others dropped, logged)."""
    t_ns = pd.DatetimeIndex(signals[S.SIGNAL_TIME]).as_unit("ns").asi8
    keep, far = np.zeros(len(signals), bool), np.zeros(len(signals), bool)
    spans = []
    for symbol in pd.unique(signals[S.SYMBOL]):
        bars, rows = candles[symbol], (signals[S.SYMBOL] == symbol).to_numpy()
        tf = timeframe_of(bars).value
        open_ns = bars.index.as_unit("ns").asi8
        inside = rows & (t_ns >= open_ns[0] + tf) & (t_ns <= open_ns[-1] + tf)
        keep |= inside
        t = signals.loc[rows, S.SIGNAL_TIME]
        spans.append(
            f"{symbol}: candles {bars.index[0] + pd.Timedelta(tf):%Y-%m-%d %H:%M} .. "
            f"{bars.index[-1] + pd.Timedelta(tf):%Y-%m-%d %H:%M}, signals "
            f"{t.min():%Y-%m-%d %H:%M} .. {t.max():%Y-%m-%d %H:%M}"
        )
        # an entry far from the signal bar's close hints at a wrong file or price unit
        pos = np.searchsorted(open_ns, t_ns[inside] - tf, side="right") - 1
        close = bars[S.CLOSE].to_numpy()[pos]
        far[inside] = np.abs(signals.loc[inside, S.ENTRY].to_numpy() / close - 1.0) > 0.1
    if not keep.any():
        raise S.SchemaError(
            f"none of the {len(signals)} signals falls within its candles' period (bar closes, "
            f"UTC): {'; '.join(spans)}. Fix: load candles covering the signals' period; "
            "signal_time is the UTC close time of the signal bar."
        )
    if not keep.all():
        logger.warning(
            "%d of %d signals fall outside their candles' period and are dropped (%s)",
            int((~keep).sum()),
            len(signals),
            "; ".join(spans),
        )
    if far.any():
        logger.warning(
            "%d signal(s) have an entry more than 10 %% away from the close of their "
            "signal bar (e.g. signal_id %s): check the symbol's candle file and the "
            "price units",
            int(far.sum()),
            signals.loc[far, S.SIGNAL_ID].iloc[0],
        )
    return signals.loc[keep].reset_index(drop=True)
