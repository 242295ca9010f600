"""Replay: the seed's online loop (score -> decide -> execute | phantom -> learn) over history.

For every strategy an :class:`~research.scoring.online.MLScorer` and a
:class:`~research.thresholds.ThresholdPolicy` live through the signals in event time:

* at each signal, the score comes from the model trained only on outcomes whose ``exit_time``
  is before that signal (strictly: an outcome closing at the signal's own timestamp is not yet
  known), and the threshold from trades closed before it, in the seed's order bucket -> EV ->
  static 70 — by default the rigorous, cost-aware rule (expected R net of the signal's own
  costs >= 0, curves fitted on the model in force's out-of-fold scores), with the seed's rule
  computed beside it (``threshold_seed``, ``passed_seed``);
* ``score >= threshold`` executes the trade (the seed's "real position": the same bars, net of
  the venue's costs, ``was_executed=True``); otherwise it is a phantom with its hypothetical
  P&L. Every signal also carries ``rr_gross`` and ``rr_if_executed`` (net), so every verdict
  compares like with like. With ``exploration > 0`` a share of below-threshold signals is executed at
  random and the propensity ``p_execute`` is logged, so the no-filter policy stays estimable;
* when an outcome closes it is fed back (``record_outcome``), which retrains by the seed's rule;
  the thresholds are refitted on the same schedule (``qcal:{strategy}:last_train_count``).

**Why batching is exact.** Bar outcomes do not depend on the decision (costs change P&L, not
the exit bar), and the retrain trigger counts outcomes only, so the model and the thresholds can
change only at known outcome events. Signals are therefore queued and scored in one batch by the
model in force just before the next change — the same numbers as scoring them one by one
(``tests/test_replay.py`` checks this against a plain per-signal loop), at a fraction of the
cost. Ties: at equal timestamps signals are decided before outcomes are learnt.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from research import schema as S
from research.analysis.uplift import filter_uplift, replay_summary
from research.config import ScorerConfig, SimulatorConfig
from research.costs import CostModel, apply_costs, signal_costs
from research.pipeline import StudyData, run_signals_and_phantoms
from research.progress import tqdm
from research.scoring.online import MLScorer
from research.thresholds import ThresholdConfig, ThresholdPolicy

logger = logging.getLogger(__name__)


RETRAIN_COLUMNS = [
    "strategy",
    S.MODEL_VERSION,
    "at",
    "n_trades",
    "train_until",
    "fit_path",
    "calibration",
    "seconds",
]


def _rigorous() -> ThresholdConfig:
    return ThresholdConfig(rule="rigorous")


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayConfig:
    """Settings of a replay.

    Attributes
    ----------
    scorer : ScorerConfig
        The online scorer's rules (retrain every 50 outcomes after 30, as the seed). Retrains
        are cheap — prequential calibration, a warm forest and net (``scorer.incremental``) —
        so the seed's cadence is the default; ``retrains`` records each one's path and cost.
    retrain_every : mapping of strategy -> int, optional
        Per-strategy override of ``scorer.retrain_every`` (a rare strategy, e.g. range, needs a
        shorter cadence to train at all).
    thresholds : ThresholdConfig
        The decision rule in force. Default: the rigorous rule — execute where expected R net
        of the signal's own costs is >= 0, with bucket curves fitted on the scores of the model
        in force (:mod:`research.thresholds`). The seed rule (fixed 60/95 clamp, decision-time
        scores) is always computed beside it (``threshold_seed``, ``passed_seed``).
    simulator : SimulatorConfig
        Bar rules of every trade (phantoms carry their gross R, as in the seed).
    costs : CostModel
        Venue costs per symbol (:mod:`research.costs`; default crypto perpetual, FX pairs by
        spread). Executed trades pay them; ``rr_if_executed`` is every signal's R net of them.
    exploration : float
        Share (0-1) of below-threshold signals executed anyway; 0 turns exploration off.
    threshold_every : int, optional
        Closed trades between threshold refits; default the strategy's retrain cadence. A
        retrain always refits the thresholds too (they belong to the model in force).
    seed : int
        Seeds the exploration draws and the bootstrap (the models use ``scorer.random_state``).
    n_boot, block, confidence :
        Block bootstrap of the uplift (:func:`research.analysis.uplift.filter_uplift`).
    """

    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    retrain_every: Mapping[str, int] = field(default_factory=dict, hash=False)
    thresholds: ThresholdConfig = field(default_factory=_rigorous)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    costs: CostModel = field(default_factory=CostModel)
    exploration: float = 0.0
    threshold_every: int | None = None
    seed: int = 0
    n_boot: int = 1000
    block: int | None = None
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(
                f"exploration must be a share in [0, 1], got {self.exploration}. "
                "Fix: e.g. exploration=0.05 executes 5 % of below-threshold signals."
            )
        if self.threshold_every is not None and self.threshold_every < 1:
            raise ValueError(f"threshold_every must be >= 1, got {self.threshold_every}")
        bad = {k: v for k, v in self.retrain_every.items() if not int(v) >= 1}
        if bad:
            raise ValueError(f"retrain_every must be >= 1 outcomes, got {bad}")

    def scorer_for(self, strategy: str) -> ScorerConfig:
        """The scorer config of ``strategy`` (its cadence override applied)."""
        every = self.retrain_every.get(strategy)
        return (
            self.scorer
            if every is None
            else dataclasses.replace(self.scorer, retrain_every=int(every))
        )

    def refit_every(self, strategy: str) -> int:
        """Closed trades between threshold refits of ``strategy``."""
        return self.threshold_every or self.scorer_for(strategy).retrain_every


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayResult:
    """What a replay produced.

    Attributes
    ----------
    decisions : DataFrame
        One row per signal in time order: ids, ``ml_score`` with ``score_source`` and
        ``model_version``, ``threshold`` with ``threshold_source`` and ``threshold_version``,
        ``passed``, ``explored``, ``was_executed``, ``p_execute``, and the outcome recorded
        (executed: net of costs; phantom: hypothetical) plus ``rr_if_executed``.
    retrains : DataFrame
        One row per model version: ``strategy``, ``model_version``, ``at`` (event time),
        ``n_trades``, ``train_until`` (latest ``exit_time`` in its training rows),
        ``fit_path`` (``'full'``: forest regrown; ``'warm'``: 10 % of its trees renewed),
        ``calibration`` (``'prequential'``: on decision-time scores; ``'oof'``: K-fold) and
        ``seconds`` (wall time of the retrain and its outcomes, a measurement, not a result).
    threshold_fits : DataFrame
        One row per threshold refit: ``strategy``, ``threshold_version``, ``at``, ``n_trades``,
        ``data_until``, ``buckets`` (number of buckets with their own threshold).
    summary : DataFrame
        :func:`research.analysis.uplift.replay_summary` of the decisions.
    uplift : DataFrame
        :func:`research.analysis.uplift.filter_uplift` plus the number of retrains.
    scorers : dict
        The final :class:`MLScorer` per strategy (its state is what a store would persist).
    policies : dict
        The final :class:`ThresholdPolicy` per strategy.
    config : ReplayConfig
        The settings it ran with (the verdict states its cost basis from them).
    """

    decisions: pd.DataFrame
    retrains: pd.DataFrame
    threshold_fits: pd.DataFrame
    summary: pd.DataFrame
    uplift: pd.DataFrame
    scorers: dict[str, MLScorer]
    policies: dict[str, ThresholdPolicy]
    config: ReplayConfig | None = None


def replay(
    candles: Mapping[str, pd.DataFrame],
    strategies: Sequence[str] = S.STRATEGIES,
    config: ReplayConfig | None = None,
    *,
    study: StudyData | None = None,
    model_factory: Callable | None = None,
    progress: bool = True,
) -> ReplayResult:
    """Run the online loop over the history of ``candles`` for ``strategies``.

    Parameters
    ----------
    candles : mapping of symbol -> candles
    strategies : sequence of str
    config : ReplayConfig, optional
    study : StudyData, optional
        Signals, features and phantom outcomes already computed on ``candles`` (e.g. by
        :func:`research.pipeline.run_signals_and_phantoms`); computed here when omitted.
    model_factory : callable, optional
        Unfitted model for each retrain (default: the scorer config's ensemble).
    progress : bool
        Show a progress bar over the events.
    """
    config = config or ReplayConfig()
    known = list(S.STRATEGIES)
    if study is not None:  # a study of a user's own signals: its strategy names too
        known += sorted(set(study.signals[S.STRATEGY]) - set(S.STRATEGIES))
    unknown = sorted(set(strategies) - set(known))
    if unknown:
        raise ValueError(f"unknown strategies {unknown}. Fix: choose from {known}.")
    if study is None:
        study = run_signals_and_phantoms(
            candles, strategies, simulator=config.simulator, progress=progress
        )
    keep = study.signals[S.STRATEGY].isin(list(strategies)).to_numpy()
    signals = study.signals.loc[keep].sort_values(S.SIGNAL_TIME, kind="stable")
    signals = signals.reset_index(drop=True)
    phantom = study.outcomes.set_index(S.SIGNAL_ID).loc[signals[S.SIGNAL_ID]].reset_index()
    cost = signal_costs(signals, config.costs)
    executed = apply_costs(phantom, cost)  # the same bars, net of the venue's costs
    # the model sees the costs this replay charges (the study may have used other ones)
    features = study.features.loc[signals[S.SIGNAL_ID]].assign(
        **{S.COST_R: cost[S.COST_R].to_numpy()}
    )
    # One uniform per signal, drawn in time order: the same draws however the loop batches.
    draws = np.random.default_rng(config.seed).random(len(signals))

    bar = tqdm(total=2 * len(signals), desc="replay", unit="event", disable=not progress)
    parts, retrains, fits, scorers, policies = [], [], [], {}, {}
    for strategy in strategies:
        rows = np.flatnonzero((signals[S.STRATEGY] == strategy).to_numpy())
        loop = _StrategyLoop(strategy, config, model_factory, bar)
        parts.append(
            loop.run(
                signals.iloc[rows],
                features.iloc[rows],
                phantom.iloc[rows],
                executed.iloc[rows],
                draws[rows],
            )
        )
        retrains += loop.retrains
        fits += loop.fits
        scorers[strategy], policies[strategy] = loop.scorer, loop.policy
    bar.close()

    decisions = pd.concat(parts).sort_values([S.SIGNAL_TIME, S.SIGNAL_ID], kind="stable")
    decisions = decisions.reset_index(drop=True)
    retrain_frame = pd.DataFrame(retrains, columns=RETRAIN_COLUMNS)
    uplift = filter_uplift(
        decisions,
        n_boot=config.n_boot,
        block=config.block,
        confidence=config.confidence,
        seed=config.seed,
    )
    counts = retrain_frame.groupby("strategy").size()
    uplift["retrains"] = [
        int(counts.get(k, 0)) if k != "all" else len(retrain_frame) for k in uplift.index
    ]
    logger.info(
        "replay: %d signals, %d executed, %d retrains",
        len(decisions),
        int(decisions[S.WAS_EXECUTED].sum()),
        len(retrain_frame),
    )
    return ReplayResult(
        decisions=decisions,
        retrains=retrain_frame,
        threshold_fits=pd.DataFrame(
            fits,
            columns=[
                "strategy",
                S.THRESHOLD_VERSION,
                "at",
                "n_trades",
                "data_until",
                "buckets",
                "scores",
            ],
        ),
        summary=replay_summary(decisions),
        uplift=uplift,
        scorers=scorers,
        policies=policies,
        config=config,
    )


def threshold_trades(
    scorer: MLScorer, closed: list[dict], gross_rr: Mapping[str, float], rule: str
) -> tuple[pd.DataFrame, str]:
    """The trades a threshold refit learns from, and which scores they carry.

    Under the rigorous rule, once the scorer has a model with out-of-fold scores
    (:attr:`EnsembleScorer.oof_scores_`), the model's own training rows with the score *its*
    rule gave each of them out of fold (``'oof'``): thresholds then belong to the model in
    force instead of mixing heuristic and older models' scores. Otherwise (seed rule, no model
    yet, a model without them) every closed trade with the score it was decided on
    (``'decision'``). R is gross (``gross_rr`` by ``signal_id``): costs enter per signal.
    """
    oof = getattr(scorer.model, "oof_scores_", None)
    if rule == "rigorous" and oof is not None and np.isfinite(oof).sum() >= 20:
        rows = []
        for trade, q in zip(scorer.trades[: len(oof)], oof, strict=True):  # its training rows
            if np.isfinite(q):
                f = trade["features"]
                rows.append(
                    {
                        S.QSCORE: float(q),
                        S.OUTCOME: trade[S.OUTCOME],
                        S.SESSION: f.get(S.SESSION),
                        S.VOLATILITY_REGIME: f.get(S.VOLATILITY_REGIME),
                        S.COST_R: f.get(S.COST_R),
                        S.REALIZED_RR: gross_rr[trade[S.SIGNAL_ID]],
                        S.PNL_PERCENT: trade[S.PNL_PERCENT],
                    }
                )
        return pd.DataFrame(rows), "oof"
    return pd.DataFrame(closed), "decision"


class _StrategyLoop:
    """The event loop of one strategy (strategies share nothing, seed keys are per strategy)."""

    def __init__(self, strategy, config: ReplayConfig, model_factory, bar) -> None:
        self.strategy, self.config, self.bar = strategy, config, bar
        # the replay scores in batches: an ONNX export per retrain would never be used
        scorer_config = dataclasses.replace(config.scorer_for(strategy), fast_path=False)
        self.scorer = MLScorer(strategy, config=scorer_config, model_factory=model_factory)
        self.policy = ThresholdPolicy(config=config.thresholds)
        self.seed_config = dataclasses.replace(config.thresholds, rule="seed")
        self.seed_policy = ThresholdPolicy(config=self.seed_config)
        self.threshold_version = 0
        self.qcal_last = 0  # closed trades at the last threshold refit
        self.closed: list[dict] = []  # every closed trade, timeouts included (threshold data)
        self.retrains: list[tuple] = []
        self.fits: list[tuple] = []

    def run(self, sig, feats, phantom, executed, draws) -> pd.DataFrame:
        n = len(sig)
        self.sig, self.feats, self.draws = sig.reset_index(drop=True), feats, draws
        self.phantom, self.executed = (
            phantom.reset_index(drop=True),
            executed.reset_index(drop=True),
        )
        self.records = feats.to_dict("records")
        cols = (S.SIGNAL_ID, S.OUTCOME, S.PNL_PERCENT, S.REALIZED_RR, S.EXIT_TIME)
        self.phantom_cols = {c: self.phantom[c].to_numpy() for c in cols}
        self.executed_cols = {c: self.executed[c].to_numpy() for c in cols}
        self.gross_rr = dict(
            zip(
                self.phantom_cols[S.SIGNAL_ID],
                self.phantom_cols[S.REALIZED_RR].astype(float),
                strict=True,
            )
        )
        self.t_sig_ts = self.sig[S.SIGNAL_TIME].to_numpy()
        self.out = {k: np.empty(n, dtype=object) for k in (S.SCORE_SOURCE, S.THRESHOLD_SOURCE)}
        self.num = {
            k: np.full(n, np.nan)
            for k in (S.ML_SCORE, S.THRESHOLD, S.P_EXECUTE, S.THRESHOLD_SEED, S.DECISION_RAW)
        }
        self.ints = {k: np.zeros(n, dtype=np.int64) for k in (S.MODEL_VERSION, S.THRESHOLD_VERSION)}
        self.flags = {
            k: np.zeros(n, dtype=bool)
            for k in (S.PASSED, S.EXPLORED, S.WAS_EXECUTED, S.PASSED_SEED)
        }

        t_sig = pd.DatetimeIndex(self.sig[S.SIGNAL_TIME]).as_unit("ns").asi8
        closed = ~self.phantom[S.CENSORED].to_numpy(bool)
        t_exit = pd.DatetimeIndex(self.phantom[S.EXIT_TIME]).as_unit("ns").asi8
        if (closed & (t_exit <= t_sig)).any():
            raise AssertionError("an outcome closes at or before its own signal")
        # Outcome events in exit order (ties: earlier signal first, as the tracker closes them).
        order = np.lexsort((np.arange(n), t_sig, t_exit))
        order = order[closed[order]]
        learnable = (self.phantom[S.OUTCOME] != "timeout").to_numpy()
        if self.scorer.config.learn_from_timeouts:
            learnable = np.ones(n, dtype=bool)

        decided = i = 0  # signals [0, decided) have a decision; [decided, i) are queued
        queued: list[int] = []  # closed outcomes not yet learnt (positions into sig)
        n_learn = 0
        thr_every = self.config.refit_every(self.strategy)
        min_trades = self.scorer.config.min_trades
        for k in order:
            while i < n and t_sig[i] <= t_exit[k]:  # signals first on equal timestamps
                i += 1
            queued.append(int(k))
            n_learn += int(learnable[k])
            refit_due = (
                len(self.closed) + len(queued) - self.qcal_last >= thr_every
                and len(self.closed) + len(queued) >= min_trades
            )
            if n_learn >= self.scorer.records_until_retrain() or refit_due:
                decided = self._decide(decided, i)
                self._learn(queued, refit_due)
                queued, n_learn = [], 0
        decided = self._decide(decided, n)
        self._learn(queued, False)
        return self._frame()

    # ---------------------------------------------------------------- decisions
    def _decide(self, lo: int, hi: int) -> int:
        """Score and decide signals ``[lo, hi)`` with the model and thresholds in force now."""
        if hi <= lo:
            return lo
        feats = self.feats.iloc[lo:hi]
        scores, source, raw = self.scorer.score_frame(feats, return_raw=True)
        thr, thr_source = self.policy.thresholds(feats)
        passed = scores >= thr
        eps = self.config.exploration
        explored = ~passed & (self.draws[lo:hi] < eps)
        sl = slice(lo, hi)
        self.num[S.ML_SCORE][sl], self.num[S.THRESHOLD][sl] = scores, thr
        self.num[S.DECISION_RAW][sl] = raw
        self.num[S.THRESHOLD_SEED][sl] = self.seed_policy.thresholds(feats)[0]
        self.flags[S.PASSED_SEED][sl] = scores >= self.num[S.THRESHOLD_SEED][sl]
        self.num[S.P_EXECUTE][sl] = np.where(passed, 1.0, eps)
        self.out[S.SCORE_SOURCE][sl] = source
        self.out[S.THRESHOLD_SOURCE][sl] = thr_source
        self.ints[S.MODEL_VERSION][sl] = self.scorer.model_version
        self.ints[S.THRESHOLD_VERSION][sl] = self.threshold_version
        self.flags[S.PASSED][sl], self.flags[S.EXPLORED][sl] = passed, explored
        self.flags[S.WAS_EXECUTED][sl] = passed | explored
        self.bar.update(hi - lo)
        return hi

    # ---------------------------------------------------------------- learning
    def _learn(self, queued: list[int], refit: bool) -> None:
        """Feed closed outcomes back (retraining by the seed's rule), then refit thresholds."""
        version, started = self.scorer.model_version, time.perf_counter()
        cols = (S.SIGNAL_ID, S.OUTCOME, S.PNL_PERCENT, S.REALIZED_RR, S.EXIT_TIME)
        for k in queued:
            src = self.executed_cols if self.flags[S.WAS_EXECUTED][k] else self.phantom_cols
            sid, outcome, pnl, rr, exit_time = (src[c][k] for c in cols)
            feats = self.records[k]
            self.scorer.record_outcome(
                {S.SIGNAL_ID: sid, S.SIGNAL_TIME: self.t_sig_ts[k]},
                str(outcome),
                float(pnl),
                features=feats,
                exit_time=exit_time,
                decision_raw=self.num[S.DECISION_RAW][k],
            )
            self.closed.append(
                {
                    S.QSCORE: self.num[S.ML_SCORE][k],
                    S.OUTCOME: str(outcome),
                    S.SESSION: str(feats[S.SESSION]),
                    S.VOLATILITY_REGIME: str(feats[S.VOLATILITY_REGIME]),
                    S.PNL_PERCENT: float(pnl),
                    S.REALIZED_RR: float(self.gross_rr[sid]),
                    S.COST_R: feats.get(S.COST_R),
                    S.EXIT_TIME: exit_time,
                }
            )
        self.bar.update(len(queued))
        at = self.closed[-1][S.EXIT_TIME] if queued else None
        retrained = self.scorer.model_version != version
        if retrained:
            fit = self.scorer.last_fit
            self.retrains.append(
                (
                    self.strategy,
                    self.scorer.model_version,
                    at,
                    self.scorer.last_train_count,
                    self.scorer.train_until,
                    fit.get("path"),
                    fit.get("calibration"),
                    time.perf_counter() - started,
                )
            )
        if refit or (retrained and len(self.closed) >= self.scorer.config.min_trades):
            self._refit(at)

    def _refit(self, at) -> None:
        """Refit the rule in force (on the model's own scores) and the seed rule beside it."""
        rule = self.config.thresholds.rule
        trades, scores = threshold_trades(self.scorer, self.closed, self.gross_rr, rule)
        self.policy = ThresholdPolicy.from_trades(trades, config=self.config.thresholds)
        if rule == "seed":
            self.seed_policy = self.policy
        else:
            self.seed_policy = ThresholdPolicy.from_trades(
                pd.DataFrame(self.closed), config=self.seed_config
            )
        self.threshold_version += 1
        self.qcal_last = len(self.closed)
        n_buckets = len(self.policy.adapter.to_dict()) if self.policy.adapter else 0
        self.fits.append(
            (
                self.strategy,
                self.threshold_version,
                at,
                len(trades),
                self.closed[-1][S.EXIT_TIME],
                n_buckets,
                scores,
            )
        )

    def _frame(self) -> pd.DataFrame:
        ids = self.sig[[S.SIGNAL_ID, S.STRATEGY, S.SYMBOL, S.SIDE, S.SIGNAL_TIME]]
        executed = self.flags[S.WAS_EXECUTED]  # the outcome recorded: net of costs if executed
        pick = {
            col: self.executed[col].where(executed, self.phantom[col])
            for col in (S.EXIT_TIME, S.EXIT_REASON, S.OUTCOME, S.PNL_PERCENT, S.REALIZED_RR)
        }
        return pd.concat(
            [
                ids,
                pd.DataFrame({**self.num, **self.out, **self.ints, **self.flags}),
                pd.DataFrame(pick),
                pd.DataFrame(
                    {
                        S.RR_IF_EXECUTED: self.executed[S.REALIZED_RR].to_numpy(),
                        S.RR_GROSS: self.phantom[S.REALIZED_RR].to_numpy(),
                        S.COST_R: self.feats[S.COST_R].to_numpy(np.float64),
                        S.CENSORED: self.phantom[S.CENSORED].to_numpy(bool),
                    }
                ),
            ],
            axis=1,
        )
