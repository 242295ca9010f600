"""The typed interface between the state store and its key-value backends.

:class:`~research.stores.state.StateStore` (and the registry, the rebuild) speak to a backend
only through :class:`StateBackend`: the handful of Redis commands they use, as typed methods
(strings, lists, sorted sets, sets), and :meth:`StateBackend.atomic`, a guarded step — read
watched keys (:class:`StateReader`), then queue writes (:class:`StateWriter`) that commit
together or not at all. :class:`~research.stores.backends.RedisBackend` maps that step onto
``WATCH``/``MULTI``/``EXEC`` (its reader and writer are redis-py's own client and pipeline,
which these protocols describe), :class:`~research.stores.backends.SqliteBackend` onto one
``BEGIN IMMEDIATE`` transaction.

Arguments are positional-only (``key, /``) as redis-py names them differently (``name``).
Writes queued in :meth:`~StateBackend.atomic` return nothing useful (redis-py returns the
pipeline): their results are not read. :class:`Commands` gives a backend the single commands
(each one its own transaction, with its result) from one method, ``_one``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar, runtime_checkable

Value = bytes | str | int | float
#: A sorted-set score bound as Redis takes it: a number, ``"(5"`` (exclusive), ``"-inf"``.
Bound = float | str
Plan = TypeVar("Plan")


class StateReader(Protocol):
    """The reads of a guarded step (``WATCH`` has started: they run immediately)."""

    def get(self, key: str, /) -> bytes | None: ...
    def exists(self, *keys: str) -> int: ...
    def llen(self, key: str, /) -> int: ...
    def lrange(self, key: str, start: int, stop: int, /) -> list[bytes]: ...
    def zcard(self, key: str, /) -> int: ...
    def zrange(self, key: str, start: int, stop: int, /) -> list[bytes]: ...
    def sismember(self, key: str, member: Value, /) -> int: ...
    def smembers(self, key: str, /) -> set[bytes]: ...
    def scard(self, key: str, /) -> int: ...


class StateWriter(Protocol):
    """The writes of a guarded step, queued and committed together (results not read)."""

    def set(self, key: str, value: Value, /, *, nx: bool = False) -> object: ...
    def delete(self, *keys: str) -> object: ...
    def rename(self, src: str, dst: str, /) -> object: ...
    def incrby(self, key: str, amount: int = 1, /) -> object: ...
    def rpush(self, key: str, *values: Value) -> object: ...
    def lpush(self, key: str, *values: Value) -> object: ...
    def ltrim(self, key: str, start: int, stop: int, /) -> object: ...
    def zadd(self, key: str, mapping: Mapping[Value, float], /) -> object: ...
    def zremrangebyscore(self, key: str, lo: Bound, hi: Bound, /) -> object: ...
    def zremrangebyrank(self, key: str, start: int, stop: int, /) -> object: ...
    def sadd(self, key: str, *members: Value) -> object: ...


class StateCommands(StateReader, Protocol):
    """Single commands, each atomic on its own, with their results."""

    def set(self, key: str, value: Value, /, *, nx: bool = False) -> bool | None: ...
    def delete(self, *keys: str) -> int: ...
    def rename(self, src: str, dst: str, /) -> bool: ...
    def incrby(self, key: str, amount: int = 1, /) -> int: ...
    def rpush(self, key: str, *values: Value) -> int: ...
    def lpush(self, key: str, *values: Value) -> int: ...
    def ltrim(self, key: str, start: int, stop: int, /) -> bool: ...
    def zadd(self, key: str, mapping: Mapping[Value, float], /) -> int: ...
    def zremrangebyscore(self, key: str, lo: Bound, hi: Bound, /) -> int: ...
    def zremrangebyrank(self, key: str, start: int, stop: int, /) -> int: ...
    def sadd(self, key: str, *members: Value) -> int: ...


@runtime_checkable
class StateBackend(StateCommands, Protocol):
    """A state-store backend: single commands, guarded steps, key listing.

    Every method raises :class:`~research.errors.StoreUnavailable` (with a fix) when
    the backend does not answer.
    """

    url: str

    def incr(self, key: str, /) -> int: ...

    def atomic(
        self,
        watch: Sequence[str],
        read: Callable[[StateReader], Plan],
        write: Callable[[StateWriter, Plan], None],
    ) -> Plan:
        """``plan = read(reader)`` on the ``watch``ed keys, then ``write(writer, plan)``, all
        or nothing; retried if a watched key changed in between. Returns ``plan``."""
        ...

    def scan_keys(self, prefix: str, /) -> list[bytes]:
        """Every key starting with ``prefix`` (the prefix matched literally), sorted."""
        ...

    def close(self) -> None: ...


class Commands:
    """The single commands of :class:`StateBackend`, each run by the backend's ``_one``.

    A subclass defines ``_one(op)``: run ``op(client)`` as one transaction, mapping a backend
    that does not answer to :class:`~research.errors.StoreUnavailable`.
    """

    def _one(self, op: Callable[[StateCommands], Plan]) -> Plan:
        raise NotImplementedError

    def get(self, key: str, /) -> bytes | None:
        return self._one(lambda c: c.get(key))

    def exists(self, *keys: str) -> int:
        return int(self._one(lambda c: c.exists(*keys)))

    def llen(self, key: str, /) -> int:
        return int(self._one(lambda c: c.llen(key)))

    def lrange(self, key: str, start: int, stop: int, /) -> list[bytes]:
        return self._one(lambda c: c.lrange(key, start, stop))

    def zcard(self, key: str, /) -> int:
        return int(self._one(lambda c: c.zcard(key)))

    def zrange(self, key: str, start: int, stop: int, /) -> list[bytes]:
        return self._one(lambda c: c.zrange(key, start, stop))

    def sismember(self, key: str, member: Value, /) -> int:
        return self._one(lambda c: c.sismember(key, member))

    def smembers(self, key: str, /) -> set[bytes]:
        return self._one(lambda c: c.smembers(key))

    def scard(self, key: str, /) -> int:
        return int(self._one(lambda c: c.scard(key)))

    def set(self, key: str, value: Value, /, *, nx: bool = False) -> bool | None:
        return self._one(lambda c: c.set(key, value, nx=nx))

    def delete(self, *keys: str) -> int:
        return int(self._one(lambda c: c.delete(*keys)))

    def rename(self, src: str, dst: str, /) -> bool:
        return bool(self._one(lambda c: c.rename(src, dst)))

    def incr(self, key: str, /) -> int:
        return self.incrby(key, 1)

    def incrby(self, key: str, amount: int = 1, /) -> int:
        return int(self._one(lambda c: c.incrby(key, amount)))

    def rpush(self, key: str, *values: Value) -> int:
        return int(self._one(lambda c: c.rpush(key, *values)))

    def lpush(self, key: str, *values: Value) -> int:
        return int(self._one(lambda c: c.lpush(key, *values)))

    def ltrim(self, key: str, start: int, stop: int, /) -> bool:
        return bool(self._one(lambda c: c.ltrim(key, start, stop)))

    def zadd(self, key: str, mapping: Mapping[Value, float], /) -> int:
        return int(self._one(lambda c: c.zadd(key, mapping)))

    def zremrangebyscore(self, key: str, lo: Bound, hi: Bound, /) -> int:
        return int(self._one(lambda c: c.zremrangebyscore(key, lo, hi)))

    def zremrangebyrank(self, key: str, start: int, stop: int, /) -> int:
        return int(self._one(lambda c: c.zremrangebyrank(key, start, stop)))

    def sadd(self, key: str, *members: Value) -> int:
        return int(self._one(lambda c: c.sadd(key, *members)))
