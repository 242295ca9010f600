"""SQL audit trail: the seed's ``phantom_trades`` table, model versions and pipeline runs.

One :class:`AuditTrail` per database URL (SQLAlchemy 2 Core; PostgreSQL through psycopg 3, or
SQLite). Tables are created only by the Alembic migrations shipped in
``research/stores/migrations`` (:meth:`AuditTrail.upgrade`). Outcomes are written with an
idempotent upsert keyed by ``signal_id`` (DESIGN §4 "Nothing is lost"): writing the same trade
twice leaves one row holding the latest values.

A database that does not answer raises :class:`~research.errors.StoreUnavailable` from
every public method, so the caller can fall back to :class:`research.stores.journal.OutcomeJournal`.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from research import schema as S
from research.config import Settings
from research.errors import StoreError
from research.stores.query import _db_column, _frame, _match, _utc_bound
from research.stores.rows import is_missing, to_jsonable, trade_records  # noqa: F401 (re-exported)
from research.stores.sqlconn import (
    alembic_config,
    connect_args,
    normalize_url,
    raise_store_error,
)
from research.stores.tables import (  # noqa: F401 (re-exported)
    _NOW,
    CREATED_AT,
    FEATURES,
    FEATURES_JSON,
    META,
    MIGRATIONS_DIR,
    REQUIRED_COLUMNS,
    RUN_STATUSES,
    STRATEGY_NAME,
    TRADE_COLUMNS,
    UPDATED_AT,
    UTCDateTime,
    model_versions,
    phantom_trades,
    pipeline_runs,
)
from research.stores.watchdog import HangWatchdog

logger = logging.getLogger(__name__)


class AuditTrail:
    """The SQL audit trail at ``url`` (PostgreSQL or SQLite).

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL, e.g. ``postgresql+psycopg://user@host:5432/db`` (``postgresql://`` is
        mapped to psycopg 3) or ``sqlite:///phantomlab.db``. Default:
        ``Settings.from_env().database_url`` (``PHANTOMLAB_DATABASE_URL``).
    upgrade : bool
        Run the Alembic migrations to ``head`` now (a no-op when already current).

    Raises
    ------
    StoreUnavailable
        From every method (and the constructor with ``upgrade``) when the database does not
        answer; the message says what is wrong and how to fix it.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        upgrade: bool = True,
        connect_timeout: float | None = None,
        io_timeout: float | None = None,
    ) -> None:
        settings = Settings.from_env()
        self.url = normalize_url(url or settings.database_url)
        self.connect_timeout = float(connect_timeout or settings.connect_timeout_sec)
        self.io_timeout = float(io_timeout or settings.io_timeout_sec)
        self.backend = self.url.get_backend_name()
        if self.backend not in ("postgresql", "sqlite"):
            raise StoreError(
                f"the audit trail supports PostgreSQL and SQLite, not {self.backend} "
                f"({self.masked_url}). Fix: set PHANTOMLAB_DATABASE_URL to a "
                "postgresql:// or sqlite:/// URL."
            )
        self.engine = sa.create_engine(
            self.url,
            pool_pre_ping=True,
            pool_timeout=self.io_timeout,
            connect_args=connect_args(
                self.url, connect_timeout=self.connect_timeout, io_timeout=self.io_timeout
            ),
        )
        self._watchdog = HangWatchdog(self.engine) if self.backend == "postgresql" else None
        if upgrade:
            self.upgrade()

    @property
    def masked_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"AuditTrail({self.masked_url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- errors ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn driver errors into store errors that say what to do; cut a call that hangs.

        A server that stops answering without closing (a paused process, a dead host) would
        block the caller forever: past ``connect_timeout + io_timeout`` seconds the watchdog
        shuts this engine's sockets down, the driver raises, and the caller gets
        :class:`StoreUnavailable` (the recorder then journals the outcome).
        """
        deadline = self.connect_timeout + self.io_timeout + 1.0
        with self._watchdog.armed(deadline) if self._watchdog else contextlib.nullcontext() as dog:
            try:
                yield
            except (
                sa_exc.OperationalError,
                sa_exc.InterfaceError,
                sa_exc.ProgrammingError,
                sa_exc.TimeoutError,
            ) as exc:
                hung = dog is not None and dog.fired
                raise_store_error(exc, action, url=self.url, hung_after=deadline if hung else None)

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers ``SELECT 1``."""
        with self._guard("ping"), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def _fetch(self, query, action: str) -> list:
        with self._guard(action), self.engine.connect() as conn:
            return conn.execute(query).all()

    # -- migrations -----------------------------------------------------------------------------
    def upgrade(self, revision: str = "head") -> None:
        """Run the Alembic migrations on this database up to ``revision`` (idempotent)."""
        from alembic import command

        config = alembic_config()
        with self._guard("run the audit-trail migrations"), self.engine.begin() as conn:
            if self.backend == "postgresql":
                # Two processes starting together must not both create the tables.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('phantomlab_audit'))"))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)

    # -- trades ---------------------------------------------------------------------------------
    def record_trades(
        self, rows, *, features: pd.DataFrame | None = None, chunk_size: int = 1000
    ) -> int:
        """Upsert trades keyed by ``signal_id``, in one transaction.

        Rows are validated by :func:`trade_records` (:class:`research.schema.SchemaError` with
        a fix on bad input; nothing is written then). A ``signal_id`` already recorded is
        updated (latest values win, ``created_at`` kept, ``updated_at`` refreshed); repeated in
        one call, its last row wins.

        Returns
        -------
        int
            Number of distinct trades written.
        """
        latest = {r[S.SIGNAL_ID]: r for r in trade_records(rows, features=features)}
        if not latest:
            return 0
        now = datetime.now(UTC)
        params = [
            {_db_column(k): v for k, v in r.items()} | {CREATED_AT: now, UPDATED_AT: now}
            for r in latest.values()
        ]
        insert = postgresql.insert if self.backend == "postgresql" else sqlite.insert
        stmt = insert(phantom_trades)
        keep = {"id", S.SIGNAL_ID, CREATED_AT}
        stmt = stmt.on_conflict_do_update(
            index_elements=[phantom_trades.c[S.SIGNAL_ID]],
            set_={c.name: stmt.excluded[c.name] for c in phantom_trades.c if c.name not in keep},
        )
        with self._guard("record trades"), self.engine.begin() as conn:
            for start in range(0, len(params), chunk_size):
                conn.execute(stmt, params[start : start + chunk_size])
        logger.info("audit trail: recorded %d trade(s) in %s", len(params), self.masked_url)
        return len(params)

    def completed_trades(
        self,
        *,
        strategy: str | Iterable[str] | None = None,
        symbol: str | Iterable[str] | None = None,
        start=None,
        end=None,
        with_features: bool = False,
    ) -> pd.DataFrame:
        """Trades with an outcome, ordered by ``exit_time`` then ``signal_id``.

        ``start``/``end`` (datetime-like, naive = UTC) bound ``exit_time`` as ``[start, end)``.
        Columns: :data:`TRADE_COLUMNS` (schema names), plus ``features`` (dict or None) with
        ``with_features``.
        """
        t = phantom_trades
        names = list(TRADE_COLUMNS) + ([FEATURES] if with_features else [])
        query = sa.select(*(t.c[_db_column(n)] for n in names)).where(t.c[S.OUTCOME].is_not(None))
        if strategy is not None:
            query = query.where(_match(t.c[STRATEGY_NAME], strategy))
        if symbol is not None:
            query = query.where(_match(t.c[S.SYMBOL], symbol))
        if start is not None:
            query = query.where(t.c[S.EXIT_TIME] >= _utc_bound(start))
        if end is not None:
            query = query.where(t.c[S.EXIT_TIME] < _utc_bound(end))
        query = query.order_by(t.c[S.EXIT_TIME], t.c[S.SIGNAL_ID])
        columns = [t.c[_db_column(n)] for n in names]
        return _frame(self._fetch(query, "read completed trades"), columns, names)

    def count_trades(self, strategy: str | None = None, *, completed: bool = True) -> int:
        """Number of trades (with an outcome unless ``completed=False``), optionally per strategy."""
        t = phantom_trades
        query = sa.select(sa.func.count()).select_from(t)
        if completed:
            query = query.where(t.c[S.OUTCOME].is_not(None))
        if strategy is not None:
            query = query.where(t.c[STRATEGY_NAME] == strategy)
        return int(self._fetch(query, "count trades")[0][0])

    def trade_ids(self, strategy: str | None = None) -> set[str]:
        """Every recorded ``signal_id`` (open trades included)."""
        t = phantom_trades
        query = sa.select(t.c[S.SIGNAL_ID])
        if strategy is not None:
            query = query.where(t.c[STRATEGY_NAME] == strategy)
        return {row[0] for row in self._fetch(query, "list trade ids")}

    # -- model versions -------------------------------------------------------------------------
    def record_model_version(
        self,
        strategy: str,
        version: int,
        *,
        sha256: str,
        metadata: Mapping | None = None,
        metrics: Mapping | None = None,
        git_sha: str | None = None,
        n_rows: int | None = None,
        train_start=None,
        train_end=None,
        is_champion: bool = False,
    ) -> None:
        """Record a published model version (immutable; recording it again is a no-op).

        Raises :class:`StoreError` if ``(strategy, version)`` exists with another ``sha256``.
        With ``is_champion`` it also becomes the champion, in the same transaction, unless a
        newer version is (the champion moves forward only, see :meth:`set_champion`).
        """
        t = model_versions
        where = (t.c[S.STRATEGY] == strategy) & (t.c.version == int(version))
        row = {
            S.STRATEGY: strategy,
            "version": int(version),
            "sha256": sha256,
            CREATED_AT: datetime.now(UTC),
            "metadata": to_jsonable(metadata),
            "metrics": to_jsonable(metrics),
            "git_sha": git_sha,
            "n_rows": None if n_rows is None else int(n_rows),
            "train_start": None if is_missing(train_start) else _utc_bound(train_start),
            "train_end": None if is_missing(train_end) else _utc_bound(train_end),
        }
        with self._guard("record a model version"), self.engine.begin() as conn:
            known = conn.execute(sa.select(t.c.sha256).where(where)).scalar_one_or_none()
            if known is None:
                conn.execute(t.insert().values(**row))
            elif known != sha256:
                raise StoreError(
                    f"model {strategy} v{version} is already recorded with sha256 "
                    f"{known[:12]}..., not {sha256[:12]}.... Fix: versions are immutable; "
                    "publish the new model as the next version."
                )
            if is_champion:
                self._flip_champion(conn, strategy, int(version))

    def set_champion(self, strategy: str, version: int, *, rollback: bool = False) -> int:
        """Make ``version`` the only champion of ``strategy`` (one transaction); returns the
        champion. Forward only, as the registry's pointer: a late mirror of an older version
        leaves the newer champion (logged); ``rollback=True`` (an explicit rollback) moves back.
        """
        with self._guard("set the champion"), self.engine.begin() as conn:
            return self._flip_champion(conn, strategy, int(version), rollback=rollback)

    @staticmethod
    def _flip_champion(
        conn: sa.Connection, strategy: str, version: int, *, rollback: bool = False
    ) -> int:
        t = model_versions
        mine = t.c[S.STRATEGY] == strategy
        if conn.dialect.name == "sqlite":  # take the write lock before reading (no FOR UPDATE)
            conn.execute(t.update().where(mine).values(is_champion=t.c.is_champion))
        # FOR UPDATE: two concurrent flips on PostgreSQL serialise instead of colliding.
        query = sa.select(t.c.version, t.c.is_champion).where(mine).with_for_update()
        rows = conn.execute(query).all()
        known = [r.version for r in rows]
        if version not in known:
            raise StoreError(
                f"no model version {strategy} v{version} in the audit trail (recorded: "
                f"{sorted(known)}). Fix: record_model_version(...) it first."
            )
        current = max((r.version for r in rows if r.is_champion), default=None)
        if current is not None and current > version and not rollback:
            logger.info(
                "SQL champion of %s stays v%d: v%d is older (rollback=True moves back)",
                strategy,
                current,
                version,
            )
            return current
        conn.execute(t.update().where(mine, t.c.is_champion.is_(True)).values(is_champion=False))
        conn.execute(t.update().where(mine, t.c.version == version).values(is_champion=True))
        return version

    def model_versions(self, strategy: str | None = None) -> pd.DataFrame:
        """Model versions ordered by strategy, version (columns as in the table, minus id)."""
        t = model_versions
        cols = [c for c in t.c if c.name != "id"]
        query = sa.select(*cols).order_by(t.c[S.STRATEGY], t.c.version)
        if strategy is not None:
            query = query.where(t.c[S.STRATEGY] == strategy)
        return _frame(self._fetch(query, "read model versions"), cols, [c.name for c in cols])

    # -- pipeline runs --------------------------------------------------------------------------
    def start_run(self, pipeline: str, parameters: Mapping | None = None) -> str:
        """Record a pipeline run as ``running``; return its id (uuid4 hex)."""
        run_id = uuid.uuid4().hex
        row = {
            "run_id": run_id,
            "pipeline": pipeline,
            "status": RUN_STATUSES[0],
            "started_at": datetime.now(UTC),
            "parameters": to_jsonable(parameters),
        }
        with self._guard("start a pipeline run"), self.engine.begin() as conn:
            conn.execute(pipeline_runs.insert().values(**row))
        return run_id

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        metrics: Mapping | None = None,
        model_version: int | None = None,
        report_path: str | Path | None = None,
        error: str | BaseException | None = None,
    ) -> None:
        """Close a run with ``status`` ``'ok'`` or ``'failed'`` and what it produced."""
        if status not in RUN_STATUSES[1:]:
            raise ValueError(f"status must be 'ok' or 'failed', got {status!r}.")
        values = {
            "status": status,
            "finished_at": datetime.now(UTC),
            "metrics": to_jsonable(metrics),
            S.MODEL_VERSION: None if model_version is None else int(model_version),
            "report_path": None if report_path is None else str(report_path),
            "error": None if error is None else str(error),
        }
        t = pipeline_runs
        with self._guard("finish a pipeline run"), self.engine.begin() as conn:
            done = conn.execute(t.update().where(t.c.run_id == run_id).values(**values))
        if done.rowcount == 0:
            raise StoreError(f"no pipeline run {run_id!r}. Fix: pass the id start_run returned.")

    def runs(self, pipeline: str | None = None) -> pd.DataFrame:
        """Pipeline runs ordered by start time."""
        t = pipeline_runs
        query = sa.select(*t.c).order_by(t.c.started_at, t.c.run_id)
        if pipeline is not None:
            query = query.where(t.c.pipeline == pipeline)
        return _frame(self._fetch(query, "read pipeline runs"), list(t.c), t.c.keys())
