"""Efficacy on known answers: the product vs an oracle on planted, null and shuffled markets.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_efficacy.py --seeds 20``

For each seed it replays the product (the demo's settings: rigorous cost-aware rule, light
ensemble) on the planted known-answer market, the same market with no edge (null), and the
planted market with every model trained on shuffled labels, and prints per market:

* oracle AUC and product out-of-sample (decision-time) AUC, model era, and the product's
  **share of the oracle's AUC lift** (target >= 50 % on the planted market);
* the oracle's gross uplift and the product's skill (gross uplift) with its 95 % interval;
* over seeds: the share of intervals that exclude 0 above (planted: power) or cover 0
  (null, shuffled: must be >= 90 %).

Defaults are the demo's: 16,000 hourly bars, a retrain every 50 outcomes. One seed takes 3-5
minutes on 2 cores with ``--scheduler local`` (three replays of ~7,000 signals side by side).
``--n-bars`` shortens the markets (fewer signals: less power, same error rate).
``--scheduler local`` runs a seed's three markets side by side on a local Dask cluster (one
worker process per core), ``--scheduler tcp://host:port`` on a running one; same numbers.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

from research.demo import demo_config  # noqa: E402
from research.efficacy import KINDS, efficacy  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first .. first+N-1")
    ap.add_argument(
        "--n-bars", type=int, default=16_000, help="hourly bars per symbol (the demo's)"
    )
    ap.add_argument("--retrain-every", type=int, default=50, help="the seed's cadence (the demo's)")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--out", default=None, help="write the per-seed table as CSV here")
    ap.add_argument(
        "--scheduler",
        default=None,
        help="where a seed's three replays run: 'in-process', 'local' (a local Dask cluster, "
        "one worker per core) or a scheduler address tcp://host:port (default: env "
        "PHANTOMLAB_DASK_SCHEDULER, else in-process); the numbers are the same",
    )
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    pd.set_option("display.width", 200)
    frames = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t = time.perf_counter()
        cfg = demo_config(args.retrain_every, seed=seed)
        frames.append(
            efficacy(
                args.kinds, seed=seed, n_bars=args.n_bars, config=cfg, scheduler=args.scheduler
            )
        )
        allrows = frames[-1][frames[-1]["strategy"] == "all"]
        print(f"seed {seed} ({time.perf_counter() - t:.0f} s):")
        cols = [
            "kind",
            "oracle_auc",
            "product_auc",
            "auc_share",
            "oracle_skill",
            "skill",
            "skill_low",
            "skill_high",
            "uplift_net",
        ]
        print(allrows[cols].round(3).to_string(index=False), flush=True)
    table = pd.concat(frames, ignore_index=True)
    if args.out:
        table.to_csv(args.out, index=False)
    print("\nPer market and strategy, mean over seeds (gross R per trade, model era):")
    agg = table.groupby(["kind", "strategy"]).agg(
        seeds=("seed", "nunique"),
        oracle_auc=("oracle_auc", "mean"),
        product_auc=("product_auc", "mean"),
        auc_share=("auc_share", "mean"),
        oracle_skill=("oracle_skill", "mean"),
        skill=("skill", "mean"),
        skill_share=("skill_share", "mean"),
        excludes_0_above=("excludes_0_above", "mean"),
        covers_0=("covers_0", "mean"),
    )
    print(agg.round(3).to_string())
    print(
        "\nexcludes_0_above = share of seeds whose skill interval lies above 0 (planted: "
        "power); covers_0 = share whose interval contains 0 (null, shuffled: target >= 0.90)."
    )


if __name__ == "__main__":
    main()
