"""Helpers for the store fault tests: many trades, a multi-process writer, a freezable TCP
proxy and a throwaway redis-server. A module (not fixtures) so spawned workers import it."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pandas as pd
from support import closed_scalp_trades

from research import schema as S


def many_trades(n: int, *, seed: int = 11) -> tuple[list[dict], dict[str, dict]]:
    """``n`` distinct closed scalp trades (real simulated outcomes, copied with new ids and
    shifted times; every 7th one a timeout) and their features by ``signal_id``."""
    rows, feats = closed_scalp_trades(3000, seed=seed)
    out, features = [], {}
    for i in range(n):
        base = rows.iloc[i % len(rows)].to_dict()
        sid = f"mw{i:06d}"
        shift = pd.Timedelta(days=i // len(rows))
        base.update(
            {
                S.SIGNAL_ID: sid,
                S.SIGNAL_TIME: base[S.SIGNAL_TIME] + shift,
                S.EXIT_TIME: base[S.EXIT_TIME] + shift,
            }
        )
        if i % 7 == 3:
            base[S.OUTCOME] = "timeout"
        out.append(base)
        features[sid] = feats.loc[rows.iloc[i % len(rows)][S.SIGNAL_ID]].to_dict()
    return out, features


def writer(args: dict) -> dict:
    """One writer process: record ``calls`` (indexes into many_trades) through its own
    OutcomeRecorder and scorer; returns how many retrains it ran."""
    import numpy as np

    from research.online.recorder import OutcomeRecorder
    from research.scoring import MLScorer
    from research.stores.audit import AuditTrail
    from research.stores.journal import OutcomeJournal
    from research.stores.state import open_state

    trades, features = many_trades(args["n_distinct"])
    config = args["config"]  # a ScorerConfig
    rec = OutcomeRecorder(
        audit=AuditTrail(args["db_url"], upgrade=False),
        state=open_state(args["state_url"], namespace=args["namespace"]),
        journal=OutcomeJournal(args["journal"]),
        scorers={"scalp": MLScorer("scalp", config=config)},
    )
    retrains, t0 = 0, time.perf_counter()
    for i in np.asarray(args["calls"]):
        done = rec.record(trades[i], features=features[trades[i][S.SIGNAL_ID]])
        retrains += bool(done["retrained"])
    return {"retrains": retrains, "seconds": time.perf_counter() - t0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on its own port (nothing on disk), its own empty database."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.extra = extra
        self.proc = None

    def start(self) -> None:
        from research.stores import StoreUnavailable
        from research.stores.state import open_state

        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                open_state(self.url).ping()
                return
            except StoreUnavailable:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a real server; :meth:`freeze` stops forwarding in both
    directions while keeping every socket open — a server that hangs without refusing."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.05)
        while True:
            if self.frozen.is_set():
                time.sleep(0.05)
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()

    def close(self) -> None:
        self.listener.close()
        for s in self._open:
            s.close()


def version_taker(args: tuple[str, str, int]) -> list[int]:
    """One process taking ``n`` new model versions for ``scalp`` from the shared counter."""
    from research.stores.state import open_state

    url, namespace, n = args
    store = open_state(url, namespace=namespace)
    return [store.next_model_version("scalp") for _ in range(n)]
