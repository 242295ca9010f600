"""Benchmark: vectorised gate-combination counts vs a plain pandas filtering loop, in one run.

Synthetic phantoms: ``--rows`` outcomes x ``--gates`` boolean gates, the gates correlated
through a shared latent factor and the win probability planted on a few of them. Every single
gate, pair and triplet (30 gates: 30 + 435 + 4,060 = 4,525 combinations) is counted

* by :func:`research.analysis.gate_counts.combination_counts` — the function
  ``analyze_gates`` uses (matrix products; best of ``--repeat`` runs),
* by the plain loop ``df[df[g1] & df[g2]]['win'].mean()`` per combination (one run),

then the win rates are checked to agree and both times, combinations/s and the ratio printed.

    python benchmarks/bench_gates.py [--rows 100000] [--gates 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import combinations

import numpy as np
import pandas as pd

from research.analysis.gate_counts import combination_counts


def make_data(rows: int, gates: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Correlated gates (shared latent factor) and wins planted on gates 0, 3 and 7."""
    rng = np.random.default_rng(seed)
    latent = rng.random(rows)
    G = rng.random((rows, gates)) < (0.2 + 0.5 * latent[:, None]) * rng.uniform(0.5, 1.2, gates)
    p_win = 0.33 + 0.06 * G[:, 0] + 0.04 * (G[:, 3] & G[:, 7])
    return G, rng.random(rows) < p_win


def all_combos(gates: int) -> dict[int, np.ndarray]:
    return {r: np.array(list(combinations(range(gates), r))) for r in (1, 2, 3)}


def vectorised(G, y, combos) -> np.ndarray:
    """Win rate of every combination, in the order of ``combos`` (singles, pairs, triplets)."""
    rates = []
    for c in combos.values():
        n, w = combination_counts(G, y, c)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates.append(w / n)
    return np.concatenate(rates)


def pandas_loop(df: pd.DataFrame, names: list[str], combos) -> np.ndarray:
    """The seed's way: filter the frame for each combination and take the mean of 'win'."""
    rates = []
    for c in combos.values():
        for members in c:
            mask = df[names[members[0]]]
            for m in members[1:]:
                mask = mask & df[names[m]]
            rates.append(df[mask]["win"].mean())
    return np.array(rates, dtype=float)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="phantom outcomes")
    parser.add_argument("--gates", type=int, default=30, help="boolean gate columns")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the vectorised path")
    args = parser.parse_args(argv)
    G, y = make_data(args.rows, args.gates)
    names = [f"gate_{i:02d}" for i in range(args.gates)]
    df = pd.DataFrame(G, columns=names).assign(win=y)
    combos = all_combos(args.gates)
    n_combos = sum(len(c) for c in combos.values())
    sizes = " + ".join(f"{len(c):,}" for c in combos.values())
    print(f"data: {args.rows:,} outcomes x {args.gates} gates; {sizes} = {n_combos:,} combinations")

    vectorised(G[:100], y[:100], combos)  # warm-up (BLAS threads, page faults) outside timings
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        fast = vectorised(G, y, combos)
        times.append(time.perf_counter() - t)
    t_fast = min(times)
    t = time.perf_counter()
    slow = pandas_loop(df, names, combos)
    t_slow = time.perf_counter() - t

    ok = np.allclose(fast, slow, rtol=0, atol=1e-12, equal_nan=True)
    print(f"{'path':40s} {'seconds':>9s} {'combinations/s':>15s}")
    for name, secs in (
        ("vectorised combination_counts()", t_fast),
        ("pandas filtering loop", t_slow),
    ):
        print(f"{name:40s} {secs:9.3f} {n_combos / secs:15,.0f}")
    print(f"speed ratio vectorised / pandas loop: {t_slow / t_fast:8.1f}x (target >= 20x)")
    print(
        f"agreement: {'OK' if ok else 'FAILED'} (max |diff| {np.nanmax(np.abs(fast - slow)):.2e})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
