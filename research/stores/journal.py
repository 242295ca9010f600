"""Append-only local journal of outcome rows, for when the SQL audit trail is down.

DESIGN §4 "Nothing is lost": an outcome that cannot reach SQL is appended here (durable on disk
before :meth:`OutcomeJournal.append` returns) and replayed into the audit trail later.

Files, all beside ``path``:

``<path>``
    JSON Lines, one trade row per line (schema column names, ISO-8601 UTC times, NaN as null).
``<path>.replaying``
    The batch being replayed. :meth:`OutcomeJournal.replay_into` first renames ``<path>`` to it
    atomically (``os.replace``), writes it with the idempotent upsert of
    :meth:`AuditTrail.record_trades`, and deletes it only after that transaction committed. A
    process that dies anywhere in between leaves the file, which the next replay writes first;
    since the upsert is keyed by ``signal_id`` a batch written twice is still one row per trade.
``<path>.lock``
    Lock file (``flock``) serialising appends and replays across threads and processes, so no
    row is appended to a batch that is being replayed (and then deleted).

A crash in the middle of an append can leave a torn last line: it is skipped with a warning
(that append never returned, so nobody counted on it), and the next append starts a new line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from research.errors import StoreUnavailable
from research.stores.audit import AuditTrail, to_jsonable, trade_records

try:  # POSIX; elsewhere only threads of one process are serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger(__name__)

REPLAYING_SUFFIX = ".replaying"
LOCK_SUFFIX = ".lock"
_THREAD_LOCKS: dict[Path, threading.Lock] = {}  # the fallback without fcntl


def _fsync_dir(folder: Path) -> None:
    """Make a file's creation, rename or removal in ``folder`` durable (POSIX)."""
    if os.name != "posix":  # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutcomeJournal:
    """An append-only JSONL journal of trade rows at ``path`` (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The journal file; its folder is created if needed.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.replaying_path = self.path.with_name(self.path.name + REPLAYING_SUFFIX)
        self._lock_path = self.path.with_name(self.path.name + LOCK_SUFFIX)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"the outcome journal folder {self.path.parent} cannot be created ({exc}). "
                "Fix: choose a writable path for the journal."
            ) from exc

    def __repr__(self) -> str:
        return f"OutcomeJournal({str(self.path)!r})"

    @contextlib.contextmanager
    def _locked(self, *, shared: bool = False) -> Iterator[None]:
        if fcntl is None:  # pragma: no cover
            with _THREAD_LOCKS.setdefault(self.path.resolve(), threading.Lock()):
                yield
            return
        # flock locks belong to the open file description: threads of one process that each
        # open the lock file exclude each other too.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- writing --------------------------------------------------------------------------------
    def append(self, rows, *, features: pd.DataFrame | None = None) -> int:
        """Append trade rows durably (``flush`` + ``fsync`` before returning).

        Rows are validated exactly as :meth:`AuditTrail.record_trades` validates them
        (:class:`research.schema.SchemaError` on bad input), so every journaled row can be
        replayed.

        Returns
        -------
        int
            Number of rows appended.

        Raises
        ------
        StoreUnavailable
            The journal file cannot be written (disk full, permissions): nothing was recorded.
        """
        records = trade_records(rows, features=features)
        if not records:
            return 0
        payload = "".join(
            json.dumps(to_jsonable(r), allow_nan=False, separators=(",", ":")) + "\n"
            for r in records
        ).encode()
        try:
            with self._locked():
                created = not self.path.exists()
                with open(self.path, "a+b") as f:
                    if f.seek(0, os.SEEK_END) > 0:
                        f.seek(-1, os.SEEK_END)
                        if f.read(1) != b"\n":  # a torn line: keep it apart from the new rows
                            payload = b"\n" + payload
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
                if created:
                    _fsync_dir(self.path.parent)
        except OSError as exc:
            raise StoreUnavailable(
                f"the outcome journal {self.path} cannot be written ({exc}). "
                "Fix: free disk space or fix the permissions of its folder."
            ) from exc
        logger.info("journaled %d outcome row(s) in %s", len(records), self.path)
        return len(records)

    # -- reading --------------------------------------------------------------------------------
    def _read(self, path: Path) -> list[dict[str, Any]]:
        try:
            lines = path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        rows = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                row = None
            if not isinstance(row, dict):
                logger.warning(
                    "skipping torn line %d of %s (an append interrupted by a crash, never "
                    "acknowledged): %r",
                    number,
                    path,
                    line[:80],
                )
                continue
            rows.append(row)
        return rows

    def pending(self) -> list[dict[str, Any]]:
        """Rows not yet replayed (an interrupted replay's batch first), as journaled."""
        with self._locked(shared=True):
            return self._read(self.replaying_path) + self._read(self.path)

    # -- replay ---------------------------------------------------------------------------------
    def replay_into(self, audit: AuditTrail) -> int:
        """Write every pending row into ``audit``, then forget it.

        Returns
        -------
        int
            Rows written to SQL (a ``signal_id`` present in an interrupted batch and in the
            journal is written by both, and is still one row in SQL).

        Raises
        ------
        StoreUnavailable
            SQL is still down; the journal keeps every row for the next attempt.
        """
        written = 0
        # Held throughout: an append must not land in a batch that is about to be deleted.
        with self._locked():
            if self.replaying_path.exists():  # a replay died here, or SQL went down
                written += self._replay_batch(audit)
            if self.path.exists() and self.path.stat().st_size > 0:
                os.replace(self.path, self.replaying_path)
                _fsync_dir(self.path.parent)
                written += self._replay_batch(audit)
        if written:
            logger.info("replayed %d journaled outcome row(s) into %s", written, audit)
        return written

    def _replay_batch(self, audit: AuditTrail) -> int:
        rows = self._read(self.replaying_path)
        written = audit.record_trades(rows) if rows else 0  # committed, or raises: file kept
        self.replaying_path.unlink()
        _fsync_dir(self.path.parent)
        return written
