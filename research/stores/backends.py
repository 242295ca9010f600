"""Key-value backends of the state store: a real Redis, or the same data model on SQLite.

The state store (:mod:`research.stores.state`) is written once against
:class:`~research.stores.protocol.StateBackend`: the handful of Redis commands it needs —
strings, lists, sorted sets, sets — as typed methods, and an :meth:`atomic` block: read
(watched keys), then queue writes that commit together or not at all. :class:`RedisBackend`
maps that block onto ``WATCH``/``MULTI``/``EXEC`` (retried when a watched key changed);
:class:`SqliteBackend` onto one ``BEGIN IMMEDIATE`` transaction, so a laptop or the demo needs
no Redis server and both pass one test suite.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from research.errors import StoreUnavailable
from research.stores.protocol import (
    Commands,
    Plan,
    StateBackend,
    StateCommands,
    StateReader,
    StateWriter,
    Value,
)
from research.urls import mask_url

logger = logging.getLogger(__name__)


def _b(value: Value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


# ---------------------------------------------------------------------------- Redis
class RedisBackend(Commands):
    """A Redis server (``redis://host:port/db``); every call fails as :class:`StoreUnavailable`
    with a fix-it message when the server does not answer."""

    def __init__(
        self, url: str, *, timeout: float | None = None, connect_timeout: float | None = None
    ) -> None:
        import redis

        from research.config import Settings

        settings = Settings.from_env()
        self.url = url
        self._redis = redis
        # A server that stops answering fails the call after io_timeout (redis-py raises
        # TimeoutError): the recorder goes on and marks the state view stale.
        self.r = redis.Redis.from_url(
            url,
            socket_timeout=timeout or settings.io_timeout_sec,
            socket_connect_timeout=connect_timeout or settings.connect_timeout_sec,
            socket_keepalive=True,
        )

    def _down(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"Redis at {mask_url(self.url)} does not answer ({exc}). Fix: start it "
            "(redis-server --daemonize yes) or point PHANTOMLAB_REDIS_URL elsewhere, e.g. "
            "sqlite:///state.db for the embedded backend."
        )

    def _one(self, op: Callable[[StateCommands], Plan]) -> Plan:
        try:
            return op(self.r)
        except (self._redis.ConnectionError, self._redis.TimeoutError) as exc:
            raise self._down(exc) from exc

    def atomic(
        self,
        watch: Sequence[str],
        read: Callable[[StateReader], Plan],
        write: Callable[[StateWriter, Plan], None],
    ) -> Plan:
        """``plan = read(client)`` on the watched keys, then ``write(tx, plan)`` in MULTI/EXEC;
        retried if a watched key changed in between. Returns ``plan``."""
        try:
            with self.r.pipeline() as pipe:
                while True:
                    try:
                        if watch:  # reads go through the watching pipeline, immediately
                            pipe.watch(*watch)
                        plan = read(pipe if watch else self.r)
                        pipe.multi()
                        write(pipe, plan)
                        pipe.execute()
                        return plan
                    except self._redis.WatchError:
                        logger.debug("watched key changed; transaction retried")
        except (self._redis.ConnectionError, self._redis.TimeoutError) as exc:
            raise self._down(exc) from exc

    def scan_keys(self, prefix: str) -> list[bytes]:
        try:
            return sorted(self.r.scan_iter(f"{_glob_escape(prefix)}*"))
        except (self._redis.ConnectionError, self._redis.TimeoutError) as exc:
            raise self._down(exc) from exc

    def close(self) -> None:
        self.r.close()


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


# ---------------------------------------------------------------------------- SQLite
_SCHEMA = """
CREATE TABLE IF NOT EXISTS strings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lists (key TEXT NOT NULL, pos INTEGER NOT NULL, value BLOB NOT NULL,
                                  PRIMARY KEY (key, pos));
CREATE TABLE IF NOT EXISTS zsets (key TEXT NOT NULL, member BLOB NOT NULL, score REAL NOT NULL,
                                  PRIMARY KEY (key, member));
CREATE TABLE IF NOT EXISTS sets (key TEXT NOT NULL, member BLOB NOT NULL,
                                 PRIMARY KEY (key, member));
CREATE INDEX IF NOT EXISTS zsets_score ON zsets (key, score);
"""
_TABLES = ("strings", "lists", "zsets", "sets")


class _SqliteClient:
    """The Redis commands the state store uses, on one SQLite connection (inside a transaction)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def _one(self, sql: str, args=()):
        row = self.con.execute(sql, args).fetchone()
        return row[0] if row else None

    # strings
    def get(self, key):
        return self._one("SELECT value FROM strings WHERE key=?", (key,))

    def set(self, key, value, nx: bool = False):
        if nx and self.exists(key):
            return None
        self.delete(key)
        self.con.execute("INSERT INTO strings VALUES (?, ?)", (key, _b(value)))
        return True

    def incrby(self, key, amount: int = 1) -> int:
        value = int(self.get(key) or 0) + int(amount)
        self.con.execute("INSERT OR REPLACE INTO strings VALUES (?, ?)", (key, _b(value)))
        return value

    def incr(self, key) -> int:
        return self.incrby(key, 1)

    def exists(self, *keys) -> int:
        return sum(
            any(self._one(f"SELECT 1 FROM {t} WHERE key=? LIMIT 1", (k,)) for t in _TABLES)
            for k in keys
        )

    def delete(self, *keys) -> int:
        n = self.exists(*keys)
        for k in keys:
            for t in _TABLES:
                self.con.execute(f"DELETE FROM {t} WHERE key=?", (k,))
        return n

    def rename(self, src, dst) -> bool:
        if not self.exists(src):
            raise KeyError(f"no such key {src!r}")  # as Redis: ERR no such key
        self.delete(dst)
        for t in _TABLES:
            self.con.execute(f"UPDATE {t} SET key=? WHERE key=?", (dst, src))
        return True

    # lists
    def _ends(self, key):
        return self.con.execute(
            "SELECT MIN(pos), MAX(pos) FROM lists WHERE key=?", (key,)
        ).fetchone()

    def rpush(self, key, *values) -> int:
        lo, hi = self._ends(key)
        start = 0 if hi is None else hi + 1
        self.con.executemany(
            "INSERT INTO lists VALUES (?, ?, ?)",
            [(key, start + i, _b(v)) for i, v in enumerate(values)],
        )
        return self.llen(key)

    def lpush(self, key, *values) -> int:
        lo, hi = self._ends(key)
        start = 0 if lo is None else lo - 1
        self.con.executemany(
            "INSERT INTO lists VALUES (?, ?, ?)",
            [(key, start - i, _b(v)) for i, v in enumerate(values)],
        )
        return self.llen(key)

    def llen(self, key) -> int:
        return int(self._one("SELECT COUNT(*) FROM lists WHERE key=?", (key,)))

    def _span(self, key, start: int, stop: int) -> tuple[int, int]:
        n = self.llen(key)
        start = max(start + n if start < 0 else start, 0)
        stop = min(stop + n if stop < 0 else stop, n - 1)
        return start, stop

    def lrange(self, key, start: int, stop: int) -> list[bytes]:
        start, stop = self._span(key, start, stop)
        if stop < start:
            return []
        rows = self.con.execute(
            "SELECT value FROM lists WHERE key=? ORDER BY pos LIMIT ? OFFSET ?",
            (key, stop - start + 1, start),
        )
        return [r[0] for r in rows]

    def ltrim(self, key, start: int, stop: int) -> bool:
        start, stop = self._span(key, start, stop)
        keep = self.con.execute(
            "SELECT pos FROM lists WHERE key=? ORDER BY pos LIMIT ? OFFSET ?",
            (key, max(stop - start + 1, 0), start),
        ).fetchall()
        if not keep:
            self.con.execute("DELETE FROM lists WHERE key=?", (key,))
        else:
            self.con.execute(
                "DELETE FROM lists WHERE key=? AND (pos < ? OR pos > ?)",
                (key, keep[0][0], keep[-1][0]),
            )
        return True

    # sorted sets
    def zadd(self, key, mapping: dict) -> int:
        before = self.zcard(key)
        self.con.executemany(
            "INSERT OR REPLACE INTO zsets VALUES (?, ?, ?)",
            [(key, _b(m), float(s)) for m, s in mapping.items()],
        )
        return self.zcard(key) - before

    def zcard(self, key) -> int:
        return int(self._one("SELECT COUNT(*) FROM zsets WHERE key=?", (key,)))

    def zscore(self, key, member):
        return self._one("SELECT score FROM zsets WHERE key=? AND member=?", (key, _b(member)))

    def zrange(self, key, start: int, stop: int) -> list[bytes]:
        n = self.zcard(key)
        start = max(start + n if start < 0 else start, 0)
        stop = min(stop + n if stop < 0 else stop, n - 1)
        if stop < start:
            return []
        rows = self.con.execute(
            "SELECT member FROM zsets WHERE key=? ORDER BY score, member LIMIT ? OFFSET ?",
            (key, stop - start + 1, start),
        )
        return [r[0] for r in rows]

    def zremrangebyscore(self, key, lo, hi) -> int:
        (lo, lo_op), (hi, hi_op) = _bound(lo, ">"), _bound(hi, "<")
        cur = self.con.execute(
            f"DELETE FROM zsets WHERE key=? AND score {lo_op} ? AND score {hi_op} ?", (key, lo, hi)
        )
        return cur.rowcount

    def zremrangebyrank(self, key, start: int, stop: int) -> int:
        doomed = self.zrange(key, start, stop)
        self.con.executemany(
            "DELETE FROM zsets WHERE key=? AND member=?", [(key, m) for m in doomed]
        )
        return len(doomed)

    # sets
    def sadd(self, key, *members) -> int:
        cur = self.con.executemany(
            "INSERT OR IGNORE INTO sets VALUES (?, ?)", [(key, _b(m)) for m in members]
        )
        return cur.rowcount

    def sismember(self, key, member) -> bool:
        return self._one("SELECT 1 FROM sets WHERE key=? AND member=?", (key, _b(member))) == 1

    def smembers(self, key) -> set[bytes]:
        return {r[0] for r in self.con.execute("SELECT member FROM sets WHERE key=?", (key,))}

    def scard(self, key) -> int:
        return int(self._one("SELECT COUNT(*) FROM sets WHERE key=?", (key,)))

    def multi(self) -> None:  # writes are already inside the transaction
        return None


def _bound(value, op: str) -> tuple[float, str]:
    """A Redis score bound (``5``, ``"(5"`` exclusive, ``"-inf"``/``"+inf"``) as SQL."""
    text = str(value)
    if text.startswith("("):
        return float(text[1:]), op
    return float(text.replace("+inf", "inf")), op + "="


class SqliteBackend(Commands):
    """The embedded backend: one SQLite file (``sqlite:///path.db``) with Redis' data model."""

    def __init__(self, url: str) -> None:
        self.url = url
        path = url.split("sqlite:///", 1)[-1] if url.startswith("sqlite:") else url
        self.path = Path(path) if path not in ("", ":memory:") else None
        if self.path is not None and not self.path.parent.is_dir():
            raise StoreUnavailable(
                f"the folder of the state file {self.path} does not exist. Fix: create it or "
                "set PHANTOMLAB_REDIS_URL=sqlite:///<existing folder>/state.db."
            )
        target = str(self.path) if self.path is not None else ":memory:"
        try:
            self.con = sqlite3.connect(
                target, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self.con.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"cannot open the state file {target}: {exc}. Fix: check "
                "the path and its permissions."
            ) from exc
        self.client = _SqliteClient(self.con)
        self._lock = threading.RLock()

    def _one(self, op: Callable[[StateCommands], Plan]) -> Plan:
        with self._lock:
            return self.atomic((), op, lambda tx, plan: None)

    def atomic(
        self,
        watch: Sequence[str],
        read: Callable[[StateReader], Plan],
        write: Callable[[StateWriter, Plan], None],
    ) -> Plan:
        """``read`` then ``write`` inside one ``BEGIN IMMEDIATE`` transaction (all or nothing)."""
        with self._lock:
            try:
                self.con.execute("BEGIN IMMEDIATE")
                try:
                    plan = read(self.client)
                    write(self.client, plan)
                except BaseException:
                    self.con.execute("ROLLBACK")
                    raise
                self.con.execute("COMMIT")
                return plan
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(
                    f"state file {self.url}: {exc}. Fix: check that no other "
                    "process holds it locked and the disk is writable."
                ) from exc

    def scan_keys(self, prefix: str) -> list[bytes]:
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = set()
        for t in _TABLES:
            rows |= {
                r[0]
                for r in self.con.execute(
                    f"SELECT DISTINCT key FROM {t} WHERE key LIKE ? ESCAPE '\\'", (like,)
                )
            }
        return sorted(k.encode() for k in rows)

    def close(self) -> None:
        self.con.close()


def open_backend(url: str, **timeouts) -> StateBackend:
    """The backend a URL names: ``redis://`` / ``rediss://`` / ``unix://`` or ``sqlite:///``.

    ``timeouts`` (``timeout``, ``connect_timeout``, seconds) go to Redis; default from
    :class:`~research.config.Settings` (``PHANTOMLAB_IO_TIMEOUT``, ``..._CONNECT_TIMEOUT``).
    """
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        return RedisBackend(url, **timeouts)
    if scheme == "sqlite":
        return SqliteBackend(url)
    raise ValueError(
        f"unknown state store URL {mask_url(url)!r}. Fix: use redis://host:6379/0 for Redis or "
        "sqlite:///path/state.db for the embedded backend (PHANTOMLAB_REDIS_URL)."
    )
