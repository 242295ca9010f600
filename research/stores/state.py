"""The scorer's state in the seed's Redis key schema (or the same keys on SQLite).

Keys (seed "State Persistence"; ``{p}`` is the optional namespace prefix, e.g. ``"dev:"``)::

    {p}ml:{strategy}:completed_trades | last_train_count | threshold | ev_buckets |
                     nn_enabled | last_train_ts | trades | model_version
    {p}phantom:active                 JSON {symbol: [phantom, ...]}
    {p}phantom:completed              last 1000 completed phantoms younger than 30 days
    {p}scalp_phantom:completed        the same, scalp only
    {p}phantom:wr:{strategy}          last 200 outcomes, '1' (win) / '0'
    {p}phantom:blocked:YYYYMMDD       count of signals blocked that day
    {p}qcal:{strategy}:thr            JSON {"session|volatility": threshold}
    {p}qcal:{strategy}:last_train_count

Where the seed pickles (``ev_buckets``) we store JSON; ``trades`` is a list of JSON records.
``phantom:completed`` is a sorted set scored by exit time, so the count and age trims run in the
same ``MULTI`` as the push. ``phantom:recorded`` (a set of ``signal_id``) makes recording a
completed phantom idempotent. The model itself never lives here as a pickle: see
:mod:`research.stores.registry`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping

import pandas as pd

from research import schema as S
from research.config import Settings
from research.ev_buckets import add_outcome
from research.jsonable import canonical_json, to_jsonable
from research.stores.backends import open_backend
from research.stores.protocol import StateBackend, StateReader, StateWriter
from research.urls import mask_url

logger = logging.getLogger(__name__)

COMPLETED_MAX = 1000  # seed: phantom:completed keeps the last 1000 ...
COMPLETED_MAX_AGE_DAYS = 30  # ... younger than 30 days
WR_MAX = 200  # seed: phantom:wr:{strategy} keeps the last 200
SCORER_FIELDS = (
    "completed_trades",
    "last_train_count",
    "threshold",
    "ev_buckets",
    "nn_enabled",
    "last_train_ts",
    "trades",
    "model_version",
)


class Keys:
    """Every key name, built in one place from the namespace."""

    def __init__(self, namespace: str = "") -> None:
        self.p = f"{namespace.rstrip(':')}:" if namespace else ""

    def ml(self, strategy: str, field: str) -> str:
        return f"{self.p}ml:{strategy}:{field}"

    def phantom(self, field: str) -> str:
        return f"{self.p}phantom:{field}"

    def wr(self, strategy: str) -> str:
        return f"{self.p}phantom:wr:{strategy}"

    def blocked(self, day) -> str:
        return f"{self.p}phantom:blocked:{pd.Timestamp(day):%Y%m%d}"

    def qcal(self, strategy: str, field: str) -> str:
        return f"{self.p}qcal:{strategy}:{field}"

    @property
    def scalp_completed(self) -> str:
        return f"{self.p}scalp_phantom:completed"


def _s(raw) -> str | None:
    return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)


class StateStore:
    """The seed's state keys over a Redis or SQLite backend (:func:`open_state`).

    Parameters
    ----------
    backend : StateBackend
        Where the keys live. The store uses its typed commands and guarded steps
        (:meth:`~research.stores.protocol.StateBackend.atomic`), never a command by name.
    namespace : str
        Prefix of every key (``"dev"`` gives ``dev:ml:...``): environments can share a server.
    """

    def __init__(self, backend: StateBackend, *, namespace: str = "") -> None:
        self.backend = backend
        self.keys = Keys(namespace)

    @property
    def url(self) -> str:
        """Where the store is, password masked (it is logged, printed and notified)."""
        return mask_url(self.backend.url)

    def ping(self) -> None:
        """Raise :class:`~research.stores.StoreUnavailable` (with a fix) if the store is down."""
        self.backend.exists(self.keys.phantom("active"))

    # ------------------------------------------------------------------ scorer
    def save_scorer(self, state: Mapping, *, threshold: float | None = None) -> None:
        """Write an :meth:`MLScorer.to_state` dict to ``ml:{strategy}:*`` in one transaction."""
        k, s = self.keys, state["strategy"]
        values = _scorer_values(state)
        if threshold is not None:
            values["threshold"] = float(threshold)
        trades = [canonical_json(t) for t in state["trades"]]

        def write(tx: StateWriter, _):
            for field, value in values.items():
                tx.set(k.ml(s, field), value)
            tx.delete(k.ml(s, "trades"))
            for i in range(0, len(trades), 1000):
                tx.rpush(k.ml(s, "trades"), *trades[i : i + 1000])

        self.backend.atomic((), lambda c: None, write)

    def load_scorer(self, strategy: str) -> dict | None:
        """The state saved by :meth:`save_scorer` (None if this strategy has none)."""
        k = self.keys

        def read(c: StateReader):
            fields = {f: c.get(k.ml(strategy, f)) for f in SCORER_FIELDS if f != "trades"}
            return fields, c.lrange(k.ml(strategy, "trades"), 0, -1)

        # watched: a snapshot of the fields and trades that one save_scorer wrote together
        watch = [k.ml(strategy, f) for f in SCORER_FIELDS]
        fields, trades = self.backend.atomic(watch, read, lambda tx, plan: None)
        if fields["completed_trades"] is None:
            return None
        return {
            "strategy": strategy,
            "completed_trades": int(fields["completed_trades"]),
            "last_train_count": int(fields["last_train_count"] or 0),
            "last_train_ts": _s(fields["last_train_ts"]) or None,
            "nn_enabled": _s(fields["nn_enabled"]) == "1",
            "model_version": int(fields["model_version"] or 0),
            "ev_buckets": json.loads(fields["ev_buckets"] or "{}"),
            "threshold": float(fields["threshold"]) if fields["threshold"] is not None else None,
            "trades": [json.loads(t) for t in trades],
        }

    # ------------------------------------------------------------------ thresholds
    def save_threshold(self, strategy: str, threshold: float) -> None:
        """``ml:{strategy}:threshold``: the strategy-wide EV threshold (score points, 0-100)."""
        self.backend.set(self.keys.ml(strategy, "threshold"), float(threshold))

    def save_thresholds(
        self, strategy: str, thresholds: Mapping[str, float], last_train_count: int
    ) -> None:
        """``qcal:{strategy}:thr`` and ``:last_train_count`` together."""
        k = self.keys

        def write(tx: StateWriter, _):
            tx.set(
                k.qcal(strategy, "thr"),
                canonical_json({b: float(v) for b, v in thresholds.items()}),
            )
            tx.set(k.qcal(strategy, "last_train_count"), int(last_train_count))

        self.backend.atomic((), lambda c: None, write)

    def load_thresholds(self, strategy: str) -> tuple[dict[str, float], int]:
        raw = self.backend.get(self.keys.qcal(strategy, "thr"))
        count = self.backend.get(self.keys.qcal(strategy, "last_train_count"))
        return (json.loads(raw) if raw else {}), int(count or 0)

    # ------------------------------------------------------------------ phantoms
    def set_active(self, active: Mapping[str, list]) -> None:
        """``phantom:active``: JSON ``{symbol: [phantom, ...]}`` (the open phantoms)."""
        value = canonical_json({sym: rows for sym, rows in active.items()})
        self.backend.set(self.keys.phantom("active"), value)

    def active(self) -> dict[str, list]:
        raw = self.backend.get(self.keys.phantom("active"))
        return json.loads(raw) if raw else {}

    def record_completed(self, phantom: Mapping, *, now=None) -> bool:
        """Push one completed phantom (a signal + outcome record) atomically and idempotently.

        :meth:`record_outcome` without a training record. Returns False if this ``signal_id``
        was recorded before (nothing changes).
        """
        return self.record_outcome(phantom, now=now) is not None

    def record_outcome(
        self, phantom: Mapping, *, trade: Mapping | None = None, now=None
    ) -> dict | None:
        """Record one outcome in one atomic step, exactly once whatever the number of writers.

        If this ``signal_id`` is not yet in ``phantom:recorded``, in one transaction:

        * ``phantom:completed`` (and ``scalp_phantom:completed``) gain the record and are
          trimmed to the last 1000 younger than 30 days (age counted from ``now``, default the
          record's ``exit_time``); ``phantom:wr:{strategy}`` gains ``'1'``/``'0'`` (timeouts are
          not wins or losses: not pushed) and keeps the last 200;
        * with ``trade`` (an :meth:`MLScorer.trade_record`, i.e. the scorer learns it):
          ``ml:{strategy}:trades`` gains it, ``completed_trades`` goes up by one and the EV
          bucket counts it.

        The step is guarded by the ``phantom:recorded`` set (``WATCH``: a concurrent writer
        makes it retry), so counters change only when the ``signal_id`` is new and ``trades``
        never holds one twice. Returns None for a ``signal_id`` seen before, else the shared
        counters after the step: ``{'completed_trades', 'last_train_count', 'model_version'}``
        of the strategy.
        """
        k, rec = self.keys, to_jsonable(phantom)
        sid, strategy = str(rec[S.SIGNAL_ID]), str(rec[S.STRATEGY])
        exit_time = pd.Timestamp(rec[S.EXIT_TIME])
        now = pd.Timestamp(now) if now is not None else exit_time
        score, oldest = exit_time.value / 1e9, (now - pd.Timedelta(days=COMPLETED_MAX_AGE_DAYS))
        member = canonical_json(rec)
        lists = [k.phantom("completed")] + ([k.scalp_completed] if strategy == "scalp" else [])
        counters = ("completed_trades", "last_train_count", "model_version")
        learnt = [k.ml(strategy, f) for f in ("completed_trades", "ev_buckets")]

        def read(c: StateReader):
            if c.sismember(k.phantom("recorded"), sid):
                return None
            shared = {f: int(c.get(k.ml(strategy, f)) or 0) for f in counters}
            buckets = c.get(k.ml(strategy, "ev_buckets")) if trade is not None else None
            return shared, buckets

        def write(tx: StateWriter, plan):
            if plan is None:
                return
            shared, buckets = plan
            tx.sadd(k.phantom("recorded"), sid)
            for key in lists:
                tx.zadd(key, {member: score})
                tx.zremrangebyscore(key, "-inf", f"({oldest.value / 1e9}")
                tx.zremrangebyrank(key, 0, -COMPLETED_MAX - 1)
            if rec[S.OUTCOME] in ("win", "loss"):
                tx.lpush(k.wr(strategy), "1" if rec[S.OUTCOME] == "win" else "0")
                tx.ltrim(k.wr(strategy), 0, WR_MAX - 1)
            if trade is not None:
                shared["completed_trades"] += 1
                ev = add_outcome(
                    json.loads(buckets or "{}"),
                    trade["features"],
                    trade[S.OUTCOME],
                    trade[S.PNL_PERCENT],
                )
                tx.rpush(k.ml(strategy, "trades"), canonical_json(trade))
                tx.set(k.ml(strategy, "completed_trades"), shared["completed_trades"])
                tx.set(k.ml(strategy, "ev_buckets"), canonical_json(ev))

        plan = self.backend.atomic([k.phantom("recorded"), *learnt], read, write)
        return None if plan is None else plan[0]

    # ------------------------------------------------------------------ shared retrains
    def claim_retrain(self, strategy: str, *, min_trades: int, retrain_every: int) -> int | None:
        """Claim the retrain the shared counters make due (one writer wins it), or None.

        Due when ``completed_trades >= min_trades`` and ``completed_trades - last_train_count
        >= retrain_every`` (the seed's rule on the shared counts). The winner's transaction
        sets ``last_train_count`` to the count it trains on, so no other writer sees it due;
        returns that count. :meth:`release_retrain` gives it back if the fit fails.
        """
        k = self.keys
        keys = [k.ml(strategy, "completed_trades"), k.ml(strategy, "last_train_count")]

        def read(c: StateReader):
            total, last = (int(c.get(key) or 0) for key in keys)
            due = total >= min_trades and total - last >= retrain_every
            return (total, last) if due else None

        def write(tx: StateWriter, plan):
            if plan is not None:
                tx.set(keys[1], plan[0])

        plan = self.backend.atomic(keys, read, write)
        return None if plan is None else plan[0]

    def release_retrain(self, strategy: str, claimed: int, previous: int) -> None:
        """After a failed fit: put ``last_train_count`` back to ``previous`` unless a newer
        retrain moved it on since this one was claimed at ``claimed``."""
        key = self.keys.ml(strategy, "last_train_count")

        def write(tx: StateWriter, current):
            if current == claimed:
                tx.set(key, int(previous))

        self.backend.atomic([key], lambda c: int(c.get(key) or 0), write)

    def next_model_version(self, strategy: str) -> int:
        """A new version for a model retrained without a registry: the shared counter's next
        value, taken atomically, so two writers whose fits overlap never both call theirs
        ``v + 1`` (the registry allocates its own versions the same way, ``model:next``)."""
        return self.backend.incr(self.keys.ml(strategy, "model_version"))

    def save_training(
        self, strategy: str, *, last_train_ts: str | None, model_version: int, nn_enabled: bool
    ) -> None:
        """After a retrain: its time, the model version (never moved back) and ``nn_enabled``."""
        k = self.keys
        key = k.ml(strategy, "model_version")

        def write(tx: StateWriter, current):
            tx.set(k.ml(strategy, "last_train_ts"), last_train_ts or "")
            tx.set(k.ml(strategy, "nn_enabled"), "1" if nn_enabled else "0")
            tx.set(key, max(int(current), int(model_version)))

        self.backend.atomic([key], lambda c: int(c.get(key) or 0), write)

    def completed(self, *, scalp: bool = False) -> list[dict]:
        """Records of ``phantom:completed`` (or ``scalp_phantom:completed``), oldest first."""
        key = self.keys.scalp_completed if scalp else self.keys.phantom("completed")
        return [json.loads(m) for m in self.backend.zrange(key, 0, -1)]

    def win_history(self, strategy: str) -> list[str]:
        """``phantom:wr:{strategy}``, newest first: ``'1'`` win, ``'0'`` loss."""
        return [_s(v) for v in self.backend.lrange(self.keys.wr(strategy), 0, -1)]

    def incr_blocked(self, day, n: int = 1) -> int:
        """Count ``n`` more signals blocked on ``day`` (``phantom:blocked:YYYYMMDD``)."""
        return int(self.backend.incrby(self.keys.blocked(day), int(n)))

    def blocked(self, day) -> int:
        return int(self.backend.get(self.keys.blocked(day)) or 0)

    # ------------------------------------------------------------------ housekeeping
    def all_keys(self) -> list[str]:
        """Every key under this namespace (for inspection and tests)."""
        return [_s(k) for k in self.backend.scan_keys(self.keys.p)]


def _scorer_values(state: Mapping) -> dict:
    """The scalar ``ml:{strategy}:*`` fields of an :meth:`MLScorer.to_state` dict, as stored."""
    return {
        "completed_trades": int(state["completed_trades"]),
        "last_train_count": int(state["last_train_count"]),
        "ev_buckets": canonical_json(state["ev_buckets"]),
        "nn_enabled": "1" if state["nn_enabled"] else "0",
        "last_train_ts": state["last_train_ts"] or "",
        "model_version": int(state.get("model_version", 0)),
    }


def open_state(url: str | None = None, *, namespace: str | None = None, **timeouts) -> StateStore:
    """The state store a URL names (default ``PHANTOMLAB_REDIS_URL``): ``redis://…`` or
    ``sqlite:///…``; ``namespace`` (default ``PHANTOMLAB_NAMESPACE``, else none) prefixes every
    key so two environments can share a server."""
    url = url or Settings.from_env().redis_url
    if namespace is None:
        namespace = os.environ.get("PHANTOMLAB_NAMESPACE", "")
    return StateStore(open_backend(url, **timeouts), namespace=namespace)
