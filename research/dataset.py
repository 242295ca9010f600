"""The dataset step of DESIGN §2: closed trades, their entry features and their labels.

:class:`ClosedTrades` is the one type that training, evaluation, importance, leakage and
calibration take: entry features row-aligned with the 0/1 label (1 = win) and the two times
every purged split needs (``signal_time``, when the trade was decided; ``exit_time``, when its
label became known). It is built from a research study (:meth:`ClosedTrades.from_study`), from
the completed trades of the stores (:meth:`ClosedTrades.from_audit`), or directly from arrays.
It is split only by :mod:`research.splits`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from research import schema as S
from research.errors import InputTypeError, InsufficientDataError, SchemaError

logger = logging.getLogger(__name__)

__all__ = ["ClosedTrades", "Study", "fresh_estimator"]

#: Outcome columns of a trade (all but ``signal_id``): what :attr:`ClosedTrades.signals` drops.
_OUTCOME_ONLY = frozenset(S.OUTCOME_COLUMNS) - {S.SIGNAL_ID}


class Study(Protocol):
    """What :meth:`ClosedTrades.from_study` and :func:`research.replay.replay` read of a study
    (e.g. :class:`research.study.StudyData`, built downstream of this module): every signal,
    its phantom outcome (R gross of costs) and its features, indexed by ``signal_id``."""

    @property
    def signals(self) -> pd.DataFrame: ...

    @property
    def outcomes(self) -> pd.DataFrame: ...

    @property
    def features(self) -> pd.DataFrame: ...


def _utc_times(values: Any, name: str) -> pd.DatetimeIndex:
    """``values`` as a UTC :class:`~pandas.DatetimeIndex` (naive stamps read as UTC)."""
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    except (TypeError, ValueError) as exc:
        raise SchemaError(
            f"{name} must be datetimes ({exc}). Fix: pass e.g. signals[{name!r}] (datetime64)."
        ) from exc


@dataclass(frozen=True, kw_only=True, slots=True)
class ClosedTrades:
    """Closed trades: entry features, label and the times a purged split needs, row-aligned.

    Attributes
    ----------
    features : DataFrame
        Features, one row per trade (index kept as given: a study's is ``signal_id``).
    y : ndarray of int, shape (n,)
        1 for a win (take-profit), 0 otherwise.
    signal_times, exit_times : DatetimeIndex, shape (n,), UTC
        When each trade was decided and when its label became known (``NaT`` = still open).
    trades : DataFrame or None
        The trades' signal and outcome columns (0..n-1 index), when known; ``signals``,
        ``outcomes`` and :meth:`summary` read it.
    strategy : str or None
        The one strategy of the rows, or None for a mix.
    trainable : ndarray of bool, shape (n,)
        Rows a model may train on or be scored on (default all). :meth:`from_audit` keeps
        timeouts for the thresholds but marks them untrainable unless ``learn_from_timeouts``.

    Raises
    ------
    research.errors.InputTypeError
        ``features`` is not a DataFrame (also a ``TypeError``).
    research.errors.SchemaError
        Lengths differ, ``y`` is not 0/1 or a time is not a datetime; the message says the fix.
    """

    features: pd.DataFrame
    y: np.ndarray
    signal_times: pd.DatetimeIndex
    exit_times: pd.DatetimeIndex
    trades: pd.DataFrame | None = None
    strategy: str | None = None
    trainable: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.features, pd.DataFrame):
            raise InputTypeError("features must be a DataFrame. Fix: pass build_features(...).")
        n = len(self.features)
        y = np.asarray(self.y)
        if y.ndim != 1 or len(y) != n:
            raise SchemaError(
                f"features have {n} rows, y has {len(y)}. Fix: pass labels of the same rows "
                "in the same order (e.g. (outcomes['outcome'] == 'win'))."
            )
        if not set(np.unique(y).tolist()) <= {0, 1}:
            raise SchemaError("y must be 0/1 (win = 1). Fix: y = (outcome == 'win').")
        signal_times = _utc_times(self.signal_times, S.SIGNAL_TIME)
        exit_times = _utc_times(self.exit_times, S.EXIT_TIME)
        if len(signal_times) != n or len(exit_times) != n:
            raise SchemaError(
                f"{n} rows but {len(signal_times)} signal and {len(exit_times)} exit times. "
                "Fix: pass the signals' and outcomes' columns of the same rows."
            )
        if self.trades is not None and len(self.trades) != n:
            raise SchemaError(
                f"{n} rows but trades has {len(self.trades)}. Fix: pass the same rows' trades."
            )
        trainable = np.ones(n, bool) if self.trainable is None else np.asarray(self.trainable)
        if trainable.shape != (n,):
            raise SchemaError(f"trainable must be {n} booleans. Fix: pass one per row.")
        object.__setattr__(self, "y", y.astype(int))
        object.__setattr__(self, "signal_times", signal_times)
        object.__setattr__(self, "exit_times", exit_times)
        object.__setattr__(self, "trainable", trainable.astype(bool))

    def __len__(self) -> int:
        return len(self.features)

    # ---------------------------------------------------------------------------- builders
    @classmethod
    def from_study(
        cls, study: Study, strategy: str | None = None, *, learn_from_timeouts: bool = False
    ) -> ClosedTrades:
        """The trades a model learns from in a study: finished, labelled *win* or not.

        Parameters
        ----------
        study : StudyData
            :func:`research.pipeline.run_signals_and_phantoms` output (signals, outcomes and
            features row-aligned).
        strategy : str, optional
            Keep only this strategy's signals; None keeps every strategy of the study.
        learn_from_timeouts : bool
            Keep timeouts as not-win trades (rigorous) or drop them (the seed's rule).
            Censored trades, still open at the end of the data, are always dropped: their
            label is unknown.

        Returns
        -------
        ClosedTrades
            In signal-time order; ``trades`` = the signals merged with their outcomes
            (0..n-1 index), ``features`` keep their ``signal_id`` index.
        """
        outcomes = study.outcomes
        known = ~outcomes[S.CENSORED].to_numpy(bool) & (
            learn_from_timeouts | (outcomes[S.OUTCOME] != "timeout").to_numpy(bool)
        )
        if strategy is not None:
            available = sorted(study.signals[S.STRATEGY].unique())
            if strategy not in available:
                raise ValueError(
                    f"strategy={strategy!r} has no signals in this study; available: "
                    f"{available}. Fix: pick one of those, or run_signals_and_phantoms with it."
                )
            known &= (study.signals[S.STRATEGY] == strategy).to_numpy(bool)
        signals = study.signals[known].reset_index(drop=True)
        outcomes = outcomes[known].reset_index(drop=True)
        y = (outcomes[S.OUTCOME] == "win").to_numpy(int)
        logger.info("%d closed trades of %d signals", len(y), len(study.signals))
        trades = signals.merge(outcomes, on=S.SIGNAL_ID, how="left", validate="one_to_one")
        return cls(
            features=study.features[known],
            y=y,
            signal_times=signals[S.SIGNAL_TIME],
            exit_times=outcomes[S.EXIT_TIME],
            trades=trades,
            strategy=strategy,
        )

    @classmethod
    def from_audit(
        cls,
        trades: pd.DataFrame,
        features: pd.DataFrame,
        *,
        strategy: str,
        learn_from_timeouts: bool = False,
    ) -> ClosedTrades:
        """Completed trades of one strategy as the stores hold them (audit trail, state store).

        Parameters
        ----------
        trades : DataFrame
            The usable completed trades, in exit order, with at least ``signal_id``,
            ``signal_time``, ``exit_time`` and ``outcome`` (as
            :func:`research.retrain.load_trades` reads them).
        features : DataFrame
            Their entry features, row-aligned.
        strategy : str
        learn_from_timeouts : bool
            Whether timeouts are :attr:`trainable` (False: the seed's rule). They stay in the
            rows either way: the thresholds see every trade.

        Returns
        -------
        ClosedTrades
            ``trades`` and ``features`` re-indexed from 0.
        """
        S.require_columns(
            trades, (S.SIGNAL_ID, S.SIGNAL_TIME, S.EXIT_TIME, S.OUTCOME), "completed trades"
        )
        trades = trades.reset_index(drop=True)
        outcome = trades[S.OUTCOME]
        return cls(
            features=features.reset_index(drop=True),
            y=(outcome == "win").to_numpy(int),
            signal_times=trades[S.SIGNAL_TIME],
            exit_times=trades[S.EXIT_TIME],
            trades=trades,
            strategy=strategy,
            trainable=(outcome != "timeout").to_numpy() | learn_from_timeouts,
        )

    # ---------------------------------------------------------------------------- views
    def _trades(self, who: str) -> pd.DataFrame:
        if self.trades is None:
            raise SchemaError(
                f"{who} needs the trades' columns, and this dataset was built from arrays. "
                "Fix: build it with ClosedTrades.from_study or from_audit, or pass trades=."
            )
        return self.trades

    @property
    def signals(self) -> pd.DataFrame:
        """The trades' signal columns (``signal_id`` and every non-outcome column)."""
        trades = self._trades("signals")
        return trades[[c for c in trades.columns if c not in _OUTCOME_ONLY]]

    @property
    def outcomes(self) -> pd.DataFrame:
        """The trades' outcome columns (``signal_id`` first)."""
        trades = self._trades("outcomes")
        return trades[[S.SIGNAL_ID, *(c for c in trades.columns if c in _OUTCOME_ONLY)]]

    def require_rows(self, who: str) -> None:
        """Raise :class:`~research.errors.InsufficientDataError` (a ``ValueError``) when there is no
        row: an analysis needs some."""
        if len(self) == 0:
            raise InsufficientDataError(
                f"{who}: no rows. Fix: pass closed trades (drop timeouts/censored)."
            )

    def with_features(self, features: pd.DataFrame) -> ClosedTrades:
        """The same trades with other features, row-aligned (e.g. lifecycle columns joined)."""
        return replace(self, features=features)

    def with_lifecycle(self) -> ClosedTrades:
        """The same trades with their ``after_entry`` (lifecycle) features joined on
        ``signal_id``: the input of :func:`research.analysis.leakage.leakage_check` only."""
        from research.features import lifecycle_features

        lifecycle = lifecycle_features(self.signals, self.outcomes)
        return self.with_features(self.features.join(lifecycle))

    def summary(self) -> pd.DataFrame:
        """Executed vs phantom trades (``all`` without ``was_executed``): counts, win rate,
        first and last exit time."""
        t = self._trades("summary")
        kind = (
            t[S.WAS_EXECUTED].map({True: "executed", False: "phantom"}).fillna("phantom")
            if S.WAS_EXECUTED in t
            else pd.Series("all", index=t.index)
        )
        out = t[S.OUTCOME].astype(str)
        frame = pd.DataFrame(
            {
                "kind": kind,
                "win": out == "win",
                "loss": out == "loss",
                "timeout": out == "timeout",
                S.EXIT_TIME: t[S.EXIT_TIME],
            }
        )
        table = frame.groupby("kind").agg(
            trades=("win", "size"),
            wins=("win", "sum"),
            losses=("loss", "sum"),
            timeouts=("timeout", "sum"),
            first_exit=(S.EXIT_TIME, "min"),
            last_exit=(S.EXIT_TIME, "max"),
        )
        table.insert(4, "win_rate", table["wins"] / (table["wins"] + table["losses"]))
        return table


def fresh_estimator(estimator: Any) -> Any:
    """A new unfitted model from an analysis's ``estimator`` argument.

    ``estimator`` is an unfitted scikit-learn estimator (cloned, as scikit-learn's
    meta-estimators do) or a callable returning a new one (a class,
    ``functools.partial(EnsembleScorer, n_estimators=50)``), called.
    """
    if callable(estimator):
        return estimator()
    from sklearn.base import clone

    return clone(estimator)
