"""A plain reference of the replay: one event at a time, one signal scored at a time.

The oracle of ``tests/test_replay.py`` and the baseline of ``benchmarks/bench_replay.py``.
It spells the online loop out exactly as a live bot would run it — no queues, no batches — so
that agreement with :func:`research.replay.replay` is evidence that its batching is exact.
Not used by the product: it scores each signal with its own model call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from research import schema as S
from research.costs import apply_costs, signal_costs
from research.replay_loop import threshold_trades
from research.scoring.online import MLScorer
from research.study import StudyData
from research.thresholds import ThresholdPolicy

COLUMNS = (
    S.ML_SCORE,
    S.THRESHOLD,
    S.THRESHOLD_SOURCE,
    S.MODEL_VERSION,
    S.THRESHOLD_VERSION,
    S.PASSED,
    S.WAS_EXECUTED,
    S.DECISION_RAW,
)


def replay_one_by_one(
    candles: Mapping[str, pd.DataFrame],
    study: StudyData,
    strategy: str,
    config,
    *,
    model_factory: Callable | None = None,
) -> tuple[pd.DataFrame, MLScorer]:
    """Decisions of one strategy (``signal_id`` + :data:`COLUMNS`) and the final scorer.

    ``config`` is a :class:`research.replay.ReplayConfig`; ``study`` must hold every strategy
    the replay it is compared with ran (the exploration draws are taken over all its signals).
    """
    allsig = study.signals.sort_values(S.SIGNAL_TIME, kind="stable").reset_index(drop=True)
    draws = np.random.default_rng(config.seed).random(len(allsig))
    rows = np.flatnonzero((allsig[S.STRATEGY] == strategy).to_numpy())
    sig, draws = allsig.iloc[rows].reset_index(drop=True), draws[rows]
    phantom = study.outcomes.set_index(S.SIGNAL_ID).loc[sig[S.SIGNAL_ID]].reset_index()
    cost = signal_costs(sig, config.costs)
    executed = apply_costs(phantom, cost)
    feats = study.features.loc[sig[S.SIGNAL_ID]].assign(**{S.COST_R: cost[S.COST_R].to_numpy()})
    gross = dict(zip(phantom[S.SIGNAL_ID], phantom[S.REALIZED_RR].astype(float), strict=True))
    scorer_config = dataclasses.replace(config.scorer_for(strategy), fast_path=False)
    scorer = MLScorer(strategy, config=scorer_config, model_factory=model_factory)
    policy, t_version, closed, q_last = ThresholdPolicy(config=config.thresholds), 0, [], 0
    every = config.refit_every(strategy)
    # Events: (time, 0 = signal | 1 = outcome, signal time, position); signals first on ties.
    events = [(t, 0, t, i) for i, t in enumerate(sig[S.SIGNAL_TIME])]
    events += [
        (phantom.at[i, S.EXIT_TIME], 1, sig.at[i, S.SIGNAL_TIME], i)
        for i in range(len(sig))
        if not phantom.at[i, S.CENSORED]
    ]
    out = {}
    for _, kind, _, i in sorted(events, key=lambda e: (e[0], e[1], e[2], e[3])):
        f = feats.iloc[i].to_dict()
        if kind == 0:
            scores, _, raw = scorer.score_frame(pd.DataFrame([f]), return_raw=True)
            score = float(scores[0])
            thr, source = policy.threshold(f)
            passed = score >= thr
            out[i] = (
                score,
                thr,
                source,
                scorer.model_version,
                t_version,
                passed,
                passed or draws[i] < config.exploration,
                float(raw[0]),
            )
            continue
        row = (executed if out[i][6] else phantom).iloc[i]
        version = scorer.model_version
        scorer.record_outcome(
            sig.iloc[i].to_dict(),
            str(row[S.OUTCOME]),
            row[S.PNL_PERCENT],
            features=f,
            exit_time=row[S.EXIT_TIME],
            decision_raw=out[i][7],
        )
        closed.append(
            {
                S.QSCORE: out[i][0],
                S.OUTCOME: str(row[S.OUTCOME]),
                S.SESSION: f[S.SESSION],
                S.VOLATILITY_REGIME: f[S.VOLATILITY_REGIME],
                S.PNL_PERCENT: row[S.PNL_PERCENT],
                S.COST_R: f[S.COST_R],
                S.REALIZED_RR: gross[sig.at[i, S.SIGNAL_ID]],
            }
        )
        due = len(closed) - q_last >= every and len(closed) >= scorer.config.min_trades
        retrained = scorer.model_version != version and len(closed) >= scorer.config.min_trades
        if due or retrained:
            rule = config.thresholds.rule
            trades, _ = threshold_trades(scorer, closed, gross, rule)
            policy = ThresholdPolicy.from_trades(trades, config=config.thresholds)
            t_version, q_last = t_version + 1, len(closed)
    frame = pd.DataFrame([out[i] for i in range(len(sig))], columns=list(COLUMNS))
    return frame.assign(**{S.SIGNAL_ID: sig[S.SIGNAL_ID].to_numpy()}), scorer
