"""The audit trail's tables, as the Alembic migrations create them (queries and autogenerate).

Column names shared with the frames come from :mod:`research.schema`; the few that exist only
here (the seed's ``strategy_name`` and ``features_json``, timestamps) are defined below.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from research import schema as S

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Column names that exist only in the audit trail (the frames' names live in research.schema).
FEATURES = "features"  # per-trade mapping of feature values (stored as features_json)
STRATEGY_NAME, FEATURES_JSON = "strategy_name", "features_json"  # the seed's column names
CREATED_AT, UPDATED_AT = "created_at", "updated_at"
RUN_STATUSES: tuple[str, ...] = ("running", "ok", "failed")

#: Columns every trade row must carry (the seed's phantom_trades fields).
REQUIRED_COLUMNS: tuple[str, ...] = S.SIGNAL_COLUMNS + (
    S.EXIT_TIME,
    S.EXIT_REASON,
    S.OUTCOME,
    S.PNL_PERCENT,
    S.REALIZED_RR,
)
_TEXTS = (S.SIGNAL_ID, S.SYMBOL, S.STRATEGY, S.SIDE, S.EXIT_REASON, S.OUTCOME)
_TIMES = (S.SIGNAL_TIME, S.EXIT_TIME)
_FLOATS = (
    S.ENTRY,
    S.SL,
    S.TP,
    S.EXIT_PRICE,
    S.PNL_PERCENT,
    S.REALIZED_RR,
    S.MAX_FAVORABLE,
    S.MAX_ADVERSE,
    S.TIME_TO_EXIT_SEC,
    S.ML_SCORE,
)
_BOOLS = (S.TP1_HIT, S.BE_MOVED, S.AMBIGUOUS_BAR, S.WAS_EXECUTED)
#: Columns of the frame returned by :meth:`AuditTrail.completed_trades` (schema names).
TRADE_COLUMNS: tuple[str, ...] = S.SIGNAL_COLUMNS + (
    S.EXIT_TIME,
    S.EXIT_PRICE,
    S.EXIT_REASON,
    S.OUTCOME,
    S.PNL_PERCENT,
    S.REALIZED_RR,
    S.TP1_HIT,
    S.BE_MOVED,
    S.MAX_FAVORABLE,
    S.MAX_ADVERSE,
    S.TIME_TO_EXIT_SEC,
    S.AMBIGUOUS_BAR,
    S.WAS_EXECUTED,
    S.ML_SCORE,
)


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive, as UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if type(value) is datetime:  # fast path: what trade_records produces
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return S.utc_timestamp(value).floor("us").to_pydatetime()  # the databases keep microseconds

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json() -> sa.types.TypeEngine:
    # none_as_null: a missing mapping is SQL NULL, not the JSON literal 'null'.
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _col(name: str, type_, nullable: bool = True, **kw) -> sa.Column:
    return sa.Column(name, type_, nullable=nullable, **kw)


_NOW = sa.text("CURRENT_TIMESTAMP")
#: The audit tables as the migrations create them (used for queries and by autogenerate).
META = sa.MetaData()
phantom_trades = sa.Table(
    "phantom_trades",
    META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _col(S.SIGNAL_ID, sa.String(128), False),
    _col(S.SYMBOL, sa.String(64), False),
    _col(S.SIDE, sa.String(8), False),
    _col(S.ENTRY, sa.Double, False),
    _col(S.SL, sa.Double, False),
    _col(S.TP, sa.Double, False),
    _col(S.SIGNAL_TIME, UTCDateTime, False),
    _col(S.EXIT_TIME, UTCDateTime),
    _col(S.OUTCOME, sa.String(16)),
    _col(S.PNL_PERCENT, sa.Double),
    _col(S.EXIT_REASON, sa.String(16)),
    _col(STRATEGY_NAME, sa.String(64), False),
    _col(S.WAS_EXECUTED, sa.Boolean, False, server_default=sa.false()),
    _col(S.ML_SCORE, sa.Double),
    _col(S.REALIZED_RR, sa.Double),
    _col(FEATURES_JSON, _json()),
    _col(CREATED_AT, UTCDateTime, False, server_default=_NOW),
    _col(UPDATED_AT, UTCDateTime, False, server_default=_NOW),
    _col(S.EXIT_PRICE, sa.Double),
    _col(S.TP1_HIT, sa.Boolean),
    _col(S.BE_MOVED, sa.Boolean),
    _col(S.MAX_FAVORABLE, sa.Double),
    _col(S.MAX_ADVERSE, sa.Double),
    _col(S.TIME_TO_EXIT_SEC, sa.Double),
    _col(S.AMBIGUOUS_BAR, sa.Boolean),
    sa.UniqueConstraint(S.SIGNAL_ID, name="uq_phantom_trades_signal_id"),
    sa.Index("ix_phantom_trades_strategy_exit", STRATEGY_NAME, S.EXIT_TIME),
    sa.Index("ix_phantom_trades_symbol", S.SYMBOL),
)
model_versions = sa.Table(
    "model_versions",
    META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _col(S.STRATEGY, sa.String(64), False),
    _col("version", sa.Integer, False),
    _col(CREATED_AT, UTCDateTime, False, server_default=_NOW),
    _col("sha256", sa.String(64), False),
    _col("metadata", _json()),
    _col("is_champion", sa.Boolean, False, server_default=sa.false()),
    _col("git_sha", sa.String(64)),
    _col("n_rows", sa.Integer),
    _col("train_start", UTCDateTime),
    _col("train_end", UTCDateTime),
    _col("metrics", _json()),
    sa.UniqueConstraint(S.STRATEGY, "version", name="uq_model_versions_strategy_version"),
    # At most one champion per strategy, enforced by the database itself.
    sa.Index(
        "uq_model_versions_champion",
        S.STRATEGY,
        unique=True,
        postgresql_where=sa.text("is_champion"),
        sqlite_where=sa.text("is_champion"),
    ),
)
pipeline_runs = sa.Table(
    "pipeline_runs",
    META,
    _col("run_id", sa.String(32), False, primary_key=True),
    _col("pipeline", sa.String(64), False),
    _col("status", sa.String(16), False),
    _col("started_at", UTCDateTime, False),
    _col("finished_at", UTCDateTime),
    _col("parameters", _json()),
    _col("metrics", _json()),
    _col(S.MODEL_VERSION, sa.Integer),
    _col("report_path", sa.Text),
    _col("error", sa.Text),
    sa.Index("ix_pipeline_runs_pipeline_started", "pipeline", "started_at"),
)
