"""Time splits with purge and embargo: the only place time splits live (DESIGN §2, §4).

A *row* is one signal decided at ``signal_time`` whose label (its outcome) becomes known only at
``exit_time``. A row may be trained on for a decision at time ``t`` only if its label was known
before ``t``; a ``NaT`` exit (censored, still open) is never known and is never trained on.

* :class:`PurgedWalkForward` — expanding (or rolling) train, later test; what a live model would
  have seen. Use it for out-of-fold calibration and every "would it have worked" number.
* :class:`PurgedKFold` — López de Prado's purged, embargoed k-fold; trains on the future too.
* :func:`oof_predict` — out-of-fold predictions from any of these splitters.
* :func:`time_train_test_split` — one purged hold-out split on the latest rows.
* :func:`latest_exits_split` — the retrain's hold-out: the latest rows by *exit* time.

Times may be a ``pd.Series``, ``pd.DatetimeIndex``, ``numpy.datetime64`` array or list of
timestamps, tz-aware (converted to UTC) or naive (read as UTC). Indices returned are positions in
the rows *as given* (input need not be sorted), as sorted ``int64`` arrays. Rows are ordered by
``signal_time`` (stable); block edges are moved so rows sharing a ``signal_time`` stay together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from research.errors import InputTypeError, SplitError, TooFewRowsError
from research.schema import EXIT_TIME, SIGNAL_TIME

logger = logging.getLogger(__name__)

__all__ = [
    "HoldOut",
    "PurgedKFold",
    "PurgedWalkForward",
    "latest_exits_split",
    "oof_predict",
    "time_train_test_split",
]

Fold = tuple[np.ndarray, np.ndarray]
NO_EMBARGO = pd.Timedelta(0)


class _Splitter:
    n_splits: int

    def split(self, signal_times: Any, exit_times: Any) -> Iterator[Fold]:
        """Return an iterator of ``(train_idx, test_idx)``: sorted int positions in the rows as
        given. Computed eagerly, so a :class:`~research.errors.SplitError` (with a ``Fix:``;
        :class:`~research.errors.TooFewRowsError` when no fold can be made) is raised by the
        call."""
        return iter(self._folds(*_prepare(signal_times, exit_times)))

    def get_n_splits(self, signal_times: Any = None, exit_times: Any = None) -> int:
        """``n_splits``, or with times given the number of folds :meth:`split` really yields."""
        if signal_times is None:
            return self.n_splits
        return sum(1 for _ in self.split(signal_times, exit_times))


def _embargo(value: Any) -> pd.Timedelta:
    if isinstance(value, int | float | np.number) or value is None:
        raise SplitError(f"embargo must be a duration, got {value!r}. Fix: pass e.g. '2h'.")
    td = pd.Timedelta(value)
    if td is pd.NaT or td < pd.Timedelta(0):
        raise SplitError(f"embargo must be a duration >= 0, got {value!r}. Fix: pass e.g. '2h'.")
    return td


def _ns(values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (int64 ns since epoch UTC, NaT mask) of ``values``; naive stamps are read as UTC."""
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be datetimes ({exc}). Fix: pass e.g. df[{name!r}] (datetime64)."
        raise SplitError(msg) from exc
    return idx.as_unit("ns").asi8, np.asarray(idx.isna())


def _prepare(signal_times: Any, exit_times: Any) -> tuple[np.ndarray, ...]:
    """Return ``s, e, known, order``: ns times, exit-known mask, stable sort order by signal."""
    s, s_nat = _ns(signal_times, SIGNAL_TIME)
    e, e_nat = _ns(exit_times, EXIT_TIME)
    if len(s) != len(e):
        msg = f"{SIGNAL_TIME} has {len(s)} rows, {EXIT_TIME} {len(e)}. Fix: pass one frame's."
        raise SplitError(msg)
    known, bad = ~e_nat, s_nat | (~e_nat & (e < s))
    if bad.any():
        raise SplitError(
            f"{int(bad.sum())} row(s) have a NaT {SIGNAL_TIME} or exit before it, first at "
            f"position {int(np.argmax(bad))}. Fix: drop or repair them (time zone mix-up?)."
        )
    return s, e, known, np.argsort(s, kind="stable")


def _edges(s_sorted: np.ndarray, n_blocks: int, who: str) -> np.ndarray:
    """Start positions of ``n_blocks`` near-equal consecutive blocks (+ ``n``), ties kept whole."""
    n = len(s_sorted)
    if n < n_blocks:
        msg = f"{who} needs >= {n_blocks} rows, got {n}. Fix: lower n_splits or pass more rows."
        raise TooFewRowsError(msg)
    sizes = np.full(n_blocks, n // n_blocks)
    sizes[: n % n_blocks] += 1
    edges = np.concatenate([[0], np.cumsum(sizes)])
    edges[1:-1] = np.searchsorted(s_sorted, s_sorted[edges[1:-1]], side="left")
    return edges


def _known_before(order, lo, s_sorted, e, known, embargo_ns) -> np.ndarray:
    """Rows (sorted by signal) before position ``lo`` whose exit < its signal time - embargo."""
    cand = order[:lo]
    return cand[known[cand] & (e[cand] < s_sorted[lo] - embargo_ns)]


@dataclass(frozen=True)
class PurgedWalkForward(_Splitter):
    """Walk-forward splits whose train labels were all known before the test block starts.

    Rows sorted by ``signal_time`` are cut into ``n_splits + 1`` consecutive blocks; fold ``k``
    tests block ``k + 1`` and trains on earlier rows with ``exit_time < t0 - embargo``, ``t0``
    being the first ``signal_time`` of the test block (the purge). ``NaT`` exits never train.

    Parameters
    ----------
    n_splits : int
        Number of folds (test blocks) at most; folds too small to train are skipped.
    min_train_size : int
        Folds with fewer training rows (after the purge) are skipped, logged at DEBUG.
    embargo : pd.Timedelta or str
        Extra gap (a duration, e.g. ``"2h"``) between the last known label and ``t0``.
    max_train_size : int or None
        Keep only the latest this many training rows (rolling window); ``None`` = expanding.
    """

    n_splits: int = 5
    _: KW_ONLY
    min_train_size: int = 50
    embargo: pd.Timedelta = NO_EMBARGO
    max_train_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "embargo", _embargo(self.embargo))
        if int(self.n_splits) < 1 or int(self.min_train_size) < 1:
            raise SplitError("n_splits and min_train_size must be >= 1. Fix: raise them.")
        if self.max_train_size is not None and self.max_train_size < self.min_train_size:
            msg = f"max_train_size < min_train_size={self.min_train_size}. Fix: raise it."
            raise SplitError(msg)

    def _folds(self, s, e, known, order) -> list[Fold]:
        s_sorted = s[order]
        edges = _edges(s_sorted, self.n_splits + 1, "PurgedWalkForward")
        folds, largest = [], 0
        for k in range(self.n_splits):
            lo, hi = edges[k + 1], edges[k + 2]
            train = _known_before(order, lo, s_sorted, e, known, self.embargo.value)
            if self.max_train_size is not None:
                train = train[-self.max_train_size :]
            largest = max(largest, train.size)
            if lo == hi or train.size < self.min_train_size:
                logger.debug("fold %d skipped: %d train / %d test rows", k, train.size, hi - lo)
                continue
            folds.append((np.sort(train), np.sort(order[lo:hi])))
        if not folds:
            raise TooFewRowsError(
                f"PurgedWalkForward: no fold has >= min_train_size={self.min_train_size} purged "
                f"training rows ({len(s)} rows, n_splits={self.n_splits}, embargo="
                f"{self.embargo}; largest train set {largest}). Fix: lower min_train_size or "
                "n_splits, shorten the embargo, or pass more rows."
            )
        return folds


@dataclass(frozen=True)
class PurgedKFold(_Splitter):
    """Purged, embargoed k-fold (López de Prado, AFML ch. 7): contiguous test blocks in time.

    Train = every other row whose ``[signal_time, exit_time]`` does not overlap the test span
    ``[first signal_time, last exit_time]`` of the block, minus rows whose signal falls within
    ``embargo`` after that span. ``NaT`` exits never train (in a test block they end at their
    own signal). Blocks *after* the test block train too: this uses the future, which is fine
    for importance or model-selection studies but never for calibration or any estimate of
    what a live model would have seen — use :class:`PurgedWalkForward` for those.

    Parameters
    ----------
    n_splits : int
        Number of contiguous test blocks (>= 2). Folds left with no training row are skipped.
    embargo : pd.Timedelta or str
        Duration after the test span in which signals are not trained on.
    """

    n_splits: int = 5
    _: KW_ONLY
    embargo: pd.Timedelta = NO_EMBARGO

    def __post_init__(self) -> None:
        object.__setattr__(self, "embargo", _embargo(self.embargo))
        if int(self.n_splits) < 2:
            raise SplitError(f"n_splits={self.n_splits} < 2. Fix: use n_splits >= 2.")

    def _folds(self, s, e, known, order) -> list[Fold]:
        s_sorted = s[order]
        edges = _edges(s_sorted, self.n_splits, "PurgedKFold")
        folds = []
        for k in range(self.n_splits):
            lo, hi = edges[k], edges[k + 1]
            test = order[lo:hi]
            if not test.size:
                continue
            start = s_sorted[lo]
            end = max(s_sorted[hi - 1], e[test][known[test]].max(initial=s_sorted[hi - 1]))
            ok = known & ((e < start) | (s > end + self.embargo.value))
            ok[test] = False
            if not ok.any():
                logger.debug("fold %d skipped: no training row left after the purge", k)
                continue
            folds.append((np.flatnonzero(ok), np.sort(test)))
        if not folds:
            raise TooFewRowsError(
                f"PurgedKFold: every fold is purged empty ({len(s)} rows, embargo="
                f"{self.embargo}). Fix: shorten the embargo, raise n_splits or pass more rows."
            )
        return folds


def _proba_of_one(estimator: Any, proba: np.ndarray) -> np.ndarray:
    classes = np.asarray(estimator.classes_)
    if not set(classes.tolist()) <= {0, 1}:
        raise SplitError(f"classes {classes.tolist()} are not 0/1. Fix: encode y as 0/1 (win=1).")
    hit = np.flatnonzero(classes == 1)
    return proba[:, hit[0]] if hit.size else np.zeros(len(proba))  # fold saw no class 1


def oof_predict(
    estimator_factory: Callable[[], Any],
    X: Any,
    y: Any,
    splitter: Any,
    signal_times: Any,
    exit_times: Any,
    method: str = "predict_proba",
) -> np.ndarray:
    """Out-of-fold predictions: each row is predicted by a model that never trained on it.

    Parameters
    ----------
    estimator_factory : callable
        Returns a new unfitted estimator per fold, e.g. ``lambda: LogisticRegression()``.
    X : pd.DataFrame or array-like, shape (n, n_features)
    y : array-like, shape (n,)
        Labels; with ``predict_proba`` they must be 0/1 (1 = the class whose probability is kept).
    splitter : PurgedWalkForward, PurgedKFold or any object with ``split(signal_times, exit_times)``
    signal_times, exit_times : datetime array-likes, shape (n,)
    method : str
        Estimator method to call on the test rows.

    Returns
    -------
    np.ndarray of float
        Shape (n,) (or (n, k) for a method returning k columns); ``predict_proba`` gives the
        probability of class 1 in [0, 1]. Rows never in a test fold (e.g. the first
        walk-forward block) are NaN.
    """
    if not callable(estimator_factory):
        msg = "estimator_factory must be callable. Fix: pass e.g. lambda: clone(model)."
        raise InputTypeError(msg)
    X = X if isinstance(X, pd.DataFrame) else np.asarray(X)
    y = np.asarray(y)
    n = len(X)
    if len(y) != n or len(signal_times) != n or len(exit_times) != n:
        raise SplitError(
            f"X has {n} rows, y {len(y)}, {SIGNAL_TIME} {len(signal_times)}, {EXIT_TIME} "
            f"{len(exit_times)}. Fix: pass columns of the same frame, in the same order."
        )
    out, previous = None, []
    for train, test in splitter.split(signal_times, exit_times):
        est = estimator_factory()
        if any(est is p for p in previous):
            msg = "estimator_factory returned one object twice. Fix: lambda: clone(model)."
            raise SplitError(msg)
        previous.append(est)
        take = X.iloc if isinstance(X, pd.DataFrame) else X
        est.fit(take[train], y[train])
        pred = getattr(est, method)(take[test])
        pred = np.asarray(_proba_of_one(est, pred) if method == "predict_proba" else pred, float)
        if out is None:
            out = np.full((n, *pred.shape[1:]), np.nan)
        out[test] = pred
    return np.full(n, np.nan) if out is None else out


def time_train_test_split(
    signal_times: Any,
    exit_times: Any,
    test_size: float = 0.25,
    embargo: pd.Timedelta | str = NO_EMBARGO,
) -> Fold:
    """One purged hold-out split: the latest ``test_size`` share of rows is the test.

    Parameters
    ----------
    test_size : float
        Share of rows in (0, 1), rounded up; rows sharing the first test ``signal_time`` join
        the test. Train = earlier rows with ``exit_time < t0 - embargo`` (as walk-forward).
    embargo : pd.Timedelta or str
        Extra gap between the last known training label and the first test signal.

    Returns
    -------
    (train_idx, test_idx) : tuple of np.ndarray of int
        Sorted positions in the rows as given.
    """
    if not 0 < test_size < 1:
        raise SplitError(f"test_size={test_size} is not a share in (0, 1). Fix: e.g. 0.25.")
    emb = _embargo(embargo)
    s, e, known, order = _prepare(signal_times, exit_times)
    s_sorted = s[order]
    n_test = int(np.ceil(test_size * len(s)))
    lo = int(np.searchsorted(s_sorted, s_sorted[len(s) - n_test], side="left")) if s.size else 0
    train = _known_before(order, lo, s_sorted, e, known, emb.value) if lo else order[:0]
    if not train.size:
        raise TooFewRowsError(
            f"time_train_test_split: no training row is known before the test starts "
            f"({len(s)} rows, test_size={test_size}, embargo={emb}). "
            "Fix: lower test_size, shorten the embargo or pass more rows."
        )
    return np.sort(train), np.sort(order[lo:])


class HoldOut(NamedTuple):
    """A :func:`latest_exits_split`: sorted positions of the training and held-out rows, and
    how many earlier rows were purged (label unknown when the hold-out starts) or capped."""

    train: np.ndarray
    test: np.ndarray
    purged: int
    capped: int


def latest_exits_split(
    signal_times: Any,
    exit_times: Any,
    test_size: float,
    *,
    max_train_size: int | None = None,
) -> HoldOut:
    """One purged hold-out on the latest rows by **exit** time (the retrain's split).

    The test is the last ``ceil(test_size * n)`` rows in exit order (stable: rows as given
    break ties), the trades that completed last, as an audit trail lists them. Training rows
    are the earlier ones whose ``exit_time`` is strictly before the test's earliest
    ``signal_time`` (the others are purged); ``max_train_size`` then keeps the most recent of
    them by exit. Where :func:`time_train_test_split` orders by signal time, this orders by
    exit time.

    Parameters
    ----------
    signal_times, exit_times : datetime array-likes, shape (n,)
        No ``NaT``: every row here has completed.
    test_size : float
        Share of rows held out, in (0, 1), rounded up.
    max_train_size : int or None
        Keep only this many most recent training rows (None: all).

    Returns
    -------
    HoldOut
        ``train`` and ``test`` positions in the rows as given (sorted), ``purged``, ``capped``.

    Raises
    ------
    TooFewRowsError
        ``test_size`` leaves no row on one side.
    """
    if not 0 < test_size < 1:
        raise SplitError(f"test_size={test_size} is not a share in (0, 1). Fix: e.g. 0.2.")
    s, s_nat = _ns(signal_times, SIGNAL_TIME)
    e, e_nat = _ns(exit_times, EXIT_TIME)
    if len(s) != len(e) or s_nat.any() or e_nat.any():
        raise SplitError(
            f"latest_exits_split needs one completed {SIGNAL_TIME} and {EXIT_TIME} per row "
            f"({len(s)} and {len(e)} given, {int(s_nat.sum())} and {int(e_nat.sum())} NaT). "
            "Fix: pass completed trades only, the columns of one frame."
        )
    order = np.argsort(e, kind="stable")
    n_test = math.ceil(test_size * len(order))
    before, test = order[: len(order) - n_test], order[len(order) - n_test :]
    if not len(before) or not len(test):
        raise TooFewRowsError(
            f"{len(order)} rows cannot be split with test_size={test_size}. "
            "Fix: pick a share in (0, 1) leaving rows on both sides, or pass more rows."
        )
    known = e[before] < s[test].min()
    train = before[known]
    capped = max(len(train) - max_train_size, 0) if max_train_size is not None else 0
    train = train[capped:]  # exit order: the most recent ones stay
    return HoldOut(np.sort(train), np.sort(test), int((~known).sum()), capped)
