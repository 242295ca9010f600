"""Benchmark: ONNX fast scoring (``FastScorer``) vs the scikit-learn ``EnsembleScorer``, one run.

Fits an ``EnsembleScorer`` with its DEFAULT parameters (200 trees, 200 boosting iterations,
neural net on, out-of-fold isotonic calibration) on the real scalp signals of one candle file
(``BTC_USDT_5m`` of ``../shared/data``, or ``--data DIR --key STEM``), exports it with
:func:`research.scoring.fast.to_onnx`, then measures

* single-signal latency (p50, p99, in microseconds over ``--calls`` calls after a warm-up),
  each call scoring one signal's features given as a dict:
  - scikit-learn: ``model.score_signals(pd.DataFrame([features]))`` (what ``MLScorer`` calls),
  - ONNX: ``FastScorer.score_one(features)``;
* their ratio and agreement (max |score difference| on the 0-100 scale over the sample);
* batch throughput (signals/s) of ``score_signals`` on a ``--batch``-row features frame.

Both paths run on one core (``FastScorer`` by design; scikit-learn's OpenMP/BLAS pools are
limited to ``--threads``, default 1): on this 2-core machine HistGradientBoosting's OpenMP
threads otherwise stall for whole seconds whenever another process holds the second core.

    python benchmarks/bench_scoring.py [--data DIR] [--key BTC_USDT_5m] [--calls 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from common import DATA_DIR, best_of
from threadpoolctl import threadpool_limits

from research import schema as S
from research.pipeline import load_market, run_signals_and_phantoms
from research.scoring import EnsembleScorer
from research.scoring.fast import FastScorer

TARGET_P50_US, TARGET_RATIO, TARGET_AGREEMENT = 200.0, 30.0, 1e-4


def latencies(fn, records, warmup):
    """Seconds of each ``fn(record)`` and its result, after untimed calls on ``warmup``."""
    for rec in warmup:
        fn(rec)
    times, results = np.empty(len(records)), np.empty(len(records))
    for k, rec in enumerate(records):
        t = time.perf_counter()
        results[k] = fn(rec)
        times[k] = time.perf_counter() - t
    return times, results


def throughput(fn, frame, repeat=3):
    return len(frame) / best_of(lambda: fn(frame), repeat)[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder of candle files")
    parser.add_argument("--key", default="BTC_USDT_5m", help="file stem of the market to use")
    parser.add_argument("--calls", type=int, default=2000, help="timed single-signal calls")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first")
    parser.add_argument("--batch", type=int, default=10_000, help="rows of the batch frame")
    parser.add_argument(
        "--threads", type=int, default=1, help="scikit-learn's thread pools (0: no limit)"
    )
    args = parser.parse_args(argv)
    with threadpool_limits(args.threads or None):
        return run(args)


def run(args) -> int:
    t0 = time.perf_counter()
    try:
        markets = load_market(args.data, symbols=[args.key])
    except (ValueError, OSError) as exc:  # e.g. the key is not a file of the folder
        print(f"cannot load {args.key} from {args.data}: {exc}", file=sys.stderr)
        return 2
    study = run_signals_and_phantoms(markets, ["scalp"], progress=False)
    keep = ~study.outcomes[S.CENSORED].to_numpy(bool)
    x = study.features[keep].reset_index(drop=True)
    y = (study.outcomes.loc[keep, S.OUTCOME] == "win").to_numpy(int)
    t_data = time.perf_counter() - t0

    t0 = time.perf_counter()
    with warnings.catch_warnings():  # the MLP's ConvergenceWarning is expected at 300 epochs
        warnings.simplefilter("ignore")
        model = EnsembleScorer().fit(
            x,
            y,
            signal_times=study.signals.loc[keep, S.SIGNAL_TIME],
            exit_times=study.outcomes.loc[keep, S.EXIT_TIME],
        )
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = FastScorer.from_model(model)
    t_export = time.perf_counter() - t0
    print(
        f"data: {args.key}, {len(x)} non-censored scalp signals ({y.mean():.1%} wins), "
        f"{len(model.encoded_feature_names())} encoded columns; built in {t_data:.1f} s"
    )
    print(
        f"model: EnsembleScorer defaults, members {list(model.members_)}, calibration "
        f"{model.calibration_!r}; fit {t_fit:.1f} s; ONNX export + load {t_export:.2f} s, "
        f"{len(fast.onnx_bytes) / 1e6:.1f} MB"
    )

    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(x), args.calls + args.warmup)
    records = x.iloc[rows].to_dict("records")  # one dict per signal, as live
    timed, warm = records[: args.calls], records[args.calls :]

    def sk_one(rec):
        return float(model.score_signals(pd.DataFrame([rec]))[0])

    t_sk, s_sk = latencies(sk_one, timed, warm)
    t_fx, s_fx = latencies(fast.score_one, timed, warm)
    batch = x.iloc[rng.integers(0, len(x), args.batch)].reset_index(drop=True)
    tp_sk = throughput(model.score_signals, batch)
    tp_fx = throughput(fast.score_signals, batch)
    diff_one = float(np.abs(s_sk - s_fx).max())
    diff_batch = float(np.abs(model.score_signals(batch) - fast.score_signals(batch)).max())

    p = {name: np.percentile(t, [50, 99]) * 1e6 for name, t in (("sk", t_sk), ("fx", t_fx))}
    print(f"\n{'path':44s} {'p50 us':>9s} {'p99 us':>9s} {'batch signals/s':>16s}")
    print(
        f"{'scikit-learn score_signals(DataFrame([f]))':44s} {p['sk'][0]:9.1f} "
        f"{p['sk'][1]:9.1f} {tp_sk:16,.0f}"
    )
    print(
        f"{'ONNX FastScorer.score_one(f)':44s} {p['fx'][0]:9.1f} {p['fx'][1]:9.1f} {tp_fx:16,.0f}"
    )
    ratio = p["sk"][0] / p["fx"][0]
    print(f"single-signal calls timed: {len(t_sk)} per path (after {len(warm)} warm-up)")
    print(f"speed ratio p50 scikit-learn / ONNX:   {ratio:8.1f}x   (target >= {TARGET_RATIO:.0f}x)")
    print(f"batch ratio ONNX / scikit-learn:       {tp_fx / tp_sk:8.1f}x   ({args.batch} rows)")
    print(
        f"ONNX p50 latency:                      {p['fx'][0]:8.1f} us (target <= "
        f"{TARGET_P50_US:.0f} us)"
    )
    print(
        f"agreement max |diff| (0-100 score):    single {diff_one:.2e}, batch {diff_batch:.2e} "
        f"(target <= {TARGET_AGREEMENT:.0e})"
    )
    ok = (
        p["fx"][0] <= TARGET_P50_US
        and ratio >= TARGET_RATIO
        and max(diff_one, diff_batch) <= TARGET_AGREEMENT
    )
    print(f"targets: {'MET' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
