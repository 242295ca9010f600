"""Alembic environment of the SQL audit trail (:mod:`research.stores.audit`).

:meth:`AuditTrail.upgrade` configures Alembic in code (``research.stores.sqlconn.alembic_config``)
and hands over its open connection in ``config.attributes["connection"]``, so no alembic.ini is
needed. Without a connection the URL is ``sqlalchemy.url`` of the config, else
``PHANTOMLAB_DATABASE_URL`` (default SQLite file).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from research.config import Settings
from research.stores.sqlconn import normalize_url
from research.stores.tables import META

config = context.config
target_metadata = META  # for `alembic revision --autogenerate`


def _url() -> sa.URL:
    return normalize_url(
        config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    )


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations run as copy-and-move batches.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Emit the SQL as text (``alembic upgrade head --sql``) instead of running it."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
