"""Execution thresholds: EV break-even, per-context qscore buckets, and the fallback policy.

Scores are 0-100 = 100 x calibrated P(win); a signal is executed when ``score >= threshold``.
:class:`ThresholdPolicy` takes the threshold, in the seed's order, from 1. the
:class:`QscoreAdapter` bucket ``"session|volatility"`` of the signal (clamped to [60, 95]),
2. the EV break-even ``100 * p_min`` of :func:`ev_threshold`, 3. the static 70.

``ThresholdConfig.rule`` picks the seed or the rigorous rule (DESIGN section 6):

- ``'seed'``: each bucket with >= 20 win/loss trades gets its own isotonic P(win | qscore) and
  ``p_min = avg_loss / (avg_win + avg_loss)`` from its ``pnl_percent``; timeouts are left out.
- ``'rigorous'``: each bucket curve is shrunk toward the global (pooled) curve with weight
  ``n / (n + k)``; ``p_min`` is the break-even in R, **per signal, net of its own costs**:
  ``p_min = (L + cost_r) / (W + L)`` with ``W`` the mean gross R of winning trades and ``L`` the
  mean gross R given up by the others (break-even exits and timeouts count as not winning), so
  a signal is executed where its expected R net of costs, ``p W - (1 - p) L - cost_r``, is
  >= 0 — the seed's EV rule done in R net of costs. ``cost_r`` is the signal's registered
  feature (fees and slippage over its stop distance); ``ThresholdConfig.cost_r`` adds a
  constant cost per trade on top. A bucket
  whose P(win) never reaches a signal's break-even does **not** trade (threshold ``inf``), and
  learnt thresholds are clamped to ``[break-even - below_be, break-even + above_be]`` score
  points instead of the seed's fixed [60, 95], which on a calibrated scale would forbid every
  trade whose P(win) is below 60 %.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from research import schema as S
from research.breakeven import EVThreshold, Rule, ev_threshold
from research.bucket_curves import crossing, crossings, isotonic_knots, rigorous_bucket, seed_bucket
from research.errors import InsufficientDataError

logger = logging.getLogger(__name__)

BUCKETS: tuple[str, ...] = tuple(
    S.bucket_name(s, v) for s in S.SESSIONS for v in S.VOLATILITY_REGIMES
)
#: Columns of :attr:`QscoreAdapter.bucket_stats_` (indexed by ``bucket``), one place for
#: callers that show an empty table when no adapter could be fitted.
BUCKET_STATS_COLUMNS: tuple[str, ...] = ("n", "wins", "weight", "p_min", "threshold", "note")


@dataclass(frozen=True, kw_only=True, slots=True)
class ThresholdConfig:
    """Settings of threshold learning and of the policy (thresholds in score points, 0-100).

    ``rule`` ('seed' | 'rigorous', see the module docstring); ``min_records``: trades a bucket
    needs for its own curve under the seed rule (20); ``shrink_k``: pseudo-count k of the
    rigorous weight ``n / (n + k)``, trades (50); ``cost_r``: rigorous cost per trade in R not
    already in ``realized_rr`` (the simulator deducts its own fees and slippage); ``floor`` and
    ``ceiling`` clamp a learnt threshold under the seed rule (60, 95); ``below_be`` and
    ``above_be`` clamp it under the rigorous rule to ``[100 p_min - below_be, 100 p_min +
    above_be]`` (score points; 10 and 30); ``static_threshold``: last fallback (70);
    ``clamp_ev``: clamp the EV fallback as well.
    """

    rule: Rule = "seed"
    min_records: int = 20
    shrink_k: float = 50.0
    cost_r: float = 0.0
    floor: float = 60.0
    ceiling: float = 95.0
    static_threshold: float = 70.0
    clamp_ev: bool = True
    below_be: float = 10.0
    above_be: float = 30.0

    def __post_init__(self) -> None:
        if self.rule not in ("seed", "rigorous"):
            raise ValueError(f"rule must be 'seed' or 'rigorous', got {self.rule!r}")
        if self.min_records < 1 or not self.shrink_k > 0 or not self.cost_r >= 0:
            raise ValueError("need min_records >= 1, shrink_k > 0 and cost_r >= 0")
        if not 0 <= self.floor <= self.ceiling <= 100 or not 0 <= self.static_threshold <= 100:
            raise ValueError("need 0 <= floor <= ceiling <= 100 and static_threshold in [0, 100]")
        if min(self.below_be, self.above_be) < 0:
            raise ValueError("below_be and above_be are score points >= 0")


def bucket_key(context: Mapping) -> str:
    """``"session|volatility_regime"`` of ``context``; SchemaError with a fix for bad values."""
    missing = [k for k in (S.SESSION, S.VOLATILITY_REGIME) if k not in context]
    if missing:
        raise S.SchemaError(
            f"signal context lacks {missing}. Fix: pass a mapping with 'session' (one of "
            f"{list(S.SESSIONS)}) and 'volatility_regime' (one of {list(S.VOLATILITY_REGIMES)})."
        )
    regime = context[S.VOLATILITY_REGIME]
    if regime not in S.VOLATILITY_REGIMES:
        raise S.SchemaError(
            f"unknown volatility_regime {regime!r}. Fix: use one of {list(S.VOLATILITY_REGIMES)}."
        )
    return S.bucket_name(S.check_session(context[S.SESSION]), regime)


def _parse_bucket(bucket: str) -> str:
    session, _, regime = str(bucket).partition(S.BUCKET_SEP)
    return bucket_key({S.SESSION: session, S.VOLATILITY_REGIME: regime})


_DEFAULTS = ThresholdConfig()
#: The :class:`ThresholdConfig` fields a :class:`QscoreAdapter` takes as its parameters (the
#: others — ``static_threshold``, ``clamp_ev``, ``below_be``, ``above_be`` — are the policy's).
ADAPTER_PARAMS: tuple[str, ...] = ("rule", "min_records", "shrink_k", "cost_r", "floor", "ceiling")


class QscoreAdapter(BaseEstimator):
    """Per-context qscore thresholds over 4 sessions x 4 volatility regimes = 16 buckets.

    Parameters
    ----------
    rule, min_records, shrink_k, cost_r, floor, ceiling :
        As in :class:`ThresholdConfig` (same defaults; checked the same way when fitting).
        ``rule`` picks the seed or the rigorous (shrunk) variant;
        :meth:`from_config` takes them from a config.

    Attributes
    ----------
    thresholds_ : dict
        ``"session|volatility"`` -> the smallest qscore (0-100) whose fitted P(win) reaches
        ``p_min`` (linear between isotonic knots), for the buckets that have one.
    curves_, global_curve_ :
        Knots ``(qscore, P(win))`` per bucket and pooled (see :meth:`curve`).
    bucket_stats_ : DataFrame
        Per bucket ``n, wins, weight, p_min, threshold, note``.
    """

    def __init__(
        self,
        *,
        rule: Rule = _DEFAULTS.rule,
        min_records: int = _DEFAULTS.min_records,
        shrink_k: float = _DEFAULTS.shrink_k,
        cost_r: float = _DEFAULTS.cost_r,
        floor: float = _DEFAULTS.floor,
        ceiling: float = _DEFAULTS.ceiling,
    ) -> None:
        self.rule = rule
        self.min_records = min_records
        self.shrink_k = shrink_k
        self.cost_r = cost_r
        self.floor = floor
        self.ceiling = ceiling

    @classmethod
    def from_config(cls, config: ThresholdConfig) -> QscoreAdapter:
        """An unfitted adapter with ``config``'s :data:`ADAPTER_PARAMS`."""
        return cls(**{name: getattr(config, name) for name in ADAPTER_PARAMS})

    def fit(self, trades: pd.DataFrame, *, p_min: float | None = None) -> QscoreAdapter:
        """Learn the bucket thresholds from completed trades; returns ``self``.

        ``trades`` has one row per trade: ``qscore`` (0-100), ``outcome`` ('win' | 'loss' |
        'timeout'; censored rows, without outcome, are dropped), ``session``,
        ``volatility_regime`` and ``pnl_percent`` (seed) or ``realized_rr`` (rigorous).
        ``p_min`` (probability, 0-1) overrides the break-even of every bucket; by default it is
        the bucket's own (seed; the pooled one if the bucket lacks wins or losses) or the pooled
        EV in R net of ``cost_r`` (rigorous). Raises :class:`InsufficientDataError` when no
        completed trade is left or (rigorous) the pooled EV has no break-even point.
        """
        cfg = ThresholdConfig(**self.get_params())  # checks the parameters
        df = _completed_trades(trades, cfg.rule, p_min)
        q, won = df[S.QSCORE].to_numpy(np.float64), (df[S.OUTCOME] == "win").to_numpy(bool)
        keys = _bucket_keys(df)
        self.global_curve_ = isotonic_knots(q, won)
        pooled = p_min if p_min is not None else _pooled_p_min(df, cfg)
        self.thresholds_, self.curves_, rows = {}, {}, []
        for bucket in BUCKETS:
            mask = keys == bucket
            if cfg.rule == "rigorous":
                curve, weight, bucket_p, note = rigorous_bucket(
                    q[mask], won[mask], self.global_curve_, pooled, cfg.shrink_k
                )
            else:
                weight = np.nan
                curve, bucket_p, note = seed_bucket(
                    df[mask], pooled, given=p_min, min_records=cfg.min_records
                )
            thr = None
            if curve is not None:
                self.curves_[bucket] = curve
                if bucket_p is not None:
                    thr = crossing(*curve, bucket_p)
                    if thr is None:
                        note = "P(win) never reaches p_min"
                        logger.info("bucket %s: P(win) never reaches p_min=%.3f", bucket, bucket_p)
                    else:
                        self.thresholds_[bucket] = thr
            rows.append(
                (bucket, int(mask.sum()), int(won[mask].sum()), weight, bucket_p, thr, note)
            )
        columns = ["bucket", *BUCKET_STATS_COLUMNS]
        self.bucket_stats_ = pd.DataFrame(rows, columns=columns).set_index("bucket")
        logger.info(
            "%s rule: thresholds for %d of %d buckets from %d trades",
            *(cfg.rule, len(self.thresholds_), len(BUCKETS), len(df)),
        )
        return self

    def get_threshold(self, context: Mapping, floor=None, ceiling=None) -> float | None:
        """``max(floor, min(ceiling, bucket threshold))`` in score points, None without one.

        ``context`` needs ``session`` and ``volatility_regime`` (SchemaError otherwise);
        ``floor`` and ``ceiling`` default to the adapter's (seed: 60.0 and 95.0).
        """
        thr = self.thresholds_.get(bucket_key(context))
        if thr is None:
            return None
        floor = self.floor if floor is None else floor
        ceiling = self.ceiling if ceiling is None else ceiling
        return float(max(floor, min(ceiling, thr)))

    def curve(self, bucket: str | None, grid) -> np.ndarray:
        """Fitted P(win) of ``bucket`` (None: the global curve) at the qscores ``grid`` (0-100).

        Constant beyond the first and last knots (``out_of_bounds='clip'``). KeyError if the
        bucket has no curve (seed rule with too few trades, or restored by :meth:`from_dict`).
        """
        if bucket is None:
            knots = getattr(self, "global_curve_", None)
        else:
            knots = self.curves_.get(_parse_bucket(bucket))
        if knots is None:
            raise KeyError(f"bucket {bucket!r} has no fitted curve; fitted: {sorted(self.curves_)}")
        return np.interp(np.asarray(grid, dtype=np.float64), *knots)

    def to_dict(self) -> dict[str, float]:
        """The seed's ``qcal:{strategy}:thr`` value ``{bucket: threshold}``, JSON-ready."""
        return {k: float(v) for k, v in self.thresholds_.items()}

    @classmethod
    def from_dict(cls, data: Mapping, **params) -> QscoreAdapter:
        """An adapter holding the thresholds of :meth:`to_dict` (no curves); keys are checked.

        ``params``: the adapter's parameters (``floor`` and ``ceiling`` clamp
        :meth:`get_threshold`).
        """
        adapter = cls(**params)
        adapter.thresholds_ = {_parse_bucket(k): float(v) for k, v in data.items()}
        adapter.curves_ = {}
        return adapter


def _completed_trades(trades: pd.DataFrame, rule: Rule, p_min: float | None) -> pd.DataFrame:
    """The rows a fit learns from (with an outcome; timeouts only under the rigorous rule),
    checked: SchemaError for a missing column or a qscore outside [0, 100],
    InsufficientDataError when none is left."""
    column = S.REALIZED_RR if rule == "rigorous" else S.PNL_PERCENT
    needed = [S.QSCORE, S.OUTCOME, S.SESSION, S.VOLATILITY_REGIME, column]
    S.require_columns(trades, needed, "qscore trades")
    df = trades[trades[S.OUTCOME].notna()]
    df = df[(df[S.OUTCOME] != "timeout") | (rule == "rigorous")]
    q = df[S.QSCORE].to_numpy(np.float64)
    bad = df.index[~((q >= 0) & (q <= 100))]
    if len(bad):
        raise S.SchemaError(
            f"qscore outside [0, 100] or NaN at rows {S._rows_preview(bad)}. Fix: scores are "
            "100 x P(win); multiply probabilities by 100 and drop unscored rows."
        )
    if p_min is not None and not 0 <= p_min <= 1:
        raise ValueError(f"p_min is a probability in [0, 1], got {p_min}")
    if df.empty:
        raise InsufficientDataError("no completed trades to learn qscore thresholds from")
    return df


def _pooled_p_min(df: pd.DataFrame, cfg: ThresholdConfig) -> float | None:
    """The EV-based break-even of all trades (probability, 0-1): the seed's pooled ``p_min``
    (None when the trades lack wins or losses), or the rigorous one in R net of ``cost_r``
    at the typical (median) ``cost_r`` of the trades (raises InsufficientDataError)."""
    try:
        ev = ev_threshold(df, rule=cfg.rule, cost_r=cfg.cost_r)
    except InsufficientDataError:
        if cfg.rule == "rigorous":
            raise
        return None
    if cfg.rule == "rigorous" and S.COST_R in df:  # the stored thresholds_: at the typical cost
        return float(ev.p_min_at(np.nanmedian(df[S.COST_R].to_numpy(np.float64))))
    return ev.p_min


def _bucket_keys(df: pd.DataFrame) -> np.ndarray:
    """``"session|volatility"`` per row; SchemaError (with a fix) for an unknown value."""
    sessions = df[S.SESSION].astype(str).to_numpy().astype("U")
    regimes = df[S.VOLATILITY_REGIME].astype(str).to_numpy().astype("U")
    for s, v in set(zip(sessions, regimes, strict=True)):
        bucket_key({S.SESSION: s, S.VOLATILITY_REGIME: v})
    return np.char.add(np.char.add(sessions, S.BUCKET_SEP), regimes)


class ThresholdPolicy:
    """Seed priority: 1. qscore bucket, 2. EV-based, 3. static (70).

    Built from an optional fitted (or ``from_dict``) :class:`QscoreAdapter`, an optional
    :class:`EVThreshold` (its score clamped to ``[floor, ceiling]`` if ``config.clamp_ev``) and a
    :class:`ThresholdConfig` (``static_threshold``, ``floor``, ``ceiling``).
    """

    def __init__(self, adapter=None, ev: EVThreshold | None = None, *, config=None) -> None:
        self.adapter, self.ev = adapter, ev
        self.config = config if config is not None else ThresholdConfig()

    @classmethod
    def from_trades(cls, trades: pd.DataFrame, *, config=None) -> ThresholdPolicy:
        """Fit adapter and EV on ``trades``; a source that lacks data is logged and left out."""
        config = config if config is not None else ThresholdConfig()
        adapter = ev = None
        try:
            adapter = QscoreAdapter.from_config(config).fit(trades)
        except InsufficientDataError as exc:
            logger.warning("no qscore buckets: %s", exc)
        try:
            ev = ev_threshold(trades, rule=config.rule, cost_r=config.cost_r)
        except InsufficientDataError as exc:
            logger.warning("no EV threshold: %s", exc)
        return cls(adapter, ev, config=config)

    def threshold(self, context: Mapping) -> tuple[float, str]:
        """``(threshold in score points, source)``; a missing bucket falls through, an unknown
        session or volatility regime raises SchemaError. Under the rigorous rule ``context``
        may carry the signal's ``cost_r`` (R; missing = 0) and the threshold may be ``inf``
        (the bucket never breaks even: do not trade)."""
        bucket_key(context)
        cfg = self.config
        if cfg.rule == "rigorous":
            thr, source = self.thresholds(pd.DataFrame([dict(context)]))
            return float(thr[0]), str(source[0])
        return self._seed_threshold(context)

    def thresholds(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Threshold (score points, ``inf`` = never) and source of every row of ``features``.

        Needs ``session`` and ``volatility_regime`` columns; the rigorous rule also reads
        ``cost_r`` (R per trade; a missing column or value counts as 0, i.e. a gross decision).
        The seed rule gives each bucket its one clamped threshold, as :meth:`threshold` does.
        """
        S.require_columns(features, [S.SESSION, S.VOLATILITY_REGIME], "features")
        keys = _bucket_keys(features)
        n, cfg = len(features), self.config
        if cfg.rule == "seed":
            table = {}
            for key in pd.unique(keys):
                session, _, regime = key.partition(S.BUCKET_SEP)
                table[key] = self._seed_threshold({S.SESSION: session, S.VOLATILITY_REGIME: regime})
            return (
                np.array([table[k][0] for k in keys], dtype=np.float64),
                np.array([table[k][1] for k in keys], dtype=object),
            )
        thr = np.full(n, float(cfg.static_threshold))
        source = np.full(n, "static", dtype=object)
        if self.ev is None:
            return thr, source
        cost = features[S.COST_R].to_numpy(np.float64) if S.COST_R in features else np.zeros(n)
        p_min = self.ev.p_min_at(cost)  # the EV already carries config.cost_r
        thr[:], source[:] = 100.0 * p_min, "ev"
        adapter = self.adapter
        if adapter is None:
            return thr, source
        for key in pd.unique(keys):
            rows = np.flatnonzero(keys == key)
            if key in adapter.curves_:
                t = crossings(*adapter.curves_[key], p_min[rows])
            elif key in adapter.thresholds_:  # restored from qcal:*:thr, no curve
                t = np.full(len(rows), adapter.thresholds_[key])
            else:
                continue
            never = np.isinf(t)
            be = 100.0 * p_min[rows]
            t = np.clip(t, be - cfg.below_be, be + cfg.above_be)
            thr[rows], source[rows] = np.where(never, np.inf, t), "bucket"
        return thr, source

    def _seed_threshold(self, context: Mapping) -> tuple[float, str]:
        cfg = self.config
        if self.adapter is not None:
            thr = self.adapter.get_threshold(context, cfg.floor, cfg.ceiling)
            if thr is not None:
                return thr, "bucket"
        if self.ev is not None:
            thr = self.ev.score
            thr = max(cfg.floor, min(cfg.ceiling, thr)) if cfg.clamp_ev else thr
            return float(thr), "ev"
        return float(cfg.static_threshold), "static"

    def decide(self, score: float, context: Mapping) -> tuple[float, str]:
        """``(threshold, source)`` for a signal scored ``score`` (0-100); the caller executes it
        when ``score >= threshold`` and tracks it as a phantom otherwise (seed)."""
        if not 0 <= score <= 100:
            raise ValueError(f"score must be in [0, 100] (100 x P(win)), got {score}")
        thr, source = self.threshold(context)
        logger.debug("score %.2f vs %s threshold %.2f", score, source, thr)
        return thr, source
