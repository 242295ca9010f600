"""The whole data flow as plain calls — what the CLI, the notebooks and the pipelines run.

Each function is one arrow of DESIGN §2 over many symbols and strategies; notebooks call these
so that the same work is never written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from research import schema as S
from research.candles import load_folder, parse_timeframe, timeframe_of
from research.config import SimulatorConfig
from research.features import build_features
from research.phantom import simulate
from research.progress import tqdm
from research.signals.external import match_symbols
from research.signals.extras import extra_columns
from research.study import (
    MIN_PROFILE_BARS,
    StudyData,
    cluster_known_from,
    cluster_symbols,
    run_signals_and_phantoms,
)

logger = logging.getLogger(__name__)

# the flow's first steps live upstream (research.study, which the replay reads too); this
# module re-exports them so that the plain-call facade has every step of DESIGN §2
__all__ = [
    "MARKETS",
    "MIN_PROFILE_BARS",
    "StudyData",
    "cluster_symbols",
    "describe_market",
    "load_market",
    "research_market",
    "run_signals_and_phantoms",
    "study_from_signals",
]

#: The synthetic markets of the analysis notebooks: the planted ``volume_momentum`` edge, or none.
MARKETS: tuple[str, ...] = ("planted", "null")


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


#: Timeout of a user's signals without their own ``timeout_hours``, hours.
DEFAULT_TIMEOUT_HOURS = 24.0


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
    features = cluster_known_from(features, signals, cutoffs)
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
