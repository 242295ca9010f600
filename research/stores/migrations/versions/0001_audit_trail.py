"""audit trail: phantom_trades, model_versions, pipeline_runs

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

A migration is history: it spells its tables and columns literally, so that a later rename in
``research.schema`` cannot change what revision 0001 creates (a rename is a new revision).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = True, **kw) -> sa.Column:
    """A timezone-aware timestamp (TIMESTAMPTZ on PostgreSQL; UTC text on SQLite)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, **kw)


def _now() -> sa.TextClause:
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    # The seed's table ("PostgreSQL audit trail") plus the idempotency key and lifecycle columns.
    op.create_table(
        "phantom_trades",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("signal_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("entry", sa.Double, nullable=False),
        sa.Column("sl", sa.Double, nullable=False),
        sa.Column("tp", sa.Double, nullable=False),
        _ts("signal_time", nullable=False),
        _ts("exit_time"),
        sa.Column("outcome", sa.String(16)),
        sa.Column("pnl_percent", sa.Double),
        sa.Column("exit_reason", sa.String(16)),
        sa.Column("strategy_name", sa.String(64), nullable=False),
        sa.Column("was_executed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("ml_score", sa.Double),
        sa.Column("realized_rr", sa.Double),
        sa.Column("features_json", _json()),
        _ts("created_at", nullable=False, server_default=_now()),
        _ts("updated_at", nullable=False, server_default=_now()),
        sa.Column("exit_price", sa.Double),
        sa.Column("tp1_hit", sa.Boolean),
        sa.Column("be_moved", sa.Boolean),
        sa.Column("max_favorable", sa.Double),
        sa.Column("max_adverse", sa.Double),
        sa.Column("time_to_exit_sec", sa.Double),
        sa.Column("ambiguous_bar", sa.Boolean),
        sa.UniqueConstraint("signal_id", name="uq_phantom_trades_signal_id"),
    )
    op.create_index(
        "ix_phantom_trades_strategy_exit", "phantom_trades", ["strategy_name", "exit_time"]
    )
    op.create_index("ix_phantom_trades_symbol", "phantom_trades", ["symbol"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        _ts("created_at", nullable=False, server_default=_now()),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("metadata", _json()),
        sa.Column("is_champion", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("git_sha", sa.String(64)),
        sa.Column("n_rows", sa.Integer),
        _ts("train_start"),
        _ts("train_end"),
        sa.Column("metrics", _json()),
        sa.UniqueConstraint("strategy", "version", name="uq_model_versions_strategy_version"),
    )
    # At most one champion per strategy, enforced by the database (partial unique index).
    op.create_index(
        "uq_model_versions_champion",
        "model_versions",
        ["strategy"],
        unique=True,
        postgresql_where=sa.text("is_champion"),
        sqlite_where=sa.text("is_champion"),
    )

    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.Column("parameters", _json()),
        sa.Column("metrics", _json()),
        sa.Column("model_version", sa.Integer),
        sa.Column("report_path", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_index(
        "ix_pipeline_runs_pipeline_started", "pipeline_runs", ["pipeline", "started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_pipeline_runs_pipeline_started", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_index("uq_model_versions_champion", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_index("ix_phantom_trades_symbol", table_name="phantom_trades")
    op.drop_index("ix_phantom_trades_strategy_exit", table_name="phantom_trades")
    op.drop_table("phantom_trades")
