"""The event loop of one strategy in a replay (:func:`research.replay.replay`).

**Why batching is exact.** Bar outcomes do not depend on the decision (costs change P&L, not
the exit bar), and the retrain trigger counts outcomes only, so the model and the thresholds can
change only at known outcome events. Signals are therefore queued and scored in one batch by the
model in force just before the next change — the same numbers as scoring them one by one
(``tests/test_replay.py`` checks this against a plain per-signal loop), at a fraction of the
cost. Ties: at equal timestamps signals are decided before outcomes are learnt.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd

from research import schema as S
from research.scoring.online import MLScorer
from research.thresholds import ThresholdPolicy


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


class StrategyLoop:
    """The event loop of one strategy (strategies share nothing, seed keys are per strategy).

    Parameters
    ----------
    strategy : str
    config : research.replay.ReplayConfig
    model_factory : callable or None
        Unfitted model for each retrain (None: the scorer config's ensemble).
    bar : tqdm
        Progress bar, advanced by one per decision and one per outcome learnt.

    :meth:`run` returns the decisions frame; ``retrains`` and ``fits`` collect one tuple per
    retrain and per threshold refit, ``scorer`` and ``policy`` are the final state.
    """

    def __init__(self, strategy, config, model_factory, bar) -> None:
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
