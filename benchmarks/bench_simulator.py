"""Benchmark: compiled phantom simulator vs the plain-Python reference, in one process.

Runs on the real data set (``../shared/data``, or ``--data DIR``): signals of all three
strategies on every file of the chosen timeframe, then

* the plain-Python reference loop (:mod:`research.phantom.reference`) over every signal,
* the compiled kernel (numba, one core) over the same signals, on arrays prepared beforehand
  — best of ``--repeat`` runs, compile time excluded (a warm-up call first),
* the full ``simulate()`` (kernel + building the outcomes frame),

checks that reference and kernel agree on every signal, and prints signals/s, bar-checks/s and
the speed ratio. A bar-check is one (signal, bar) step of the rules.

    python benchmarks/bench_simulator.py [--data DIR] [--timeframe 5m] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from common import DATA_DIR, best_of

from research import schema as S
from research.candles import load_candles, timeframe_of
from research.config import SimulatorConfig
from research.phantom import simulate
from research.phantom.batch import kernel_inputs, run_kernel
from research.phantom.reference import simulate_one
from research.phantom.rules import simulate_batch
from research.signals import generate_signals

REASONS = {1: "tp", 2: "sl", 3: "be", 4: "timeout"}


def reference_run(candles, signals, config):
    """The plain-Python loop: returns (reasons, exit prices, bar-checks)."""
    t_open = candles.index.as_unit("ns").asi8
    t_close = t_open + timeframe_of(candles).value
    bars = list(
        zip(
            *(candles[k].tolist() for k in (S.OPEN, S.HIGH, S.LOW, S.CLOSE)),
            t_close.tolist(),
            strict=True,
        )
    )
    sig_ns = pd.DatetimeIndex(signals[S.SIGNAL_TIME]).as_unit("ns").asi8
    starts = np.searchsorted(t_open, sig_ns, side="left")
    hours = signals[S.STRATEGY].map(config.timeout_hours).to_numpy()
    reasons, prices, checks = [], [], 0
    for k, row in enumerate(signals.itertuples(index=False)):
        res = simulate_one(
            bars,
            int(starts[k]),
            row.side,
            row.entry,
            row.sl,
            row.tp,
            int(sig_ns[k] + hours[k] * 3600e9),
            tp1_r=config.tp1_r,
        )
        reasons.append(res["reason"])
        prices.append(res["price"])
        checks += res["checks"]
    return reasons, np.array(prices), checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder of candle files")
    parser.add_argument("--timeframe", default="5m", help="only files of this timeframe")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of the compiled path")
    args = parser.parse_args(argv)
    files = sorted(args.data.glob(f"*_{args.timeframe}.csv.gz"))
    if not files:
        print(f"no *_{args.timeframe}.csv.gz files in {args.data}", file=sys.stderr)
        return 2
    config = SimulatorConfig()
    work = []
    for path in files:
        candles = load_candles(path)
        sig = pd.concat(
            [generate_signals(candles, s) for s in ("trend", "range", "scalp")], ignore_index=True
        )
        work.append((path.name, candles, sig))
    n_signals = sum(len(s) for _, _, s in work)
    print(f"data: {len(files)} files of {args.timeframe}, {n_signals} signals (3 strategies)")

    # warm-up: compile (or load the cache) outside every timing
    run_kernel(work[0][1], work[0][2].iloc[:5], config)

    t_ref, ref = best_of(lambda: [reference_run(c, s, config) for _, c, s in work], 1)
    inputs = [kernel_inputs(c, s, config) for _, c, s in work]
    t_kernel, kern = best_of(lambda: [simulate_batch(*a) for a in inputs], args.repeat)
    t_full, _ = best_of(lambda: [simulate(c, s, config) for _, c, s in work], args.repeat)

    checks_ref = sum(r[2] for r in ref)
    checks_kernel = sum(int(k[-1]) for k in kern)
    mismatches = 0
    for (reasons, prices, _), k in zip(ref, kern, strict=True):
        got = [REASONS.get(int(x)) for x in k[0]]
        mismatches += sum(a != b for a, b in zip(reasons, got, strict=True))
        mismatches += int((~np.isclose(prices, k[1], equal_nan=True, rtol=0, atol=0)).sum())
    ok = mismatches == 0 and checks_ref == checks_kernel

    rows = [
        ("plain-Python reference", t_ref, checks_ref),
        ("compiled kernel (numba, 1 core)", t_kernel, checks_kernel),
        ("simulate() end to end", t_full, checks_kernel),
    ]
    print(f"{'path':34s} {'seconds':>9s} {'signals/s':>12s} {'bar-checks/s':>14s}")
    for name, secs, checks in rows:
        print(f"{name:34s} {secs:9.4f} {n_signals / secs:12,.0f} {checks / secs:14,.0f}")
    print(f"bar-checks: {checks_kernel:,} ({checks_kernel / n_signals:.1f} per signal)")
    print(f"speed ratio kernel / reference:      {t_ref / t_kernel:8.1f}x")
    print(f"speed ratio simulate() / reference:  {t_ref / t_full:8.1f}x")
    print(f"agreement: {'OK' if ok else f'FAILED ({mismatches} mismatches)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
