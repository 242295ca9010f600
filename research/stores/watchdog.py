"""Cut a database call that hangs: the client-side half of the SQL timeouts.

``statement_timeout`` needs a server that still runs, and ``tcp_user_timeout``/keepalives a
peer whose kernel stopped acknowledging; a PostgreSQL process that is paused, or a proxy or
load balancer that holds the connection open without forwarding, defeats both and would block
the caller forever. :class:`HangWatchdog` arms a timer around a call; if it fires, it shuts
down the sockets of the engine's connections, so the driver's blocked read returns an error
at once (SQLAlchemy then discards those connections) and the caller can fall back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import weakref
from collections.abc import Iterator

import sqlalchemy as sa

logger = logging.getLogger(__name__)


class _Arm:
    fired = False


class HangWatchdog:
    """Watches the DBAPI connections of one SQLAlchemy engine (psycopg 3)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._connections: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        sa.event.listen(engine, "connect", self._track)

    def _track(self, dbapi_connection, _record) -> None:
        with self._lock:
            self._connections.add(dbapi_connection)

    @contextlib.contextmanager
    def armed(self, seconds: float) -> Iterator[_Arm]:
        """Within the block, a call still blocked after ``seconds`` has its sockets cut."""
        arm = _Arm()
        timer = threading.Timer(seconds, self._cut, args=(arm, seconds))
        timer.daemon = True
        timer.start()
        try:
            yield arm
        finally:
            timer.cancel()

    def _cut(self, arm: _Arm, seconds: float) -> None:
        arm.fired = True
        with self._lock:
            connections = list(self._connections)
        logger.warning(
            "database gave no answer within %g s: closing %d connection(s)",
            seconds,
            len(connections),
        )
        for conn in connections:
            with contextlib.suppress(Exception):  # already closed: nothing to cut
                fd = conn.pgconn.socket
                with socket.socket(fileno=os.dup(fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
