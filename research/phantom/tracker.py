"""The online ``PhantomTracker``: many concurrent phantoms per symbol, advanced bar by bar.

It runs the same compiled rule function as the batch simulator (:func:`rules.bar_step`, via
:func:`rules.step_many`), and builds closed outcomes with the same :func:`rules.finalize`, so
a signal tracked live and the same signal simulated in batch give identical outcomes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict

import numpy as np
import pandas as pd

from research import schema as S
from research.candles import parse_timeframe
from research.config import SimulatorConfig
from research.phantom.rules import NAT, STILL_OPEN, as_ns, finalize, step_many, timeouts_ns

logger = logging.getLogger(__name__)

# float state columns (long space) and int state columns (ns)
_F_SIGN, _F_ENTRY, _F_TP, _F_TP1, _F_STOP, _F_HIT, _F_MOVED, _F_MFE, _F_MAE = range(9)
_I_SIGNAL, _I_DEADLINE, _I_TP1 = range(3)
_META = (
    S.SIGNAL_ID,
    S.SYMBOL,
    S.STRATEGY,
    S.SIDE,
    S.SIGNAL_TIME,
    S.ENTRY,
    S.SL,
    S.TP,
    S.ML_SCORE,
    S.WAS_EXECUTED,
)


class _Book:
    """The phantoms of one symbol: state matrices plus the signals' own fields."""

    def __init__(self) -> None:
        self.fs = np.empty((0, 9))
        self.ist = np.empty((0, 3), np.int64)
        self.meta: list[dict] = []
        self.last_open: int | None = None

    def keep(self, rows: np.ndarray) -> None:
        self.fs, self.ist = self.fs[rows], self.ist[rows]
        self.meta = [m for m, k in zip(self.meta, rows, strict=True) if k]


class PhantomTracker:
    """Track phantom trades online and close them with the simulator's rules.

    Parameters
    ----------
    timeframe : str or Timedelta
        Bar length of the candles fed to :meth:`update` (``'5m'``, ``'1h'``…); a bar's close
        time is its open time plus this.
    config : SimulatorConfig, optional
        Same rules as :func:`research.phantom.simulate`.

    Examples
    --------
    >>> tracker = PhantomTracker(timeframe="5m")          # doctest: +SKIP
    >>> tracker.add(signal_row, ml_score=42.0)           # doctest: +SKIP
    >>> closed = tracker.update("BTC_USDT", bar)         # doctest: +SKIP
    """

    def __init__(self, *, timeframe, config: SimulatorConfig | None = None) -> None:
        self.timeframe = parse_timeframe(timeframe)
        self.config = config or SimulatorConfig()
        self._books: dict[str, _Book] = {}
        self._ids: set[str] = set()

    # ------------------------------------------------------------------ adding phantoms
    def add(
        self, signal: Mapping | pd.Series, *, ml_score: float = np.nan, was_executed: bool = False
    ) -> str:
        """Start tracking one signal (a row of a signals frame). Returns its ``signal_id``."""
        row = dict(signal)
        row.setdefault(S.ML_SCORE, ml_score)
        row.setdefault(S.WAS_EXECUTED, was_executed)
        self.add_many(pd.DataFrame([row]))
        return str(row[S.SIGNAL_ID])

    def add_many(self, signals: pd.DataFrame) -> None:
        """Start tracking every signal of a signals frame (validated first; all or nothing)."""
        if signals.empty:
            return
        S.validate_signals(signals)
        dup = [i for i in signals[S.SIGNAL_ID].astype(str) if i in self._ids]
        if dup:
            raise S.SchemaError(
                f"signal_id(s) already tracked: {dup[:5]}. Fix: a phantom is added once; "
                "use a new signal_id for a new signal."
            )
        deadline_offsets = timeouts_ns(signals, self.config)  # raises before anything changes
        sign = np.where(signals[S.SIDE].to_numpy() == S.LONG, 1.0, -1.0)
        entry = signals[S.ENTRY].to_numpy(np.float64) * sign
        stop = signals[S.SL].to_numpy(np.float64) * sign
        tp1 = self.config.tp1_r
        fs = np.column_stack(
            [
                sign,
                entry,
                signals[S.TP].to_numpy(np.float64) * sign,
                entry + tp1 * (entry - stop) if tp1 > 0 else np.full(len(sign), np.inf),
                stop,
                np.zeros(len(sign)),
                np.zeros(len(sign)),
                np.full(len(sign), -np.inf),
                np.full(len(sign), np.inf),
            ]
        )
        signal_ns = as_ns(signals[S.SIGNAL_TIME])
        ist = np.column_stack(
            [signal_ns, signal_ns + deadline_offsets, np.full(len(sign), NAT, np.int64)]
        )
        records = signals.assign(
            **{
                k: signals[k] if k in signals else v
                for k, v in ((S.ML_SCORE, np.nan), (S.WAS_EXECUTED, False))
            }
        )[list(_META)].to_dict("records")
        for symbol in pd.unique(signals[S.SYMBOL]):
            rows = (signals[S.SYMBOL] == symbol).to_numpy()
            book = self._books.setdefault(str(symbol), _Book())
            book.fs = np.vstack([book.fs, fs[rows]])
            book.ist = np.vstack([book.ist, ist[rows]])
            book.meta.extend(r for r, k in zip(records, rows, strict=True) if k)
        self._ids.update(signals[S.SIGNAL_ID].astype(str))

    # ------------------------------------------------------------------ advancing
    def update(self, symbol: str, bar: Mapping | pd.Series, timestamp=None) -> pd.DataFrame:
        """Advance the phantoms of ``symbol`` by one bar and return those that closed.

        Parameters
        ----------
        symbol : str
        bar : mapping or Series
            ``open high low close`` of the bar; its open time is ``timestamp``, else
            ``bar['timestamp']``, else the Series' name (a row of a candles frame).

        Returns
        -------
        DataFrame
            The outcomes (DESIGN §3) of the phantoms closed by this bar; empty if none.
        """
        stamp = (
            timestamp
            if timestamp is not None
            else (bar[S.TIMESTAMP] if S.TIMESTAMP in bar else getattr(bar, "name", None))
        )
        if stamp is None:
            raise S.SchemaError(
                "a bar needs its open time. Fix: pass timestamp=..., a 'timestamp' key, or a "
                "row of a candles frame (candles.loc[t] / candles.iterrows())."
            )
        t_open = int(pd.Timestamp(stamp).tz_convert("UTC").as_unit("ns").value)
        o, h, lo, c = (float(bar[k]) for k in (S.OPEN, S.HIGH, S.LOW, S.CLOSE))
        if not (h >= max(o, c) and lo <= min(o, c) and min(o, h, lo, c) > 0):
            raise S.SchemaError(
                f"bad bar for {symbol} at {pd.Timestamp(stamp)}: open={o} high={h} low={lo} "
                f"close={c}. Fix: a bar needs high >= max(open, close), low <= min(open, close) "
                "and positive prices; nothing was changed."
            )
        book = self._books.setdefault(symbol, _Book())
        if book.last_open is not None and t_open <= book.last_open:
            raise S.SchemaError(
                f"bar for {symbol} at {pd.Timestamp(stamp)} is not after the last bar "
                f"({pd.Timestamp(book.last_open, tz='UTC')}). Fix: feed bars once each, in time "
                "order; nothing was changed."
            )
        book.last_open = t_open
        n = len(book.meta)
        if n == 0:
            return self._empty()
        reason = np.zeros(n, np.int8)
        price = np.full(n, np.nan)
        ambiguous = np.zeros(n, np.bool_)
        t_close = t_open + self.timeframe.value
        step_many(
            book.fs,
            book.ist,
            o,
            h,
            lo,
            c,
            t_open,
            t_close,
            self.config.timeout_exit == "entry",
            reason,
            price,
            ambiguous,
        )
        done = reason != STILL_OPEN
        if not done.any():
            return self._empty()
        closed = self._outcomes(book, done, reason, price, np.full(n, t_close), ambiguous)
        book.keep(~done)
        self._ids.difference_update(closed[S.SIGNAL_ID].astype(str))
        return closed

    def censor_all(self) -> pd.DataFrame:
        """Close every phantom still open as ``censored`` (the data ended); returns them."""
        frames = []
        for book in self._books.values():
            n = len(book.meta)
            if n:
                every = np.ones(n, bool)
                frames.append(
                    self._outcomes(
                        book,
                        every,
                        np.zeros(n, np.int8),
                        np.full(n, np.nan),
                        np.full(n, NAT),
                        np.zeros(n, bool),
                    )
                )
                book.keep(~every)
        self._ids.clear()
        return pd.concat(frames, ignore_index=True) if frames else self._empty()

    def _outcomes(self, book, rows, reason, price, exit_ns, ambiguous) -> pd.DataFrame:
        meta = pd.DataFrame([m for m, k in zip(book.meta, rows, strict=True) if k])
        fs, ist = book.fs[rows], book.ist[rows]
        seen = np.isfinite(fs[:, _F_MFE])
        sign = fs[:, _F_SIGN]
        return finalize(
            meta,
            reason[rows],
            price[rows],
            exit_ns[rows],
            fs[:, _F_HIT] > 0,
            ist[:, _I_TP1],
            fs[:, _F_MOVED] > 0,
            np.where(seen, fs[:, _F_MFE] * sign, np.nan),
            np.where(seen, fs[:, _F_MAE] * sign, np.nan),
            ambiguous[rows],
            config=self.config,
        )

    @staticmethod
    def _empty() -> pd.DataFrame:
        return pd.DataFrame(columns=list(S.OUTCOME_COLUMNS))

    # ------------------------------------------------------------------ inspection / state
    @property
    def active(self) -> dict[str, list[str]]:
        """``{symbol: [signal_id, ...]}`` of the phantoms still open (seed ``phantom:active``)."""
        return {s: [str(m[S.SIGNAL_ID]) for m in b.meta] for s, b in self._books.items() if b.meta}

    def __len__(self) -> int:
        return sum(len(b.meta) for b in self._books.values())

    def to_state(self) -> dict:
        """The tracker as plain JSON-able data (for the state store); see :meth:`from_state`."""
        books = {}
        for symbol, b in self._books.items():
            meta = [
                {**m, S.SIGNAL_TIME: pd.Timestamp(m[S.SIGNAL_TIME]).isoformat()} for m in b.meta
            ]
            # JSON has no infinities: unreached extremes / a disabled TP1 are stored as null.
            fs = [[v if np.isfinite(v) else None for v in row] for row in b.fs.tolist()]
            books[symbol] = {
                "fs": fs,
                "ist": b.ist.tolist(),
                "meta": meta,
                "last_open": b.last_open,
            }
        return {"timeframe": str(self.timeframe), "config": asdict(self.config), "books": books}

    @classmethod
    def from_state(cls, state: dict) -> PhantomTracker:
        """Rebuild a tracker saved with :meth:`to_state`; it continues exactly where it was."""
        tracker = cls(
            timeframe=pd.Timedelta(state["timeframe"]), config=SimulatorConfig(**state["config"])
        )
        for symbol, b in state["books"].items():
            book = tracker._books.setdefault(symbol, _Book())
            fs = np.asarray(b["fs"], dtype=object).reshape(-1, 9)
            for col, fill in ((_F_TP1, np.inf), (_F_MFE, -np.inf), (_F_MAE, np.inf)):
                fs[:, col] = [fill if v is None else v for v in fs[:, col]]
            book.fs = fs.astype(np.float64)
            book.ist = np.asarray(b["ist"], dtype=np.int64).reshape(-1, 3)
            book.meta = [{**m, S.SIGNAL_TIME: pd.Timestamp(m[S.SIGNAL_TIME])} for m in b["meta"]]
            book.last_open = b["last_open"]
            tracker._ids.update(str(m[S.SIGNAL_ID]) for m in book.meta)
        return tracker
