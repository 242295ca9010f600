"""Benchmark: the replay at the seed's cadence (retrain every 50 outcomes after 30).

Runs on the real data set (``../shared/data``, or ``--data DIR``), every file of one timeframe
(default 5m), in one process, with the **default ensemble** (random forest 200 trees, gradient
boosting 200 iterations, neural net) and the seed's retrain rule:

1. signals, features and phantom outcomes of all three strategies (timed apart);
2. for each ``--sizes`` N: a replay of the first N signals (time order, all strategies) —
   wall time, signals/s, retrains/s and how the retrains went (full or warm forest,
   prequential or K-fold calibration);
3. the cost of one retrain on the same rows by both paths, in one run: the landed path
   before this change (K-fold out-of-fold calibration, every member regrown) vs the cheap one
   (prequential calibration on decision-time scores, a warm forest and net) — the ratio;
4. on the first ``--subset`` scalp signals, the batched replay vs the plain one-by-one
   reference (:mod:`research.replay_reference`), same retrains: agreement and speed ratio.

    OMP_NUM_THREADS=1 python benchmarks/bench_replay.py [--data DIR] [--timeframe 5m]
        [--sizes 5000 10000] [--subset 1500] [--n-jobs N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import DATA_DIR  # noqa: E402

from research import schema as S  # noqa: E402
from research.candles import load_folder  # noqa: E402
from research.replay import ReplayConfig, replay  # noqa: E402
from research.replay_reference import replay_one_by_one  # noqa: E402
from research.scoring import EnsembleScorer, ScorerConfig  # noqa: E402
from research.study import StudyData, run_signals_and_phantoms  # noqa: E402


def first_signals(study: StudyData, n: int, strategy: str | None = None) -> StudyData:
    """The first ``n`` signals (time order; of ``strategy`` only if given) and their data."""
    sig = study.signals.sort_values(S.SIGNAL_TIME, kind="stable")
    if strategy is not None:
        sig = sig.loc[sig[S.STRATEGY] == strategy]
    sig = sig.head(n)
    ids = sig[S.SIGNAL_ID]
    out = study.outcomes.loc[study.outcomes[S.SIGNAL_ID].isin(ids)]
    return StudyData(
        candles=study.candles,
        signals=sig.reset_index(drop=True),
        features=study.features.loc[ids],
        outcomes=out.reset_index(drop=True),
    )


def retrain_cost(scorer, sizes, n_jobs) -> pd.DataFrame:
    """Seconds of one retrain at each size by the old path and the cheap one, same rows."""
    trades = scorer.trades
    frame = pd.DataFrame([t["features"] for t in trades])
    y = np.array([t[S.OUTCOME] == "win" for t in trades], dtype=int)
    st = pd.to_datetime([t[S.SIGNAL_TIME] for t in trades], utc=True)
    et = pd.to_datetime([t[S.EXIT_TIME] for t in trades], utc=True)
    raw = np.array([np.nan if t[S.DECISION_RAW] is None else t[S.DECISION_RAW] for t in trades])
    rows = []
    for n in sizes:
        if n > len(y):
            continue
        t0 = time.perf_counter()
        EnsembleScorer(calibration="oof", n_jobs=n_jobs).fit(
            frame.iloc[:n], y[:n], signal_times=st[:n], exit_times=et[:n]
        )
        t_old = time.perf_counter() - t0
        prev = EnsembleScorer(n_jobs=n_jobs).fit(
            frame.iloc[: n - 50],
            y[: n - 50],
            signal_times=st[: n - 50],
            exit_times=et[: n - 50],
            decision_raw=raw[: n - 50],
        )
        t0 = time.perf_counter()
        new = EnsembleScorer(n_jobs=n_jobs).fit(
            frame.iloc[:n],
            y[:n],
            signal_times=st[:n],
            exit_times=et[:n],
            decision_raw=raw[:n],
            warm_from=prev,
        )
        t_new = time.perf_counter() - t0
        rows.append(
            {
                "rows": n,
                "old_s": t_old,
                "cheap_s": t_new,
                "ratio": t_old / t_new,
                "cheap_path": f"{new.fit_path_}/{new.calibration_}",
            }
        )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA_DIR)
    ap.add_argument("--timeframe", default="5m")
    ap.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[5000, 10000],
        help="replay the first N signals for each N",
    )
    ap.add_argument("--subset", type=int, default=1500, help="scalp signals for the reference")
    ap.add_argument(
        "--n-jobs", type=int, default=None, help="threads growing the forest (default: every core)"
    )
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"data folder {args.data} not found; pass --data DIR", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    pd.set_option("display.width", 160)

    candles = load_folder(args.data, timeframe=args.timeframe)
    t0 = time.perf_counter()
    study = run_signals_and_phantoms(candles, progress=False)
    t_study = time.perf_counter() - t0
    print(
        f"{len(candles)} files of {args.timeframe}: {len(study.signals):,} signals "
        f"({study.signals[S.STRATEGY].value_counts().to_dict()}); signals + features + "
        f"phantoms in {t_study:.1f} s; {os.cpu_count()} cores, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}"
    )

    # the seed's rule, default ensemble
    config = ReplayConfig(scorer=ScorerConfig(model=EnsembleScorer(n_jobs=args.n_jobs)))
    model = config.scorer.model
    print(
        f"\nseed's cadence: retrain every {config.scorer.retrain_every} outcomes after "
        f"{config.scorer.min_trades}; default ensemble ({model.n_estimators} trees, "
        f"{model.gb_max_iter} boosting iterations, neural net)"
    )
    last = None
    for n in args.sizes:
        part = first_signals(study, n)
        t0 = time.perf_counter()
        last = replay(candles, config=config, study=part, progress=False)
        dt = time.perf_counter() - t0
        r = last.retrains
        mix = r.groupby(["fit_path", "calibration"]).agg(
            retrains=("seconds", "size"), mean_s=("seconds", "mean")
        )
        print(
            f"\nfirst {len(part.signals):,} signals: {dt:.1f} s ({dt / 60:.1f} min), "
            f"{len(part.signals) / dt:,.0f} signals/s, {len(r)} retrains "
            f"({len(r) / dt:.2f} retrains/s)"
        )
        print(mix.round(3).to_string())
        print(
            last.uplift[["n", "n_passed", "skill", "skill_low", "skill_high"]].round(3).to_string()
        )

    if last is not None and "scalp" in last.scorers:
        cost = retrain_cost(last.scorers["scalp"], (1000, 2500, 5000), args.n_jobs)
        print(
            "\none scalp retrain on the same rows: landed path (K-fold calibration, all "
            "members regrown) vs cheap path (prequential, warm forest and net):"
        )
        print(cost.round(2).to_string(index=False))

    small = first_signals(study, args.subset, "scalp")
    t0 = time.perf_counter()
    fast = replay(candles, ("scalp",), config, study=small, progress=False)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref, _ = replay_one_by_one(candles, small, "scalp", config)
    t_ref = time.perf_counter() - t0
    got = fast.decisions.set_index(S.SIGNAL_ID).loc[ref[S.SIGNAL_ID]]
    diff = float(np.max(np.abs(got[S.ML_SCORE].to_numpy() - ref[S.ML_SCORE].to_numpy())))
    same = bool((got[S.WAS_EXECUTED].to_numpy() == ref[S.WAS_EXECUTED].to_numpy()).all())
    m = len(small.signals)
    print(
        f"\nfirst {m} scalp signals at the seed's cadence ({len(fast.retrains)} retrains, "
        f"paths {sorted(set(fast.retrains['fit_path'] + '/' + fast.retrains['calibration']))}):"
    )
    print(f"  batched replay    {t_fast:8.2f} s  {m / t_fast:10,.0f} signals/s")
    print(f"  one-by-one loop   {t_ref:8.2f} s  {m / t_ref:10,.0f} signals/s")
    print(
        f"  ratio             {t_ref / t_fast:8.1f}x   max |score diff| {diff:.2e}, "
        f"same decisions: {same}"
    )
    return 0 if same and diff < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
