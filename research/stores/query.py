"""SQL query helpers of the audit trail: schema names to column names, typed result frames."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from research import schema as S
from research.stores.tables import FEATURES, FEATURES_JSON, STRATEGY_NAME, UTCDateTime


def _db_column(name: str) -> str:
    return {S.STRATEGY: STRATEGY_NAME, FEATURES: FEATURES_JSON}.get(name, name)


def _frame(rows: Sequence, columns: Sequence[sa.Column], names: Sequence[str]) -> pd.DataFrame:
    """Query rows as a frame with the project's dtypes, chosen from the columns' SQL types."""
    df = pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(names))
    for name, column in zip(names, columns, strict=True):
        kind, values = column.type, df[name]
        if name in (S.OUTCOME, S.EXIT_REASON):  # fixed vocabularies, as simulate() returns them
            df[name] = pd.Categorical(values, S.OUTCOMES if name == S.OUTCOME else S.EXIT_REASONS)
        elif isinstance(kind, UTCDateTime):
            df[name] = pd.to_datetime(values, utc=True)
        elif isinstance(kind, sa.Double):
            df[name] = values.astype("float64")
        elif isinstance(kind, sa.Boolean):
            df[name] = values.astype("boolean" if values.isna().any() else bool)
        elif isinstance(kind, sa.Integer):
            df[name] = values.astype("Int64")
    return df


def _match(column: sa.ColumnElement, value: str | Iterable[str]) -> sa.ColumnElement:
    return column == value if isinstance(value, str) else column.in_(list(value))


def _utc_bound(value) -> datetime:
    return S.utc_timestamp(value).to_pydatetime()
