"""Trade rows for the audit trail and the journal: validation, Python values, JSON-safe features.

:func:`trade_records` turns a frame (or mappings) of signals merged with their outcomes into
plain dicts, refusing bad input with :class:`research.schema.SchemaError` and a fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from research import schema as S
from research.jsonable import is_missing, to_jsonable  # noqa: F401 (re-exported)
from research.stores.tables import (
    _BOOLS,
    _FLOATS,
    _TEXTS,
    _TIMES,
    FEATURES,
    REQUIRED_COLUMNS,
)


def _fail(bad: Sequence[bool], ids: Sequence[str], message: str) -> None:
    """Raise SchemaError(message) naming the signal_ids of the ``bad`` rows, if any."""
    hits = [str(i) for i, b in zip(ids, bad, strict=True) if b]
    if hits:
        more = f" (and {len(hits) - 5} more)" if len(hits) > 5 else ""
        where = f"{len(hits)} row(s), signal_id {', '.join(hits[:5])}{more}"
        raise S.SchemaError(f"audit trades: {message.format(where=where)}")


def _vocab(out: dict[str, list], name: str, vocab: Sequence[str], nullable: bool) -> None:
    values = out[name]
    bad = [(v is None and not nullable) or (v is not None and v not in vocab) for v in values]
    unknown = sorted({str(v) for v, b in zip(values, bad, strict=True) if b})
    empty = " (empty for a trade still open)" if nullable else ""
    message = f"unknown or missing {name} {unknown} at {{where}}. Fix: use one of {list(vocab)}"
    _fail(bad, out[S.SIGNAL_ID], message + empty + ".")


def _texts(series: pd.Series) -> list[str | None]:
    return [None if is_missing(v) else str(v) for v in series.astype(object)]


def _times(series: pd.Series, name: str) -> list[datetime | None]:
    try:
        if pd.api.types.is_datetime64_any_dtype(series):
            times = pd.to_datetime(series, utc=True)
        else:  # e.g. the ISO strings of the journal
            times = pd.to_datetime(series, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise S.SchemaError(
            f"audit trades: {name} is not a timestamp column ({exc}). Fix: pass tz-aware UTC "
            f"datetimes or ISO-8601 strings, e.g. pd.to_datetime(df['{name}'], utc=True)."
        ) from exc
    values = times.dt.floor("us").dt.to_pydatetime()  # the databases keep microseconds
    return [None if missing else t for t, missing in zip(values, times.isna(), strict=True)]


def _floats(frame: pd.DataFrame, name: str) -> list[float | None]:
    if name not in frame:
        return [None] * len(frame)
    try:
        values = pd.to_numeric(frame[name].astype(object), errors="raise").astype("float64")
    except (ValueError, TypeError) as exc:
        raise S.SchemaError(
            f"audit trades: {name} is not numeric ({exc}). Fix: pass numbers (NaN if unknown)."
        ) from exc
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _bools(frame: pd.DataFrame, name: str) -> list[bool | None]:
    default = False if name == S.WAS_EXECUTED else None  # a phantom unless said otherwise
    values = frame[name].astype(object).tolist() if name in frame else [None] * len(frame)
    if any(isinstance(v, str) for v in values):  # bool("False") is True: refuse, do not guess
        raise S.SchemaError(f"audit trades: {name} holds text. Fix: pass booleans.")
    return [default if is_missing(v) else bool(v) for v in values]


def _check_rows(out: dict[str, list]) -> None:
    ids = out[S.SIGNAL_ID]
    for name in (S.SIGNAL_ID, S.SYMBOL, S.STRATEGY, S.SIGNAL_TIME, S.ENTRY, S.SL, S.TP):
        bad = [v is None for v in out[name]]
        _fail(bad, ids, f"no {name} at {{where}}. Fix: every trade needs its {name}.")
    _vocab(out, S.SIDE, S.SIDES, nullable=False)
    _vocab(out, S.OUTCOME, S.OUTCOMES, nullable=True)
    _vocab(out, S.EXIT_REASON, S.EXIT_REASONS, nullable=True)
    bad = [
        o is not None and t is None for o, t in zip(out[S.OUTCOME], out[S.EXIT_TIME], strict=True)
    ]
    fix = "Fix: set exit_time, or leave outcome empty while the trade is open."
    _fail(bad, ids, f"an outcome but no exit_time at {{where}}. {fix}")


def trade_records(rows, *, features: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Validate trade rows and return them as plain dicts (schema names, Python values).

    Parameters
    ----------
    rows : DataFrame or iterable of mappings
        Signal columns (:data:`research.schema.SIGNAL_COLUMNS`) and outcome columns; at least
        :data:`REQUIRED_COLUMNS`. Optional: the other outcome columns of
        :data:`TRADE_COLUMNS` (missing -> NULL; ``was_executed`` -> False) and ``features``,
        a mapping per row. ``outcome``/``exit_time`` may be empty for a trade still open.
        Naive times are taken as UTC.
    features : DataFrame, optional
        Features indexed by ``signal_id`` (e.g. :func:`research.features.build_features`),
        used for rows without their own ``features`` mapping.

    Returns
    -------
    list of dict
        Times as tz-aware UTC datetimes, NaN as None, features JSON-safe.

    Raises
    ------
    research.schema.SchemaError
        A required column is missing, or a value is empty or outside its vocabulary.
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    if len(frame) == 0:
        return []
    try:
        S.require_columns(frame, REQUIRED_COLUMNS, "audit trades")
    except S.SchemaError as exc:
        hint = "A trade row is a signal merged with its outcome: signals.merge(outcomes, on=...)."
        raise S.SchemaError(f"{exc} {hint}") from None
    frame = frame.reset_index(drop=True)
    out = {name: _texts(frame[name]) for name in _TEXTS}
    out |= {name: _times(frame[name], name) for name in _TIMES}
    out |= {name: _floats(frame, name) for name in _FLOATS}
    out |= {name: _bools(frame, name) for name in _BOOLS}
    _check_rows(out)
    given = frame[FEATURES].tolist() if FEATURES in frame else [None] * len(frame)
    lookup = features.to_dict("index") if features is not None else {}
    out[FEATURES] = [
        to_jsonable(f if isinstance(f, Mapping) else lookup.get(sid))
        for f, sid in zip(given, out[S.SIGNAL_ID], strict=True)
    ]
    names = list(out)
    return [dict(zip(names, values, strict=True)) for values in zip(*out.values(), strict=True)]


def expand_features(trades: pd.DataFrame, column: str = FEATURES) -> tuple[pd.DataFrame, list]:
    """``trades`` with its per-trade feature mappings as columns; returns (frame, names).

    The inverse of the ``features`` mapping :func:`trade_records` stores: each key becomes a
    column (NaN where a trade lacks it; a trade without a mapping has NaN throughout). Keys that
    clash with a trade column are dropped, the trade's own column wins. Without ``column`` the
    frame is returned as it is, with no names.
    """
    if column not in trades:
        return trades, []
    rows = [v if isinstance(v, dict) else {} for v in trades[column]]
    feats = pd.DataFrame.from_records(rows, index=trades.index)
    clash = [c for c in feats.columns if c in trades.columns]
    feats = feats.drop(columns=clash)
    return pd.concat([trades.drop(columns=[column]), feats], axis=1), list(feats.columns)
