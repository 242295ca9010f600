"""``MLScorer``: the seed's online loop — ``score_signal``, ``record_outcome``, the retrain rule.

* ``score_signal(features)`` always returns a score in [0, 100]: the ensemble when a model is
  ready, the heuristic when not, or when the model raises or returns nonsense (seed, "Error
  Handling & Fallback Chain"). Only an argument that is not a mapping of features raises
  (:class:`~research.schema.InputTypeError`): a programming error, not a model failure.
  ±inf features count as missing, in training and scoring alike.
* ``record_outcome(signal, outcome, pnl)`` is idempotent by ``signal_id``; timeouts are skipped
  unless configured; it counts ``completed_trades``, updates the EV buckets
  (``session|volatility``) and retrains when ``total >= 30 and total - last_train_count >= 50``
  (so: no model after 49 outcomes, first training at the 50th, second at the 100th).
  A failed retrain is logged and the previous model keeps scoring.
* ``to_state()`` is plain JSON-able data (the model travels separately, through the registry).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.base import clone

from research import schema as S
from research.ev_buckets import add_outcome
from research.scoring.config import ScorerConfig
from research.scoring.ensemble import EnsembleScorer
from research.scoring.fast import FastScorer
from research.scoring.heuristic import heuristic_scores

logger = logging.getLogger(__name__)

DECISION_RAW = S.DECISION_RAW  # a trade's decision-time raw P(win): prequential calibration


class MLScorer:
    """Online scorer of one strategy (seed keys ``ml:{strategy}:*``).

    Parameters
    ----------
    strategy : str
    config : ScorerConfig, optional
    model_factory : callable, optional
        Returns an unfitted estimator with ``fit(X, y, signal_times=, exit_times=)`` and
        ``score_signals``; default a clone of ``config.model`` (with the scorer's
        ``nn_enabled``).
    """

    def __init__(
        self,
        strategy: str,
        *,
        config: ScorerConfig | None = None,
        model_factory: Callable | None = None,
    ) -> None:
        self.strategy = strategy
        self.config = config or ScorerConfig()
        self.model_factory = model_factory or self._default_model
        self._model = None
        self.fast: FastScorer | None = None  # ONNX copy of ``model`` for one-signal latency
        self.model_version = 0
        self.completed_trades = 0
        self.last_train_count = 0
        self.last_train_ts: str | None = None
        self.nn_enabled = self.config.model.nn_enabled
        self.ev_buckets: dict[str, dict[str, float]] = {}
        self.trades: list[dict] = []
        self._recorded: set[str] = set()
        self._failed_at: int | None = None
        #: Latest ``exit_time`` among the current model's training rows (audit of point in time).
        self.train_until: pd.Timestamp | None = None
        #: How the current model was fitted: ``{'path': 'full'|'warm', 'calibration': ...}``.
        self.last_fit: dict[str, str] = {}

    def _default_model(self) -> EnsembleScorer:
        # nn_enabled is the scorer's own (it travels in to_state), not necessarily the config's
        return clone(self.config.model).set_params(nn_enabled=self.nn_enabled)

    @property
    def is_ready(self) -> bool:
        """True once a model has been trained (else the heuristic scores)."""
        return self.model is not None

    # ------------------------------------------------------------------ scoring
    def score_signal(self, features: Mapping) -> float:
        """Score one signal's features, 0-100; a failing model never raises (ML -> heuristic -> 50).

        Uses the ONNX fast path when the model has one (~100x quicker for one signal, equal
        within 1e-9 points), else the scikit-learn model. Missing, non-numeric and infinite
        feature values all count as missing (:mod:`research.scoring.encode`).

        Parameters
        ----------
        features : Mapping or pandas.Series
            Feature name -> value of one signal (``{}``: nothing known, a neutral score).

        Raises
        ------
        research.schema.InputTypeError
            ``features`` is not a mapping (``None``, a list, a string, a frame): a programming
            error, refused at once instead of being scored as "nothing known". Also a
            ``TypeError``.
        """
        S.check_features_mapping(features, f"{type(self).__name__}.score_signal")
        if self.fast is not None:
            try:
                score = self.fast.score_one(features)
                if math.isfinite(score) and 0.0 <= score <= 100.0:
                    return score
            except Exception:  # the fast path must never stop the bot: the full path decides
                logger.debug("%s fast path failed; full model used", self.strategy, exc_info=True)
        return float(self.score_frame(pd.DataFrame([dict(features)]))[0][0])

    def score_frame(self, features: pd.DataFrame, *, return_raw: bool = False) -> tuple:
        """Scores (0-100) of many signals at once and their source, ``'ml'`` or ``'heuristic'``.

        Row by row the same answer as :meth:`score_signal`: the model where it gives a finite
        score in [0, 100], the heuristic for the other rows (or for all if the model raises).
        With ``return_raw``, a third array: the model's uncalibrated P(win) (0-1) per row, NaN
        where the heuristic scored or the model has none — pass it back with the outcome
        (``record_outcome(decision_raw=...)``) for prequential calibration.

        Raises
        ------
        research.schema.InputTypeError
            ``features`` is not a DataFrame (a programming error; also a ``TypeError``).
        """
        S.check_features_frame(features, f"{type(self).__name__}.score_frame")
        n = len(features)
        scores, p_raw = np.full(n, np.nan), np.full(n, np.nan)
        ml = np.zeros(n, dtype=bool)
        if self.model is not None and n:
            try:
                if hasattr(self.model, "predict_raw"):  # one pass gives both
                    p_raw = np.asarray(self.model.predict_raw(features), dtype=np.float64)
                    raw = self.model.scores_from_raw(p_raw)
                else:
                    raw = np.asarray(self.model.score_signals(features), dtype=np.float64)
                ml = np.isfinite(raw) & (raw >= 0.0) & (raw <= 100.0)
                scores[ml] = raw[ml]
                p_raw[~ml] = np.nan
                if not ml.all():
                    logger.warning(
                        "%s model returned %d invalid score(s), e.g. %r; heuristic used",
                        self.strategy,
                        int((~ml).sum()),
                        raw[~ml][0],
                    )
            except Exception:  # the model must never stop the bot: fall back (seed)
                logger.exception("%s model failed to score; heuristic used", self.strategy)
        if not ml.all():
            scores[~ml] = self._heuristic(features.loc[~ml] if n else features)
        source = np.where(ml, "ml", "heuristic")
        return (scores, source, p_raw) if return_raw else (scores, source)

    def _heuristic(self, frame: pd.DataFrame) -> np.ndarray:
        try:  # the rule of this scorer's strategy (range: mean reversion; else the trend rule)
            return heuristic_scores(frame, strategy=self.strategy)
        except Exception:
            logger.exception("heuristic failed; neutral score 50 used")
            return np.full(len(frame), 50.0)

    def records_until_retrain(self) -> int:
        """How many more recorded outcomes trigger the next retrain (1 = the next one does).

        Lets a replay know, without recording, when the model can change next.
        """
        c, total = self.config, self.completed_trades
        due_at = max(c.min_trades, self.last_train_count + c.retrain_every)
        if self._failed_at is not None:
            due_at = max(due_at, self._failed_at + c.retry_after)
        return max(due_at - total, 1)

    # ------------------------------------------------------------------ learning
    def record_outcome(
        self,
        signal: Mapping,
        outcome: str,
        pnl: float,
        *,
        features: Mapping | None = None,
        exit_time=None,
        decision_raw: float | None = None,
    ) -> bool:
        """Feed one completed trade; returns False if it was ignored (duplicate or timeout).

        Parameters
        ----------
        signal : mapping
            Needs ``signal_id``; ``signal_time`` and the features (``features=`` or
            ``signal['features']``) are stored for training.
        outcome : {'win', 'loss', 'timeout'}
        pnl : float
            ``pnl_percent`` of the trade.
        exit_time : datetime-like, optional
            When the outcome became known (orders the purged calibration folds).
        decision_raw : float, optional
            The model's uncalibrated P(win) (0-1) the signal was decided on
            (:meth:`score_frame` with ``return_raw``; else ``signal['decision_raw']``): an
            out-of-sample score the next retrain calibrates on (prequential calibration).
        """
        trade = self.trade_record(
            signal, outcome, pnl, features=features, exit_time=exit_time, decision_raw=decision_raw
        )
        if trade is None or not self.learn(trade):
            return False  # a timeout not learnt, or a replayed or duplicated outcome
        if self._retrain_due():
            self.retrain(now=exit_time)
        return True

    def trade_record(
        self,
        signal: Mapping,
        outcome: str,
        pnl: float,
        *,
        features: Mapping | None = None,
        exit_time=None,
        decision_raw: float | None = None,
    ) -> dict | None:
        """The JSON-able training record of one outcome (``ml:{strategy}:trades``), or None
        when this scorer does not learn it (a timeout, unless ``learn_from_timeouts``).

        Pure: nothing is recorded. :meth:`record_outcome` is ``trade_record`` + :meth:`learn`;
        a multi-writer recorder calls them apart, with the state store's atomic step between.
        """
        if outcome not in S.OUTCOMES:
            raise ValueError(f"outcome must be one of {S.OUTCOMES}, got {outcome!r}")
        if outcome == "timeout" and not self.config.learn_from_timeouts:
            return None
        feats = dict(features if features is not None else signal.get("features", {}))
        if decision_raw is None:
            decision_raw = signal.get(DECISION_RAW)
        if decision_raw is not None:
            # float32 precision (6e-8): a row scored alone or in a batch can differ in the last
            # bits of float64 (BLAS blocking); the calibrator fitted on these values must not
            # depend on how the online loop batched its scoring.
            decision_raw = float(np.float32(decision_raw))
        return {
            S.SIGNAL_ID: str(signal[S.SIGNAL_ID]),
            S.SIGNAL_TIME: _iso(signal.get(S.SIGNAL_TIME)),
            S.EXIT_TIME: _iso(exit_time),
            S.OUTCOME: outcome,
            S.PNL_PERCENT: float(pnl),
            DECISION_RAW: _plain(None if decision_raw is None else float(decision_raw)),
            "features": {k: _plain(v) for k, v in feats.items()},
        }

    def trade_record_of(self, row: Mapping) -> dict | None:
        """:meth:`trade_record` of one completed-trade row: a signal merged with its outcome
        (``outcome``, ``pnl_percent``, ``exit_time``, optional ``features`` mapping)."""
        return self.trade_record(
            row,
            str(row[S.OUTCOME]),
            float(row[S.PNL_PERCENT]),
            features=row.get("features") or {},
            exit_time=row[S.EXIT_TIME],
        )

    def learn(self, trade: Mapping, *, completed_trades: int | None = None) -> bool:
        """Add one :meth:`trade_record` to the training rows, the count and the EV buckets.

        Idempotent by ``signal_id``: a trade learnt before adds nothing (returns False).
        ``completed_trades`` is the shared count after this trade when several processes
        record into one state store (:class:`~research.online.recorder.OutcomeRecorder`); the
        scorer's count follows it either way. By default the scorer counts for itself. Does
        not retrain.
        """
        sid = str(trade[S.SIGNAL_ID])
        new = sid not in self._recorded
        if new:
            self._recorded.add(sid)
            self.trades.append(dict(trade))
            add_outcome(self.ev_buckets, trade["features"], trade[S.OUTCOME], trade[S.PNL_PERCENT])
        if completed_trades is not None:
            self.completed_trades = int(completed_trades)
        elif new:
            self.completed_trades += 1
        return new

    def _retrain_due(self) -> bool:
        total = self.completed_trades
        if (
            total < self.config.min_trades
            or total - self.last_train_count < self.config.retrain_every
        ):
            return False
        return self._failed_at is None or total - self._failed_at >= self.config.retry_after

    def retrain(self, now=None) -> bool:
        """Fit a new model on every recorded trade; keep the old one if anything fails.

        An :class:`EnsembleScorer` is calibrated on the scores the trades were decided on
        (prequential, when enough carry one) and, with ``config.incremental``, renews the
        forest of the model in force instead of regrowing it (``last_fit`` says which).
        """
        frame = pd.DataFrame([t["features"] for t in self.trades])
        y = np.array([t[S.OUTCOME] == "win" for t in self.trades], dtype=int)
        signal_times = pd.to_datetime([t[S.SIGNAL_TIME] for t in self.trades], utc=True)
        exit_times = pd.to_datetime([t[S.EXIT_TIME] for t in self.trades], utc=True)
        try:
            if signal_times.isna().any() or exit_times.isna().any():
                signal_times = exit_times = None  # no times: rows taken as time-ordered
            model = self.model_factory()
            extra = {}
            if isinstance(model, EnsembleScorer):
                extra["decision_raw"] = np.array(
                    [
                        np.nan if t.get(DECISION_RAW) is None else t[DECISION_RAW]
                        for t in self.trades
                    ],
                    dtype=np.float64,
                )
                if self.config.incremental and isinstance(self._model, EnsembleScorer):
                    extra["warm_from"] = self._model
            model = model.fit(frame, y, signal_times=signal_times, exit_times=exit_times, **extra)
        except Exception:
            self._failed_at = self.completed_trades
            logger.exception(
                "%s retrain failed at %d trades; previous model kept",
                self.strategy,
                self.completed_trades,
            )
            return False
        self.set_model(model)
        self.last_fit = {
            "path": getattr(model, "fit_path_", "full"),
            "calibration": str(getattr(model, "calibration_", "")),
        }
        self.model_version += 1
        self.train_until = exit_times.max() if exit_times is not None else None
        self.last_train_count = self.completed_trades
        self.last_train_ts = _iso(now if now is not None else pd.Timestamp.now(tz="UTC"))
        self._failed_at = None
        logger.info(
            "%s retrained: version %d on %d trades",
            self.strategy,
            self.model_version,
            self.completed_trades,
        )
        return True

    @property
    def model(self):
        """The fitted model in use (None: not ready, the heuristic scores)."""
        return self._model

    @model.setter
    def model(self, model) -> None:
        self.set_model(model)

    def set_model(self, model) -> None:
        """Install a fitted model (and its ONNX fast path when it is an EnsembleScorer)."""
        self._model, self.fast = model, None
        if model is not None and self.config.fast_path and isinstance(model, EnsembleScorer):
            try:
                self.fast = FastScorer.from_model(model)
            except Exception:  # scoring still works through scikit-learn, only slower
                logger.warning(
                    "%s: no ONNX fast path for this model; scikit-learn scores",
                    self.strategy,
                    exc_info=True,
                )

    # ------------------------------------------------------------------ state
    def to_state(self, *, last_trades: int | None = None) -> dict:
        """Plain data of everything but the fitted model (seed keys ``ml:{strategy}:*``).

        ``last_trades`` keeps only the newest trades (a store appending one outcome needs one,
        not an O(n) copy of all of them).
        """
        trades = self.trades if last_trades is None else self.trades[-last_trades:]
        return {
            "strategy": self.strategy,
            "completed_trades": self.completed_trades,
            "last_train_count": self.last_train_count,
            "last_train_ts": self.last_train_ts,
            "nn_enabled": self.nn_enabled,
            "model_version": self.model_version,
            "ev_buckets": {k: dict(v) for k, v in self.ev_buckets.items()},
            "trades": [dict(t) for t in trades],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping,
        *,
        model=None,
        config: ScorerConfig | None = None,
        model_factory: Callable | None = None,
    ) -> MLScorer:
        """Rebuild a scorer from :meth:`to_state` (and the champion model, if any)."""
        scorer = cls(state["strategy"], config=config, model_factory=model_factory)
        scorer.adopt(state)
        scorer.set_model(model)
        return scorer

    def adopt(self, state: Mapping) -> None:
        """Take the counters, EV buckets and training rows of a :meth:`to_state` snapshot
        (e.g. the state store's shared one), keeping the model in force."""
        for key in (
            "completed_trades",
            "last_train_count",
            "last_train_ts",
            "nn_enabled",
            "model_version",
        ):
            setattr(self, key, state[key])
        self.ev_buckets = {k: dict(v) for k, v in state["ev_buckets"].items()}
        self.trades = [dict(t) for t in state["trades"]]
        self._recorded = {t[S.SIGNAL_ID] for t in self.trades}


def _iso(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).isoformat()


def _plain(value):
    """JSON-able scalar (numpy scalars to Python; NaN kept as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
