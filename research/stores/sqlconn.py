"""How the audit trail connects to SQL, and what it says when SQL does not answer.

URL normalisation (``postgresql://`` gets psycopg 3), the libpq settings that make a hung or
vanished PostgreSQL fail fast, the translation of driver errors into
:class:`~research.errors.StoreUnavailable` / :class:`~research.errors.StoreError` with a fix,
and the Alembic configuration of the shipped migrations. :class:`~research.stores.audit.AuditTrail`
uses them; the migrations' ``env.py`` uses :func:`normalize_url`.
"""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from research.errors import StoreError, StoreUnavailable
from research.stores.tables import MIGRATIONS_DIR


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; a plain ``postgresql://`` (or ``postgres://``) URL gets the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def connect_args(url: URL, *, connect_timeout: float, io_timeout: float) -> dict:
    """libpq settings that make a hung or vanished PostgreSQL fail fast (URL query wins).

    ``connect_timeout`` (seconds) bounds opening a connection; ``statement_timeout`` (from
    ``io_timeout``, seconds) makes the server cancel a statement that runs too long;
    ``tcp_user_timeout`` and the keepalives make the kernel drop a connection whose peer
    stopped acknowledging (a dead host). Other databases: none.
    """
    if url.get_backend_name() != "postgresql":
        return {}
    io_ms = int(io_timeout * 1000)
    wanted = {
        "connect_timeout": max(1, round(connect_timeout)),
        "options": f"-c statement_timeout={io_ms}",
        "tcp_user_timeout": io_ms,
        "keepalives": 1,
        "keepalives_idle": max(1, round(io_timeout)),
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }
    return {k: v for k, v in wanted.items() if k not in url.query}


def raise_store_error(
    exc: Exception, action: str, *, url: URL, hung_after: float | None = None
) -> NoReturn:
    """Raise the store error that says what went wrong with ``url`` and how to fix it.

    ``hung_after`` (seconds): the watchdog cut the call after that long without an answer.
    Missing tables raise :class:`StoreError`; another SQL programming error is re-raised as
    it is (a bug, not an outage); anything else is :class:`StoreUnavailable`.
    """
    masked = url.render_as_string(hide_password=True)
    orig = getattr(exc, "orig", None) or exc
    reason = (str(orig).strip() or type(orig).__name__).splitlines()[0]
    if hung_after is not None:
        reason = f"no answer within {hung_after:g} s"
    if "no such table" in reason or getattr(orig, "sqlstate", None) == "42P01":
        raise StoreError(
            f"the audit tables do not exist in {masked} ({reason}). "
            "Fix: run AuditTrail(url).upgrade() (Alembic 'upgrade head') once."
        ) from exc
    if isinstance(exc, sa_exc.ProgrammingError):
        raise exc
    if url.get_backend_name() == "sqlite":
        where = f"SQLite database {url.database!r}"
        fix = (
            "Fix: check that its folder exists and is writable and that no other "
            "process holds a long write lock, or set PHANTOMLAB_DATABASE_URL."
        )
    else:
        where = f"PostgreSQL at {url.host}:{url.port or 5432}"
        fix = (
            "Fix: start it (pg_ctlcluster <version> main start, or systemctl start "
            "postgresql), check database, user and password, or set "
            "PHANTOMLAB_DATABASE_URL to a reachable database."
        )
    raise StoreUnavailable(
        f"{where} does not answer ({reason}) while trying to {action}. {fix} URL: {masked}"
    ) from exc


def alembic_config():
    """An Alembic ``Config`` for the shipped migrations (no alembic.ini needed).

    Pass a connection in ``config.attributes['connection']`` (as
    :meth:`~research.stores.audit.AuditTrail.upgrade` does) or set ``sqlalchemy.url``; without
    either, env.py uses ``PHANTOMLAB_DATABASE_URL``.
    """
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates '%': escape it in the path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config
