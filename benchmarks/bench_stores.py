"""Benchmark: publishing and loading the ensemble (skops vs pickle), outcomes recorded per second.

In one process, on the real servers of this machine:

1. fits the default ``EnsembleScorer`` on the BTC_USDT_5m scalp signals of ``../shared/data``
   (``--data DIR``), then serialises it with skops (what the registry stores) and with pickle
   (the seed's format, shown only as the reference: the product never unpickles), and times
   dump and load and compares sizes;
2. times ``ModelRegistry.publish`` (skops + ONNX export + HMAC + ``SET NX`` + pointer flip) and
   ``load_champion`` (verify + skops load + onnxruntime session) on Redis and on SQLite;
3. records completed trades: into Redis (``record_completed``: the push and both trims in one
   MULTI), into PostgreSQL (``record_trades`` one row per call, as a live bot does, and in
   batches of 1,000), and through the whole ``OutcomeRecorder`` (SQL then Redis then scorer);
4. several writers: 4 processes record 30,000 outcome calls over 20,000 distinct overlapping
   ``signal_id`` s (``--writers``, ``--calls``, ``--distinct``) through their own
   ``OutcomeRecorder`` into one Redis and one PostgreSQL, against 1 process recording the
   same calls; prints both throughputs and their ratio, and checks every count exactly
   (SQL rows, ``phantom:recorded``, ``ml:scalp:completed_trades``, no ``signal_id`` twice in
   ``ml:scalp:trades``, EV buckets) — exits 1 if one is off.

Keys go under a throw-away namespace and a fresh PostgreSQL database, both removed at the end.

    python benchmarks/bench_stores.py [--data DIR] [--redis URL] [--pg URL] [--rows 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import skops.io as sio
import sqlalchemy as sa
from common import DATA_DIR, best_of
from threadpoolctl import threadpool_limits

from research import schema as S
from research.candles import load_candles
from research.features import build_features
from research.online.recorder import OutcomeRecorder
from research.phantom import simulate
from research.scoring import EnsembleScorer, MLScorer, ScorerConfig
from research.signals import generate_signals
from research.stores.audit import AuditTrail
from research.stores.journal import OutcomeJournal
from research.stores.registry import KEY_ENV, ModelRegistry
from research.stores.state import open_state


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA_DIR)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="an administrative URL: a fresh database is created beside it",
    )
    ap.add_argument("--rows", type=int, default=2000, help="trades recorded per store")
    ap.add_argument("--writers", type=int, default=4, help="writer processes (section 4)")
    ap.add_argument("--skip-models", action="store_true", help="sections 3-4 only")
    ap.add_argument("--calls", type=int, default=30_000, help="outcome calls (section 4)")
    ap.add_argument("--distinct", type=int, default=20_000, help="distinct ids (section 4)")
    args = ap.parse_args(argv)
    path = args.data / "BTC_USDT_5m.csv.gz"
    if not path.exists():
        print(f"{path} not found; pass --data DIR", file=sys.stderr)
        return 2
    os.environ.setdefault(KEY_ENV, "bench-signing-key-0123456789abcdef")

    candles = load_candles(path)
    sig = generate_signals(candles, "scalp")
    out = simulate(candles, sig)
    feats = build_features(candles, sig)
    rows = sig.merge(out, on=S.SIGNAL_ID)
    rows = rows.loc[~rows[S.CENSORED]].sort_values([S.EXIT_TIME, S.SIGNAL_ID])
    ns = f"bench{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp())
    stores = {
        "redis": open_state(args.redis, namespace=ns),
        "sqlite": open_state(f"sqlite:///{tmp / 'state.db'}"),
    }
    if not args.skip_models:
        models_section(rows, feats, stores)

    n = min(args.rows, len(rows))
    recs = rows.head(n)
    name = f"phantomlab_b_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    pg_url = sa.make_url(args.pg).set(database=name).render_as_string(hide_password=False)
    try:
        audit = AuditTrail(pg_url)
        records = recs.to_dict("records")
        f_rows = [feats.loc[r[S.SIGNAL_ID]].to_dict() for r in records]
        print(f"\nrecording {n} completed trades           trades/s")
        t0 = time.perf_counter()
        for r in records:
            stores["redis"].record_completed(r)
        print(f"  Redis record_completed (MULTI)   {n / (time.perf_counter() - t0):10,.0f}")
        t0 = time.perf_counter()
        for r, f in zip(records, f_rows, strict=True):
            audit.record_trades([r | {"features": f}])
        t_row = time.perf_counter() - t0
        print(f"  PostgreSQL upsert, 1 per call    {n / t_row:10,.0f}")
        t0 = time.perf_counter()
        audit.record_trades(recs, features=feats)
        t_batch = time.perf_counter() - t0
        print(f"  PostgreSQL upsert, one batch     {n / t_batch:10,.0f}   ({t_row / t_batch:.0f}x)")
        rec = OutcomeRecorder(
            audit=audit,
            state=open_state(args.redis, namespace=ns + "r"),
            journal=OutcomeJournal(tmp / "journal.jsonl"),
            scorers={"scalp": MLScorer("scalp", config=ScorerConfig(min_trades=10**9))},
        )
        t0 = time.perf_counter()
        for r, f in zip(records, f_rows, strict=True):
            rec.record(r, features=f)
        print(f"  OutcomeRecorder (SQL+Redis+scorer) {n / (time.perf_counter() - t0):8,.0f}")
        assert audit.count_trades() == n
        audit.close()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        for store in (stores["redis"], open_state(args.redis, namespace=ns + "r")):
            keys = store.all_keys()
            if keys:
                store.backend.delete(*keys)
    # the one-writer reference records a tenth of the calls (same overlap): its rate per call
    # is what the ratio needs, and the full 30,000 calls one by one would take ~5 minutes
    ok1, one = multi_writer(args, rows, feats, writers=1, scale=0.1)
    okn, many = multi_writer(args, rows, feats, writers=args.writers)
    print(
        f"\n{args.writers} writers / 1 writer throughput: {many / one:.2f}x "
        "(exact counts cost a WATCH retry when two writers collide)"
    )
    return 0 if ok1 and okn else 1


def models_section(rows, feats, stores) -> None:
    """Sections 1-2: fit the default ensemble, serialise it, publish and load it."""
    learn = rows.loc[rows[S.OUTCOME] != "timeout"]
    x, y = feats.loc[learn[S.SIGNAL_ID]], (learn[S.OUTCOME] == "win").to_numpy(int)
    with threadpool_limits(1):  # one core: OpenMP stalls when the other is busy (README)
        t_fit, model = best_of(
            lambda: EnsembleScorer().fit(
                x, y, signal_times=learn[S.SIGNAL_TIME], exit_times=learn[S.EXIT_TIME]
            ),
            repeat=1,
        )
    print(f"EnsembleScorer (defaults) fitted on {len(x)} scalp trades in {t_fit:.1f} s\n")

    t_sd, blob = best_of(lambda: sio.dumps(model))
    t_pd, pblob = best_of(lambda: pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    trusted = sio.get_untrusted_types(data=blob)
    t_sl, _ = best_of(lambda: sio.loads(blob, trusted=trusted))
    t_pl, _ = best_of(lambda: pickle.loads(pblob))  # reference only, on bytes made just above
    print("serialisation     size MB   dump ms   load ms")
    print(f"  skops          {len(blob) / 1e6:8.2f}  {t_sd * 1e3:8.1f}  {t_sl * 1e3:8.1f}")
    print(f"  pickle (ref.)  {len(pblob) / 1e6:8.2f}  {t_pd * 1e3:8.1f}  {t_pl * 1e3:8.1f}")
    print(
        f"  skops / pickle   size {len(blob) / len(pblob):.2f}x, dump {t_sd / t_pd:.1f}x, "
        f"load {t_sl / t_pl:.1f}x\n"
    )

    print("registry          publish ms   load_champion ms")
    for name, store in stores.items():
        reg = ModelRegistry(store)
        t_pub, _ = best_of(lambda reg=reg: reg.publish("scalp", model))
        t_load, loaded = best_of(lambda reg=reg: reg.load_champion("scalp"))
        assert np.allclose(loaded.fast.score_signals(x.iloc[:50]), model.score_signals(x.iloc[:50]))
        print(f"  {name:14s}  {t_pub * 1e3:10.1f}   {t_load * 1e3:16.1f}")


def _distinct_trades(rows, feats, n: int) -> list[dict]:
    """``n`` distinct trades: the real ones, copied under new ids (features attached)."""
    base = rows.to_dict("records")
    feat = {r[S.SIGNAL_ID]: feats.loc[r[S.SIGNAL_ID]].to_dict() for r in base}
    return [
        base[i % len(base)]
        | {S.SIGNAL_ID: f"mw{i:06d}", "features": feat[base[i % len(base)][S.SIGNAL_ID]]}
        for i in range(n)
    ]


def _writer(db_url, redis_url, ns, journal, trades, start) -> None:
    """One writer process: its own recorder and scorer, as one bot process would have."""
    rec = OutcomeRecorder(
        audit=AuditTrail(db_url, upgrade=False),
        state=open_state(redis_url, namespace=ns),
        journal=OutcomeJournal(journal),
        scorers={"scalp": MLScorer("scalp", config=ScorerConfig(min_trades=10**9))},
    )
    start.wait()
    for t in trades:
        rec.record(t)


def multi_writer(args, rows, feats, *, writers: int, scale: float = 1.0) -> tuple[bool, float]:
    """Section 4: ``writers`` processes, overlapping ids, exact counts checked.

    Returns (every count exact, calls per second)."""
    distinct, n_calls = int(args.distinct * scale), int(args.calls * scale)
    trades = _distinct_trades(rows, feats, distinct)
    rng = np.random.default_rng(0)
    calls = np.concatenate(
        [rng.permutation(distinct), rng.integers(0, distinct, n_calls - distinct)]
    )
    chunks = np.array_split(rng.permutation(calls), writers)
    ns, ctx = f"benchmw{uuid.uuid4().hex[:8]}", mp.get_context("spawn")
    name = f"phantomlab_b_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db_url = sa.make_url(args.pg).set(database=name).render_as_string(hide_password=False)
    store = open_state(args.redis, namespace=ns)
    try:
        AuditTrail(db_url).close()
        start = ctx.Event()
        procs = [
            ctx.Process(
                target=_writer,
                args=(
                    db_url,
                    args.redis,
                    ns,
                    f"{tempfile.mkdtemp()}/j",
                    [trades[i] for i in chunk],
                    start,
                ),
            )
            for chunk in chunks
        ]
        for p in procs:
            p.start()
        time.sleep(3.0)  # every writer imported and connected: time the recording only
        t0 = time.perf_counter()
        start.set()
        for p in procs:
            p.join()
        seconds = time.perf_counter() - t0
        audit = AuditTrail(db_url, upgrade=False)
        learnt = sum(trades[i][S.OUTCOME] != "timeout" for i in range(distinct))
        saved = store.load_scorer("scalp")
        ids = [t[S.SIGNAL_ID] for t in saved["trades"]]
        checks = {
            "SQL rows": (audit.count_trades(), distinct),
            "phantom:recorded": (
                store.backend.scard(store.keys.phantom("recorded")),
                distinct,
            ),
            "completed_trades": (saved["completed_trades"], learnt),
            "distinct ids in trades": (len(set(ids)), len(ids)),
            "EV bucket counts": (
                sum(b["wins"] + b["losses"] for b in saved["ev_buckets"].values()),
                learnt,
            ),
        }
        audit.close()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        keys = store.all_keys()
        if keys:
            store.backend.delete(*keys)
    rate = n_calls / seconds
    print(
        f"\n{writers} writer process(es): {n_calls:,} calls, {distinct:,} distinct ids: "
        f"{seconds:.1f} s, {rate:,.0f} calls/s (SQL upsert + Redis step + scorer per call)"
    )
    ok = True
    for what, (got, want) in checks.items():
        ok &= got == want
        print(f"  {what:24s} {got:>8,} expected {want:>8,}  {'ok' if got == want else 'WRONG'}")
    return ok, rate


if __name__ == "__main__":
    sys.exit(main())
