"""Context features: trading session, volatility regime, and the symbol clustering."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from research import schema as S
from research.candles import timeframe_of

logger = logging.getLogger(__name__)

# UTC hour -> session: asia [22, 7), london [7, 12), overlap (London/New York) [12, 16), us [16, 22)
_SESSION_OF_HOUR = np.array(
    ["asia"] * 7 + ["london"] * 5 + ["overlap"] * 4 + ["us"] * 6 + ["asia"] * 2, dtype=object
)
REGIME_EDGES = (0.25, 0.75, 0.95)


def session_of(times) -> np.ndarray:
    """Session name (:data:`research.schema.SESSIONS`) of each UTC timestamp."""
    hours = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).hour
    return _SESSION_OF_HOUR[np.asarray(hours)]


def volatility_regime(rank: pd.Series | np.ndarray) -> np.ndarray:
    """Map a 0-1 volatility rank to low / normal / high / extreme (NaN rank -> 'normal')."""
    rank = np.nan_to_num(np.asarray(rank, dtype=np.float64), nan=0.5)
    return np.asarray(S.VOLATILITY_REGIMES, dtype=object)[
        np.searchsorted(REGIME_EDGES, rank, "right")
    ]


class SymbolClusterer:
    """Cluster symbols by their return and volatility profile (k-means on standardised stats).

    Fit it on a period *before* the one you study (``end=``, or ``ends=`` per symbol) so the
    symbol's profile is known at signal time. Labels are ordered by daily volatility (0 = calmest cluster), so they are stable
    across refits with the same data.

    Parameters
    ----------
    n_clusters : int
        At most the number of symbols given to :meth:`fit`.
    random_state : int

    Attributes
    ----------
    profiles_ : DataFrame
        Per symbol: ``log_daily_vol`` (log of the log-return std scaled to one day),
        ``daily_sharpe`` (mean / std of returns scaled to one day) and ``autocorr`` (lag-1 of
        bar returns). Each is comparable across timeframes; kurtosis is not (it grows as bars
        shrink), so it is left out.
    labels_ : dict
        symbol -> cluster label (symbols with too little history are absent: -1).
    ends_ : dict
        symbol -> the cut-off its profile used (None = all bars).
    skipped_ : list of str
        Symbols left out for too little history before their cut-off.
    """

    def __init__(self, n_clusters: int = 3, random_state: int = 0) -> None:
        self.n_clusters = n_clusters
        self.random_state = random_state

    @staticmethod
    def profile(candles: pd.DataFrame) -> dict[str, float]:
        """Return/volatility statistics of one symbol (units: per day where scaled)."""
        r = np.log(candles[S.CLOSE]).diff().dropna()
        bars_per_day = pd.Timedelta("1D") / timeframe_of(candles)
        sd = float(r.std())
        return {
            "log_daily_vol": float(np.log(max(sd, 1e-12) * np.sqrt(bars_per_day))),
            "daily_sharpe": float(r.mean() / sd * np.sqrt(bars_per_day)) if sd > 0 else 0.0,
            "autocorr": float(r.autocorr(1)) if len(r) > 2 else 0.0,
        }

    def fit(
        self,
        candles_by_symbol: Mapping[str, pd.DataFrame],
        end=None,
        *,
        ends: Mapping[str, object] | None = None,
        min_bars: int = 3,
    ) -> SymbolClusterer:
        """Profile each symbol on bars opening before its cut-off and cluster the profiles.

        Parameters
        ----------
        candles_by_symbol : mapping of symbol -> candles
        end : datetime-like, optional
            One cut-off for every symbol (naive = UTC); None = all bars.
        ends : mapping of symbol -> datetime-like, optional
            Each symbol's own cut-off, overriding ``end`` (files of different periods in one
            folder: each symbol is profiled on its own early history).
        min_bars : int
            Bars a symbol needs before its cut-off (at least 3). A symbol with fewer is left
            out, logged, and predicted as -1; if every symbol has too few, a ``ValueError``.
        """
        from sklearn.cluster import KMeans

        ends = dict(ends or {})
        rows, skipped, self.ends_ = {}, {}, {}
        for symbol, candles in candles_by_symbol.items():
            cut = ends.get(symbol, end)
            cut = None if cut is None else S.utc_timestamp(cut)
            bars = candles if cut is None else candles[candles.index < cut]
            self.ends_[symbol] = cut
            if len(bars) < max(min_bars, 3):
                skipped[symbol] = f"{len(bars)} bars before {cut}"
                continue
            rows[symbol] = self.profile(bars)
        self.skipped_ = sorted(skipped)
        if not rows:
            raise ValueError(
                f"no symbol can be profiled ({'; '.join(f'{k}: {v}' for k, v in skipped.items())}"
                f"; at least {max(min_bars, 3)} needed). Fix: choose a later end or load more "
                "history."
            )
        if skipped:
            logger.warning(
                "symbol clusters: %s have too little history (%s; need %d); their cluster is -1",
                self.skipped_,
                "; ".join(skipped.values()),
                max(min_bars, 3),
            )
        self.profiles_ = pd.DataFrame.from_dict(rows, orient="index").fillna(0.0)
        k = min(self.n_clusters, len(self.profiles_))
        x = self.profiles_.to_numpy()
        x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        raw = KMeans(n_clusters=k, n_init=10, random_state=self.random_state).fit_predict(x)
        vol_by_label = self.profiles_.groupby(raw)["log_daily_vol"].mean().sort_values()
        order = {old: new for new, old in enumerate(vol_by_label.index)}
        self.labels_ = {s: order[r] for s, r in zip(self.profiles_.index, raw, strict=True)}
        logger.info("clustered %d symbols into %d clusters", len(self.labels_), k)
        return self

    def predict(self, symbols) -> np.ndarray:
        """Cluster label of each symbol; -1 for a symbol the clusterer has not seen."""
        return np.array([self.labels_.get(s, -1) for s in symbols], dtype=np.int64)
