"""Benchmark: the replay (online loop over history, with retrains) vs the plain per-signal loop.

Runs on the real data set (``../shared/data``, or ``--data DIR``), every file of one timeframe
(default 5m), in one process:

1. signals, features and phantom outcomes of all three strategies (timed apart);
2. :func:`research.replay.replay` over all of them, retraining by the seed's rule with
   ``--retrain-every`` (the seed's 50 would mean ~1,000 retrains of the full ensemble on this
   set; a larger step keeps the benchmark to minutes) — prints signals/s and retrains;
3. on the first ``--subset`` scalp signals, the batched replay and the plain reference
   (:mod:`research.replay_reference`: one event at a time, one model call per signal), with
   the same retrains, their agreement and the speed ratio.

    python benchmarks/bench_replay.py [--data DIR] [--timeframe 5m] [--retrain-every 3000]
                                      [--subset 3000] [--full-model]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from common import DATA_DIR

from research import schema as S
from research.candles import load_folder
from research.config import ScorerConfig
from research.pipeline import StudyData, run_signals_and_phantoms
from research.replay import ReplayConfig, replay
from research.replay_reference import replay_one_by_one


def subset_study(study: StudyData, strategy: str, n: int) -> StudyData:
    """The first ``n`` signals of ``strategy`` (time order) with their features and outcomes."""
    sig = study.signals.loc[study.signals[S.STRATEGY] == strategy].head(n)
    ids = sig[S.SIGNAL_ID]
    out = study.outcomes.loc[study.outcomes[S.SIGNAL_ID].isin(ids)]
    return StudyData(candles=study.candles, signals=sig.reset_index(drop=True),
                     features=study.features.loc[ids], outcomes=out.reset_index(drop=True))  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA_DIR)
    ap.add_argument("--timeframe", default="5m")
    ap.add_argument("--retrain-every", type=int, default=3000)
    ap.add_argument("--subset", type=int, default=3000, help="scalp signals for the ratio")
    ap.add_argument("--subset-retrain-every", type=int, default=500)
    ap.add_argument("--full-model", action="store_true",
                    help="default ensemble (200 trees, 200 boosting iterations, NN on)")  # fmt: skip
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"data folder {args.data} not found; pass --data DIR", file=sys.stderr)
        return 2

    light = {} if args.full_model else {"n_estimators": 30, "gb_max_iter": 30,
                                         "nn_enabled": False}  # fmt: skip
    candles = load_folder(args.data, timeframe=args.timeframe)
    t0 = time.perf_counter()
    study = run_signals_and_phantoms(candles, progress=False)
    t_study = time.perf_counter() - t0
    n = len(study.signals)
    print(f"{len(candles)} files of {args.timeframe}: {n} signals; signals + features + "
          f"phantoms in {t_study:.1f} s")  # fmt: skip

    config = ReplayConfig(scorer=ScorerConfig(retrain_every=args.retrain_every, **light))
    t0 = time.perf_counter()
    res = replay(candles, config=config, study=study, progress=False)
    t_full = time.perf_counter() - t0
    print(f"\nfull replay, retrain every {args.retrain_every}: {len(res.retrains)} retrains, "
          f"{t_full:.1f} s, {n / t_full:,.0f} signals/s")  # fmt: skip
    print(res.uplift[["n", "n_passed", "uplift", "ci_low", "ci_high", "retrains"]].round(4))

    small = subset_study(study, "scalp", args.subset)
    sub_cfg = ReplayConfig(scorer=ScorerConfig(retrain_every=args.subset_retrain_every, **light))
    t0 = time.perf_counter()
    fast = replay(candles, ("scalp",), sub_cfg, study=small, progress=False)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref, _ = replay_one_by_one(candles, small, "scalp", sub_cfg)
    t_ref = time.perf_counter() - t0
    got = fast.decisions.set_index(S.SIGNAL_ID).loc[ref[S.SIGNAL_ID]]
    diff = float(np.max(np.abs(got[S.ML_SCORE].to_numpy() - ref[S.ML_SCORE].to_numpy())))
    same = bool((got[S.WAS_EXECUTED].to_numpy() == ref[S.WAS_EXECUTED].to_numpy()).all())
    m = len(small.signals)
    print(f"\nfirst {m} scalp signals, retrain every {args.subset_retrain_every} "
          f"({len(fast.retrains)} retrains):")  # fmt: skip
    print(f"  batched replay    {t_fast:8.2f} s  {m / t_fast:10,.0f} signals/s")
    print(f"  one-by-one loop   {t_ref:8.2f} s  {m / t_ref:10,.0f} signals/s")
    print(f"  ratio             {t_ref / t_fast:8.1f}x   max |score diff| {diff:.2e}, "
          f"same decisions: {same}")  # fmt: skip
    return 0 if same and diff < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
