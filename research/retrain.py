"""Retraining on completed trades: the first half of ``pipelines/retrain_publish.ipynb``.

Seed, "Data Flow Architecture": the model is retrained on every completed trade, executed and
phantom alike. In production that is a scheduled job: open the stores, load the completed
trades with their signal-time features, split them point in time and fit a *challenger*
(:class:`~research.scoring.EnsembleScorer`). Comparing it with the champion, publishing and
refreshing the thresholds follow in :mod:`research.challenger`.

The split (:func:`split_point_in_time`): the out-of-sample (OOS) window is the most recent
``oos_fraction`` of trades by ``exit_time`` (the trades that completed last, as the audit trail
lists them); the challenger trains only on trades whose ``exit_time`` is strictly before the
earliest ``signal_time`` in that window, so no training label was unknown when any OOS trade
was decided (trades in between are purged): :func:`research.splits.latest_exits_split`, which
orders by exit time where :func:`research.splits.time_train_test_split` orders by signal time.
The trades are a :class:`research.dataset.ClosedTrades`, built by its ``from_audit``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from sklearn.base import clone

from research import schema as S
from research.dataset import ClosedTrades
from research.errors import InsufficientDataError, TooFewRowsError
from research.features import FEATURES, feature_names
from research.scoring import EnsembleScorer
from research.scoring.config import ScorerConfig, config_key
from research.splits import latest_exits_split
from research.stores.audit import FEATURES as FEATURES_COLUMN
from research.stores.audit import AuditTrail
from research.stores.registry import ModelRegistry, signing_key
from research.stores.rows import expand_features
from research.stores.state import StateStore, open_state

logger = logging.getLogger(__name__)

SOURCES = ("sql", "state")
_RECORD_FIX = {
    "sql": "record trades with their features (AuditTrail.record_trades(rows, "
    "features=build_features(...)))",
    "state": "record outcomes with their features (MLScorer.record_outcome(..., features=...)) "
    "and save the scorer (StateStore.save_scorer), or use source='sql'",
}
#: A trade whose features miss more than this share of the entry features (``available ==
#: "signal"``) is not used: the imputer would turn it into the median trade, which teaches the
#: model nothing.
MAX_MISSING_SHARE = 0.5


def challenger_model(**params) -> EnsembleScorer:
    """The default challenger with ``params`` changed: what :class:`RetrainConfig` clones.

    100 trees and 100 boosting iterations (the online scorer's default,
    :class:`~research.scoring.ScorerConfig`, has 200 of each) and out-of-fold calibration (an
    offline retrain has no decision-time scores for the prequential rule). E.g.
    ``RetrainConfig(model=challenger_model(n_estimators=300, random_state=1))``.
    """
    defaults = EnsembleScorer(n_estimators=100, gb_max_iter=100, calibration="oof")
    return defaults.set_params(**params)


@dataclass(frozen=True, kw_only=True, slots=True)
class RetrainConfig:
    """What one retrain run does (the pipeline's parameters).

    Attributes
    ----------
    strategy : str
        One of :data:`research.schema.STRATEGIES`.
    source : {'sql', 'state'}
        ``'sql'``: the audit trail's completed trades and their features; ``'state'``: the
        trades the online scorer keeps in ``ml:{strategy}:trades`` (they carry features too).
    oos_fraction : float
        Share (0-1) of the most recent completed trades, by ``exit_time``, held out.
    min_trades : int
        Usable completed trades needed to retrain at all.
    max_train_trades : int or None
        Train on the most recent N eligible trades only (None: all).
    min_window : int
        Trades the fair comparison window needs before the challenger may replace a champion.
    min_improvement : float
        Brier-score points the challenger must gain over the champion (0 = equal is enough).
    force : bool
        Publish the challenger whatever the comparison says.
    learn_from_timeouts : bool
        Seed: timeouts are neither trained on nor scored (False).
    threshold_rule : {'seed', 'rigorous'}
        :class:`research.thresholds.ThresholdConfig` rule for the ``qcal:*`` thresholds.
    model : EnsembleScorer
        The unfitted challenger, cloned for each fit (default :func:`challenger_model`: 100
        trees, 100 boosting iterations, out-of-fold calibration — an offline retrain has no
        decision-time scores).
    """

    strategy: str = "scalp"
    source: str = "sql"
    oos_fraction: float = 0.2
    min_trades: int = 200
    max_train_trades: int | None = None
    min_window: int = 50
    min_improvement: float = 0.0
    force: bool = False
    learn_from_timeouts: bool = False
    threshold_rule: str = "seed"
    model: EnsembleScorer = field(default_factory=challenger_model)

    def __post_init__(self) -> None:
        if self.strategy not in S.STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.strategy!r}. Fix: use one of {list(S.STRATEGIES)}."
            )
        if self.source not in SOURCES:
            raise ValueError(
                f"unknown source {self.source!r}. Fix: use 'sql' (the audit trail) or 'state' "
                "(the trades kept in the state store's ml:{strategy}:trades)."
            )
        if not 0 < self.oos_fraction < 1:
            raise ValueError(f"oos_fraction={self.oos_fraction} is not in (0, 1). Fix: e.g. 0.2.")
        least = ScorerConfig().min_trades
        if self.max_train_trades is not None and self.max_train_trades < least:
            raise ValueError(
                f"max_train_trades={self.max_train_trades} is below the {least} trades a model "
                f"needs (seed). Fix: pass None (all) or at least {least}."
            )
        if self.min_trades < 1 or self.min_window < 1 or not self.min_improvement >= 0:
            raise ValueError(
                "need min_trades >= 1, min_window >= 1 and min_improvement >= 0 (Brier points). "
                "Fix: e.g. min_trades=200, min_window=50, min_improvement=0.0."
            )
        if self.threshold_rule not in ("seed", "rigorous"):
            raise ValueError(
                f"threshold_rule {self.threshold_rule!r} unknown. Fix: 'seed' or 'rigorous'."
            )

    def __eq__(self, other: object) -> bool:  # the model by its spec, not its identity
        if type(other) is not type(self):
            return NotImplemented
        return config_key(self) == config_key(other)

    def __hash__(self) -> int:
        return hash(config_key(self))

    def as_record(self) -> dict:
        """The settings as plain data for the run record (``pipeline_runs.parameters``): every
        field, ``model`` as its class name and parameters."""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        params = self.model.get_params(deep=False)
        record["model"] = {"class": type(self.model).__name__, **params}
        return record


@dataclass(frozen=True, kw_only=True, slots=True)
class Stores:
    """The audit trail (SQL), the state store (Redis/SQLite) and the registry over both."""

    audit: AuditTrail
    state: StateStore
    registry: ModelRegistry

    def close(self) -> None:
        """Close the SQL connections (the state store's client closes with the process)."""
        self.audit.close()


def open_stores(
    *, database_url: str | None = None, state_url: str | None = None, namespace: str | None = None
) -> Stores:
    """Open and check every store the pipeline needs, before any long computation.

    ``database_url`` defaults to ``PHANTOMLAB_DATABASE_URL`` (:class:`research.config.Settings`),
    ``state_url`` to ``PHANTOMLAB_REDIS_URL`` and ``namespace`` to ``PHANTOMLAB_NAMESPACE``.
    Raises :class:`~research.stores.StoreUnavailable` (a server does not answer) or
    :class:`~research.stores.ModelIntegrityError` (no signing key), each with a fix.
    """
    signing_key()  # refuse now, not after fitting, when models could not be published
    audit = AuditTrail(database_url)  # runs the migrations: also the connectivity check
    state = open_state(state_url, namespace=namespace)
    state.ping()
    logger.info("retrain stores: %s, %s", audit.masked_url, state.url)
    return Stores(audit=audit, state=state, registry=ModelRegistry(state, audit=audit))


def _state_trades(store: StateStore, strategy: str) -> pd.DataFrame:
    """The online scorer's ``ml:{strategy}:trades`` as a frame (see ``MLScorer.to_state``)."""
    state = store.load_scorer(strategy)
    rows = [] if state is None else state["trades"]
    cols = [S.SIGNAL_ID, S.SIGNAL_TIME, S.EXIT_TIME, S.OUTCOME, S.PNL_PERCENT, FEATURES_COLUMN]
    frame = pd.DataFrame.from_records(rows, columns=cols)
    for name in (S.SIGNAL_TIME, S.EXIT_TIME):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    frame[S.STRATEGY] = strategy
    return frame.sort_values([S.EXIT_TIME, S.SIGNAL_ID], kind="stable", na_position="first")


def _feature_frame(values: pd.Series) -> pd.DataFrame:
    """Entry features from one mapping (or None) per trade; non-finite numbers -> NaN.

    Only ``available == "signal"`` features: ``after_entry`` lifecycle columns would leak the
    outcome.
    """
    names = feature_names(available="signal")
    frame, _ = expand_features(values.to_frame(FEATURES_COLUMN), FEATURES_COLUMN)
    frame = frame.reindex(columns=names)  # registry order; absent -> NaN
    for name in names:
        if FEATURES[name].dtype != "category":
            # an inf (division by a zero range, say) is as unknown as a NaN: let the imputer fill
            col = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            frame[name] = col.where(np.isfinite(col))
    return frame


def load_trades(stores: Stores, config: RetrainConfig) -> ClosedTrades:
    """Completed trades of ``config.strategy`` with usable features, in exit order.

    A trade is usable when it has an ``exit_time`` and a features mapping that holds at least
    half of the registered entry features (missing values in it are imputed by the ensemble).
    Timeouts are kept here (thresholds may use them); :func:`split_point_in_time` decides.

    Raises
    ------
    InsufficientDataError
        Fewer than ``config.min_trades`` usable trades, or only wins or only losses; the
        message counts what was found and why rows were unusable, and says how to fix it.
    """
    strategy = config.strategy
    if config.source == "sql":
        raw = stores.audit.completed_trades(strategy=strategy, with_features=True)
        where = f"the audit trail ({stores.audit.masked_url})"
    else:
        raw = _state_trades(stores.state, strategy)
        where = f"the state store ({stores.state.url}, {stores.state.keys.ml(strategy, 'trades')})"
    raw = raw.reset_index(drop=True)
    features = _feature_frame(raw[FEATURES_COLUMN])
    no_features = ~raw[FEATURES_COLUMN].map(lambda v: isinstance(v, Mapping)).to_numpy(bool)
    sparse = features.isna().mean(axis=1).to_numpy() > MAX_MISSING_SHARE
    no_exit = raw[S.EXIT_TIME].isna().to_numpy()
    usable = ~(no_features | sparse | no_exit)
    n_bare, n_sparse = int(no_features.sum()), int((sparse & ~no_features).sum())
    n_no_exit = int(no_exit.sum())
    if not usable.all():
        logger.warning(
            "%s: %d of %d completed trades unusable (%d no features, %d sparse, %d no exit time)",
            strategy,
            int((~usable).sum()),
            len(raw),
            n_bare,
            n_sparse,
            n_no_exit,
        )
    keep = np.flatnonzero(usable)
    data = ClosedTrades.from_audit(
        raw.drop(columns=FEATURES_COLUMN).iloc[keep],
        features.iloc[keep],
        strategy=strategy,
        learn_from_timeouts=config.learn_from_timeouts,
    )
    trainable = data.trainable
    n_train = int(trainable.sum())
    if n_train < config.min_trades:
        raise InsufficientDataError(
            f"{len(raw)} completed {strategy} trades in {where}; {len(data)} usable ("
            f"{n_bare} without features, {n_sparse} missing more than {MAX_MISSING_SHARE:.0%} "
            f"of them, {n_no_exit} without exit_time), {n_train} of them trainable (timeouts "
            f"excluded unless learn_from_timeouts); min_trades={config.min_trades}. "
            f"Fix: {_RECORD_FIX[config.source]}, wait for more completed trades, or lower "
            "min_trades."
        )
    wins = int(data.y[trainable].sum())
    if wins in (0, n_train):
        raise InsufficientDataError(
            f"all {n_train} trainable {strategy} trades in {where} are "
            f"{'losses' if wins == 0 else 'wins'}: a win probability needs both. Fix: wait for "
            "both wins and losses, or check that outcomes are recorded correctly."
        )
    logger.info("%s: %d usable completed trades from %s", strategy, len(data), where)
    return data


@dataclass(frozen=True, kw_only=True, slots=True)
class Split:
    """Positions (in :attr:`ClosedTrades.trades`) of the training rows and the OOS window.

    ``oos_start`` is the earliest ``signal_time`` in the window; every training row has
    ``exit_time < oos_start``. ``train_start``/``train_end`` are the first and last exit times
    of the training rows (``train_end`` = when the challenger's knowledge ends).
    """

    train: np.ndarray
    oos: np.ndarray
    oos_start: pd.Timestamp
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    purged: int
    capped: int

    def summary(self) -> pd.DataFrame:
        """One row per part: trades, and the time span each covers."""
        rows = [
            ("train", len(self.train), self.train_start, self.train_end),
            ("purged (outcome unknown at OOS start)", self.purged, None, None),
            ("left out (max_train_trades)", self.capped, None, None),
            ("out of sample", len(self.oos), self.oos_start, None),
        ]
        return pd.DataFrame(rows, columns=["part", "trades", "from", "until"]).set_index("part")


def split_point_in_time(data: ClosedTrades, config: RetrainConfig) -> Split:
    """Hold out the most recent ``oos_fraction`` of trades by exit time; purge; cap.

    Only :attr:`ClosedTrades.trainable` rows (not timeouts, unless the set was loaded with
    ``learn_from_timeouts``) enter either part. The OOS window is the last
    ``ceil(oos_fraction * n)`` of them in exit order; training rows are the earlier ones whose
    ``exit_time`` is strictly before the window's earliest ``signal_time``;
    ``max_train_trades`` then keeps the most recent of those
    (:func:`research.splits.latest_exits_split`).
    """
    trades = data.trades
    eligible = np.flatnonzero(data.trainable)
    try:
        hold = latest_exits_split(
            data.signal_times[eligible],
            data.exit_times[eligible],
            config.oos_fraction,
            max_train_size=config.max_train_trades,
        )
    except TooFewRowsError as exc:
        raise InsufficientDataError(
            f"{len(eligible)} trades cannot be split with oos_fraction={config.oos_fraction}. "
            "Fix: pick oos_fraction in (0, 1) leaving trades on both sides."
        ) from exc
    train, oos, capped = eligible[hold.train], eligible[hold.test], hold.capped
    oos_start = trades[S.SIGNAL_TIME].iloc[oos].min()
    if len(np.unique(data.y[train])) < 2:
        raise InsufficientDataError(
            f"the {len(train)} training trades (before {oos_start}) hold only one outcome. "
            "Fix: lower oos_fraction, raise max_train_trades, or wait for more trades."
        )
    exits = trades[S.EXIT_TIME].iloc[train]
    split = Split(
        train=train,
        oos=oos,
        oos_start=oos_start,
        train_start=exits.min(),
        train_end=exits.max(),
        purged=hold.purged,
        capped=capped,
    )
    logger.info(
        "split: %d train (until %s), %d purged, %d capped, %d OOS (from %s)",
        len(train),
        split.train_end,
        split.purged,
        capped,
        len(oos),
        oos_start,
    )
    return split


def fit_challenger(data: ClosedTrades, split: Split, config: RetrainConfig) -> EnsembleScorer:
    """Fit a clone of :attr:`RetrainConfig.model` on the training rows (purged calibration)."""
    rows = split.train
    trades = data.trades.iloc[rows]
    model = clone(config.model).fit(
        data.features.iloc[rows],
        data.y[rows],
        signal_times=trades[S.SIGNAL_TIME],
        exit_times=trades[S.EXIT_TIME],
    )
    logger.info(
        "%s challenger fitted on %d trades (%s calibration)",
        data.strategy,
        len(rows),
        model.calibration_,
    )
    return model
