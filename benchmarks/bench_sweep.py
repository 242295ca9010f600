"""Benchmark: one sweep of replay settings in process, on a local Dask cluster of 1 worker and
of 2 workers — wall times, the scaling ratio, and the three tables checked equal.

The sweep (default 4 settings: rule seed|rigorous x retrain_every 100|300, light ensemble) runs
on the planted known-answer market (``--n-bars`` hourly bars per symbol, default 6,000). The
study (signals, features, phantom outcomes) is computed once and handed to all three runs, so
the times are the replays alone; each cluster is started before its timer (its start-up time is
printed beside). Ratio = time on 1 worker / time on 2 workers (2.0 = perfect scaling; the
bound with 4 equal tasks on 2 workers). The three tables must be identical (exit 1 if not).

    OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py [--n-bars 6000] [--rules seed rigorous]
                                                       [--retrain-every 100 300] [--full-model]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

from research.distributed import dask_client  # noqa: E402
from research.known_answer import known_answer_market  # noqa: E402
from research.pipeline import run_signals_and_phantoms  # noqa: E402
from research.replay import ReplayConfig  # noqa: E402
from research.scoring import EnsembleScorer, ScorerConfig  # noqa: E402
from research.sweep import sweep  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-bars", type=int, default=6000, help="hourly bars per symbol")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", nargs="+", default=["seed", "rigorous"])
    ap.add_argument("--retrain-every", nargs="+", type=int, default=[100, 300])
    ap.add_argument("--n-boot", type=int, default=500)
    ap.add_argument(
        "--full-model",
        action="store_true",
        help="default ensemble (200 trees, 200 boosting iterations, NN on)",
    )
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    pd.set_option("display.width", 200)

    light = {} if args.full_model else {"n_estimators": 20, "gb_max_iter": 20, "nn_enabled": False}
    scorer = ScorerConfig(model=EnsembleScorer(random_state=args.seed, **light))
    base = ReplayConfig(scorer=scorer, seed=args.seed, n_boot=args.n_boot)
    grid = {"rule": args.rules, "retrain_every": args.retrain_every}
    n_settings = len(args.rules) * len(args.retrain_every)
    candles = known_answer_market("planted", n_bars=args.n_bars, seed=args.seed)
    t = time.perf_counter()
    study = run_signals_and_phantoms(candles, progress=False)
    print(
        f"planted market, {args.n_bars:,} bars x {len(candles)} symbols: "
        f"{len(study.signals):,} signals (study {time.perf_counter() - t:.1f} s, once); "
        f"{n_settings} settings, {'full' if args.full_model else 'light'} ensemble, "
        f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    )

    def run(scheduler: str) -> tuple[float, pd.DataFrame]:
        t = time.perf_counter()
        table = sweep(candles, grid, base=base, study=study, scheduler=scheduler, progress=False)
        return time.perf_counter() - t, table

    times, tables = {}, {}
    times["in-process"], tables["in-process"] = run("in-process")
    print(f"  in process        : {times['in-process']:7.1f} s")
    for workers in (1, 2):
        t = time.perf_counter()
        with dask_client("local", n_workers=workers) as client:
            start = time.perf_counter() - t
            name = f"{workers} worker(s)"
            times[name], tables[name] = run(client.scheduler.address)
        print(f"  LocalCluster, {workers} wkr: {times[name]:7.1f} s  (start-up {start:.1f} s)")
    ratio = times["1 worker(s)"] / times["2 worker(s)"]
    print(
        f"scaling ratio (1 worker / 2 workers): {ratio:.2f}  (ideal 2.00); "
        f"cluster of 1 / in process: {times['1 worker(s)'] / times['in-process']:.2f}"
    )
    equal = True
    for name in ("1 worker(s)", "2 worker(s)"):
        try:
            pd.testing.assert_frame_equal(tables[name], tables["in-process"])
        except AssertionError as exc:
            equal = False
            print(f"MISMATCH: the table on {name} differs from in process:\n{exc}")
    print("tables identical (in process, 1 worker, 2 workers):", equal)
    overall = tables["in-process"]
    print(overall[overall["strategy"] == "all"].round(3).to_string(index=False))
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
