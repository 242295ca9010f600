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

The batching that makes it fast, and why it is exact, is explained in
:mod:`research.replay_loop`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from research import schema as S
from research.analysis.uplift import filter_uplift, replay_summary
from research.config import SimulatorConfig
from research.costs import CostModel, apply_costs, signal_costs
from research.dataset import Study
from research.progress import tqdm
from research.replay_loop import StrategyLoop
from research.scoring.config import ScorerConfig
from research.scoring.online import MLScorer
from research.study import run_signals_and_phantoms
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


#: Columns of :attr:`ReplayResult.threshold_fits`.
FIT_COLUMNS = [
    "strategy",
    S.THRESHOLD_VERSION,
    "at",
    "n_trades",
    "data_until",
    "buckets",
    "scores",
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
    study: Study | None = None,
    model_factory: Callable | None = None,
    progress: bool = True,
) -> ReplayResult:
    """Run the online loop over the history of ``candles`` for ``strategies``.

    Parameters
    ----------
    candles : mapping of symbol -> candles
        The market ``study`` was computed on (its frames hold every bar outcome the loop needs).
    strategies : sequence of str
    config : ReplayConfig, optional
    study : Study, optional
        Signals, features and phantom outcomes computed on ``candles`` (e.g. a study of your
        own signals, :func:`research.pipeline.study_from_signals`); by default
        :func:`research.study.run_signals_and_phantoms` of ``candles`` and ``strategies``.
    model_factory : callable, optional
        Unfitted model for each retrain (default: the scorer config's ensemble).
    progress : bool
        Show a progress bar over the events.

    Raises
    ------
    ValueError
        A strategy the study (or, without one, the built-in set) does not know.
    """
    config = config or ReplayConfig()
    _check_strategies(study, strategies)
    if study is None:
        study = run_signals_and_phantoms(
            candles, strategies, simulator=config.simulator, progress=progress
        )
    signals, features, phantom, executed = _replay_inputs(study, strategies, config)
    # One uniform per signal, drawn in time order: the same draws however the loop batches.
    draws = np.random.default_rng(config.seed).random(len(signals))
    bar = tqdm(total=2 * len(signals), desc="replay", unit="event", disable=not progress)
    parts, loops = [], []
    for strategy in strategies:
        rows = np.flatnonzero((signals[S.STRATEGY] == strategy).to_numpy())
        loop = StrategyLoop(strategy, config, model_factory, bar)
        parts.append(
            loop.run(
                signals.iloc[rows],
                features.iloc[rows],
                phantom.iloc[rows],
                executed.iloc[rows],
                draws[rows],
            )
        )
        loops.append(loop)
    bar.close()
    return _result(parts, loops, config)


def _check_strategies(study: Study | None, strategies: Sequence[str]) -> None:
    """Every strategy asked for is known: built in, or in ``study``'s own signals (else a
    fix-it error)."""
    known = list(S.STRATEGIES)
    if study is not None:  # a study of a user's own signals: its strategy names too
        known += sorted(set(study.signals[S.STRATEGY]) - set(S.STRATEGIES))
    unknown = sorted(set(strategies) - set(known))
    if unknown:
        raise ValueError(f"unknown strategies {unknown}. Fix: choose from {known}.")


def _replay_inputs(
    study: Study, strategies: Sequence[str], config: ReplayConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Signals of ``strategies`` in time order and, row-aligned with them, their features (with
    the cost in R this replay charges), phantom outcomes (gross) and executed outcomes (net)."""
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
    return signals, features, phantom, executed


def _result(parts: list[pd.DataFrame], loops: list[StrategyLoop], config) -> ReplayResult:
    """Gather the strategies' decisions, retrains and refits; add the summary and uplift."""
    decisions = pd.concat(parts).sort_values([S.SIGNAL_TIME, S.SIGNAL_ID], kind="stable")
    decisions = decisions.reset_index(drop=True)
    retrains = [row for loop in loops for row in loop.retrains]
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
    fits = [row for loop in loops for row in loop.fits]
    return ReplayResult(
        decisions=decisions,
        retrains=retrain_frame,
        threshold_fits=pd.DataFrame(fits, columns=FIT_COLUMNS),
        summary=replay_summary(decisions),
        uplift=uplift,
        scorers={loop.strategy: loop.scorer for loop in loops},
        policies={loop.strategy: loop.policy for loop in loops},
        config=config,
    )
