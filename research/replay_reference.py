"""A plain reference of the replay: one event at a time, one signal scored at a time.

The oracle of ``tests/test_replay.py`` and the baseline of ``benchmarks/bench_replay.py``.
It spells the online loop out exactly as a live bot would run it — no queues, no batches — so
that agreement with :func:`research.replay.replay` is evidence that its batching is exact.
Not used by the product: it scores each signal with its own model call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from research import schema as S
from research.phantom import simulate
from research.pipeline import StudyData
from research.scoring.online import MLScorer
from research.thresholds import ThresholdPolicy

COLUMNS = (S.ML_SCORE, S.THRESHOLD, S.THRESHOLD_SOURCE, S.MODEL_VERSION, S.THRESHOLD_VERSION,
           S.PASSED, S.WAS_EXECUTED)  # fmt: skip


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
    executed = simulate(candles, sig, config.execution)
    feats = study.features.loc[sig[S.SIGNAL_ID]]
    scorer = MLScorer(strategy, config=config.scorer, model_factory=model_factory)
    policy, t_version, closed, q_last = ThresholdPolicy(config=config.thresholds), 0, [], 0
    every = config.threshold_every or config.scorer.retrain_every
    # Events: (time, 0 = signal | 1 = outcome, signal time, position); signals first on ties.
    events = [(t, 0, t, i) for i, t in enumerate(sig[S.SIGNAL_TIME])]
    events += [(phantom.at[i, S.EXIT_TIME], 1, sig.at[i, S.SIGNAL_TIME], i)
               for i in range(len(sig)) if not phantom.at[i, S.CENSORED]]  # fmt: skip
    out = {}
    for _, kind, _, i in sorted(events, key=lambda e: (e[0], e[1], e[2], e[3])):
        f = feats.iloc[i].to_dict()
        if kind == 0:
            score = scorer.score_signal(f)
            thr, source = policy.threshold(f)
            passed = score >= thr
            out[i] = (score, thr, source, scorer.model_version, t_version, passed,
                      passed or draws[i] < config.exploration)  # fmt: skip
            continue
        row = (executed if out[i][-1] else phantom).iloc[i]
        scorer.record_outcome(sig.iloc[i].to_dict(), str(row[S.OUTCOME]), row[S.PNL_PERCENT],
                              features=f, exit_time=row[S.EXIT_TIME])  # fmt: skip
        closed.append({S.QSCORE: out[i][0], S.OUTCOME: str(row[S.OUTCOME]),
                       S.SESSION: f[S.SESSION], S.VOLATILITY_REGIME: f[S.VOLATILITY_REGIME],
                       S.PNL_PERCENT: row[S.PNL_PERCENT], S.REALIZED_RR: row[S.REALIZED_RR]})  # fmt: skip
        if len(closed) - q_last >= every and len(closed) >= config.scorer.min_trades:
            policy = ThresholdPolicy.from_trades(pd.DataFrame(closed), config=config.thresholds)
            t_version, q_last = t_version + 1, len(closed)
    frame = pd.DataFrame([out[i] for i in range(len(sig))], columns=list(COLUMNS))
    return frame.assign(**{S.SIGNAL_ID: sig[S.SIGNAL_ID].to_numpy()}), scorer
