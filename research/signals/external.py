"""Bring your own signals: a user's signals file -> the signals frame of DESIGN §3.

The file (``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``) holds one row per signal of the user's
own bot:

=============  =================================================================================
column         meaning
=============  =================================================================================
symbol         the market, e.g. ``BTC/USDT``; matched to a candle file stem by
               :func:`match_symbols` (``BTC/USDT`` -> ``BTC_USDT_5m``)
side           ``long`` or ``short`` (any case; ``buy`` and ``sell`` are read as long and short)
signal_time    UTC **close** time of the bar that produced the signal (nothing after it may have
               been used); ISO 8601 (no offset = UTC) or epoch seconds / milliseconds
entry, sl, tp  prices > 0: a long needs ``sl < entry < tp``, a short ``tp < entry < sl``
strategy       optional, any name (default ``'external'``); models, thresholds and timeouts are
               per strategy
signal_id      optional unique id; default a deterministic uuid5 of symbol, strategy, side and
               time (:func:`research.signals.new_signal_ids`, as for the built-in strategies)
timeout_hours  optional per-signal timeout, hours > 0 (empty = the run's default)
anything else  the bot's own features: numbers, or categories such as a venue name
=============  =================================================================================

Column names are matched case-insensitively. Every problem is an error naming the rows (file
lines for CSV, 0-based rows for Parquet) and the fix, as a
:class:`~research.schema.SchemaError` (a ``ValueError``).

The other columns become model inputs named ``x_*``: :mod:`research.signals.extras`.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from research import schema as S
from research.signals import new_signal_ids
from research.signals.extras import extra_features

logger = logging.getLogger(__name__)

#: Columns every signals file needs.
REQUIRED: tuple[str, ...] = (S.SYMBOL, S.SIDE, S.SIGNAL_TIME, S.ENTRY, S.SL, S.TP)
#: Columns with a meaning of their own when present.
OPTIONAL: tuple[str, ...] = (S.STRATEGY, S.SIGNAL_ID, S.TIMEOUT_HOURS)
#: Strategy of the rows of a file without a ``strategy`` column.
DEFAULT_STRATEGY = "external"
SIDE_ALIASES: dict[str, str] = {"long": S.LONG, "buy": S.LONG, "short": S.SHORT, "sell": S.SHORT}
EXTENSIONS: tuple[str, ...] = (".csv.gz", ".csv", ".parquet", ".pq")

# usual other spellings, suggested (never renamed silently) when a required column is missing
_ALIASES = {
    S.SYMBOL: ("pair", "ticker", "market", "instrument", "asset"),
    S.SIDE: ("direction", "action", "signal", "position", "type"),
    S.SIGNAL_TIME: ("time", "timestamp", "datetime", "date", "close_time", "open_time", "ts"),
    S.ENTRY: ("entry_price", "price", "open_price", "entry_px"),
    S.SL: ("stop_loss", "stoploss", "stop", "sl_price"),
    S.TP: ("take_profit", "takeprofit", "target", "tp_price"),
}


def load_signals(
    path: str | Path,
    *,
    strategy: str = DEFAULT_STRATEGY,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Read and validate a signals file (format in the module doc).

    Parameters
    ----------
    path : str or Path
        ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``.
    strategy : str
        Strategy name of the rows when the file has no ``strategy`` column.
    categories : mapping of column -> values, optional
        Vocabularies of text columns (``frame.attrs["extra_categories"]`` of an earlier load),
        so that new signals get the columns a fitted model expects.

    Returns
    -------
    DataFrame
        The signals frame (:data:`research.schema.SIGNAL_COLUMNS`, ``signal_time`` tz-aware
        UTC), plus ``timeout_hours`` if the file has it and the ``x_*`` feature columns
        (float64), sorted by ``signal_time``. ``attrs``: ``source`` (the path) and
        ``extra_categories``.

    Raises
    ------
    SchemaError
        Missing file or column, unreadable time, unknown side, bad prices, duplicate ids.
    """
    path = Path(path)
    raw, rows = _read(path)
    return prepare_signals(
        raw, source=str(path), rows=rows, strategy=strategy, categories=categories
    )


def prepare_signals(
    raw: pd.DataFrame,
    *,
    source: str = "signals",
    rows: tuple[str, int] = ("row", 0),
    strategy: str = DEFAULT_STRATEGY,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Validate a frame laid out like a signals file (see :func:`load_signals`).

    ``source`` names the frame in errors; ``rows`` is how a row is called there and the number
    of its first row (``("line", 2)`` for a CSV file with a header).
    """
    df = _normalise_columns(raw.reset_index(drop=True), source)
    where = _Rows(source, rows)
    if df.empty:
        raise S.SchemaError(
            f"{source}: no signals (0 rows). Fix: write one signal per row "
            f"under the header {','.join(REQUIRED)}."
        )
    for col in REQUIRED:
        empty = df[col].isna().to_numpy() | (df[col].astype(str).str.strip() == "").to_numpy()
        if empty.any():
            raise S.SchemaError(
                f"{source}: empty {col!r} at {where(empty)}. Fix: fill them in or drop those rows."
            )
    out = pd.DataFrame({S.SYMBOL: df[S.SYMBOL].astype(str).str.strip()})
    out[S.STRATEGY] = _strategies(df, strategy, where)
    out[S.SIDE] = _sides(df[S.SIDE], where)
    out[S.SIGNAL_TIME] = _times(df[S.SIGNAL_TIME], where)
    for col in (S.ENTRY, S.SL, S.TP):
        out[col] = _numbers(df[col], col, where, positive=True)
    _check_geometry(out, where)
    out.insert(0, S.SIGNAL_ID, _signal_ids(df, out, where))
    if S.TIMEOUT_HOURS in df:
        out[S.TIMEOUT_HOURS] = _numbers(
            df[S.TIMEOUT_HOURS], S.TIMEOUT_HOURS, where, positive=True, allow_nan=True
        )
    others = df.drop(columns=[*REQUIRED, *OPTIONAL], errors="ignore")
    extras, vocab = extra_features(others, source=source, where=where, categories=categories)
    out = pd.concat([out, extras], axis=1).sort_values(S.SIGNAL_TIME, kind="stable")
    out = S.validate_signals(out.reset_index(drop=True))
    out.attrs = {"source": source, "extra_categories": vocab}
    logger.info(
        "%s: %d signals of %d symbol(s), strategies %s, %d extra feature column(s)",
        source,
        len(out),
        out[S.SYMBOL].nunique(),
        sorted(out[S.STRATEGY].unique()),
        extras.shape[1],
    )
    return out


def match_symbols(signals: pd.DataFrame, available: Iterable[str]) -> pd.DataFrame:
    """Map the signals' ``symbol`` to candle keys (file stems); returns a copy.

    A symbol matches a key equal to it, else the one key that starts with it with ``/`` and
    ``-`` written as ``_`` or left out, followed by ``_`` or ``-`` or nothing (case-insensitive):
    ``BTC/USDT`` -> ``BTC_USDT_5m`` or ``BTCUSDT-5m``. Several such keys (``BTC_USDT_5m`` and
    ``BTC_USDT_1h``) or none are errors that list the candidates.
    """
    keys = list(available)
    mapping, missing, ambiguous = {}, [], {}
    for symbol in pd.unique(signals[S.SYMBOL]):
        found = _candidates(str(symbol), keys)
        if len(found) == 1:
            mapping[symbol] = found[0]
        elif found:
            ambiguous[symbol] = found
        else:
            missing.append(symbol)
    if missing or ambiguous:
        parts = []
        if missing:
            parts.append(f"no candles for symbol(s) {missing}")
        if ambiguous:
            parts.append(
                "several candle files for " + "; ".join(f"{k!r}: {v}" for k, v in ambiguous.items())
            )
        raise S.SchemaError(
            f"{', and '.join(parts)}; the candle files are {sorted(keys)}. Fix: add a file "
            "named like SYMBOL_TIMEFRAME.csv (e.g. BTC_USDT_5m.csv for BTC/USDT) to the data "
            "folder, write the file stem itself in the symbol column, or keep one timeframe "
            "(--timeframe / load_folder(timeframe=...))."
        )
    renamed = {k: v for k, v in mapping.items() if k != v}
    if renamed:
        logger.info("signals' symbols matched to candle files: %s", renamed)
    out = signals.copy()
    out[S.SYMBOL] = out[S.SYMBOL].map(mapping)
    return out


# ---------------------------------------------------------------------------- reading
class _Rows:
    """Names rows in messages: ``lines 3 ('x'), 7 ('y') (and 4 more)``."""

    def __init__(self, source: str, rows: tuple[str, int]) -> None:
        self.source, (self.word, self.first) = source, rows

    def __call__(self, mask, values: pd.Series | None = None, limit: int = 5) -> str:
        where = np.flatnonzero(np.asarray(mask, bool))
        shown = ", ".join(
            f"{i + self.first}" + ("" if values is None else f" ({values.iloc[i]!r})")
            for i in where[:limit]
        )
        more = f" (and {len(where) - limit} more)" if len(where) > limit else ""
        return f"{self.word}{'s' if len(where) > 1 else ''} {shown}{more}"


def _read(path: Path) -> tuple[pd.DataFrame, tuple[str, int]]:
    name = path.name.lower()
    ext = next((e for e in EXTENSIONS if name.endswith(e)), None)
    if not path.is_file():
        raise S.SchemaError(
            f"no signals file at {path} (looked from {Path.cwd()}). "
            "Fix: check the path and the file name."
        )
    if ext is None:
        raise S.SchemaError(
            f"{path}: unknown file type. Fix: save the signals as one of {list(EXTENSIONS)}."
        )
    try:
        if ext in (".parquet", ".pq"):
            return pd.read_parquet(path).reset_index(drop=True), ("row", 0)
        return pd.read_csv(path, skipinitialspace=True), ("line", 2)
    except pd.errors.EmptyDataError:
        raise S.SchemaError(
            f"{path}: the file is empty. Fix: write the header "
            f"{','.join(REQUIRED)} and one signal per line."
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise S.SchemaError(
            f"{path}: cannot be read as {ext} ({exc}). Fix: check the "
            "file's format (comma-separated with a header row, or Parquet)."
        ) from exc


def _normalise_columns(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Known names matched case-insensitively (spaces and dashes as underscores)."""
    known = {*REQUIRED, *OPTIONAL}
    names = [str(c).strip() for c in df.columns]
    canon = [re.sub(r"[\s-]+", "_", n.lower()) for n in names]
    names = [k if k in known else n for n, k in zip(names, canon, strict=True)]
    twins = sorted({n for n in names if names.count(n) > 1})
    if twins:
        raise S.SchemaError(
            f"{source}: column(s) {twins} appear more than once (names are "
            "matched ignoring case). Fix: keep one of each."
        )
    df = df.set_axis(names, axis=1)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        hints = []
        lower = {n.lower(): n for n in names}
        for col in missing:
            close = difflib.get_close_matches(col, list(lower), n=1, cutoff=0.6)
            close = close or [a for a in _ALIASES.get(col, ()) if a in lower][:1]
            if close:
                hints.append(f"{lower[close[0]]!r} -> {col!r}")
        hint = f" Did you mean: {', '.join(hints)}?" if hints else ""
        if len(names) == 1 and re.search(r"[;\t|]", names[0]):
            hint += " The header reads as one column: save the file comma-separated."
        raise S.SchemaError(
            f"{source}: missing column(s) {missing}; it has {names}.{hint} Fix: rename the "
            f"columns so the file has {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})."
        )
    return df


# ---------------------------------------------------------------------------- columns
def _strategies(df: pd.DataFrame, default: str, where: _Rows) -> np.ndarray:
    if S.STRATEGY not in df:
        return np.full(len(df), default, dtype=object)
    names = df[S.STRATEGY].astype("string").str.strip()
    empty = (names.isna() | (names == "")).to_numpy(bool)
    if empty.any():
        raise S.SchemaError(
            f"{where.source}: empty strategy at {where(empty)}. Fix: fill it "
            f"in, or drop the column (every signal is then {default!r})."
        )
    return names.to_numpy(dtype=object)


def _sides(raw: pd.Series, where: _Rows) -> np.ndarray:
    side = raw.astype(str).str.strip().str.lower().map(SIDE_ALIASES)
    bad = side.isna().to_numpy()
    if bad.any():
        raise S.SchemaError(
            f"{where.source}: unknown side at {where(bad, raw)}. Fix: side must be long or "
            "short (any case; buy and sell are read as long and short)."
        )
    return side.to_numpy(dtype=object)


def _times(raw: pd.Series, where: _Rows) -> pd.DatetimeIndex:
    fix = (
        "Fix: write signal_time in UTC as ISO 8601 (2024-05-01T12:05:00Z; no offset = UTC) or "
        "as epoch seconds or milliseconds; it is the close time of the bar that produced the "
        "signal (nothing after it may have been used)."
    )
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return pd.DatetimeIndex(raw).tz_convert("UTC").as_unit("ns")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return pd.DatetimeIndex(raw).tz_localize("UTC").as_unit("ns")  # naive = UTC
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.to_numpy(np.float64)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            raise S.SchemaError(
                f"{where.source}: unreadable signal_time at {where(bad, raw)}. {fix}"
            )
        unit = np.where(np.abs(values) < 1e11, 1e9, 1e6)  # seconds ~1e9, milliseconds ~1e12
        ns = np.round(values * unit).astype(np.int64)
        return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")
    text = raw.astype(str).str.strip()
    stamps = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = stamps.isna().to_numpy()
    if bad.any():
        raise S.SchemaError(f"{where.source}: unreadable signal_time at {where(bad, raw)}. {fix}")
    return pd.DatetimeIndex(stamps).as_unit("ns")


def _numbers(
    raw: pd.Series, col: str, where: _Rows, *, positive: bool, allow_nan: bool = False
) -> np.ndarray:
    values = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    text = raw.isna().to_numpy() | (raw.astype(str).str.strip() == "").to_numpy()
    bad = np.isnan(values) & ~(text if allow_nan else np.zeros(len(raw), bool))
    if bad.any():
        raise S.SchemaError(
            f"{where.source}: {col!r} is not a number at {where(bad, raw)}. Fix: write plain "
            "numbers (a dot as decimal separator, no thousands separator or currency sign)."
        )
    bad = ~np.isnan(values) & (~np.isfinite(values) | (positive & (values <= 0)))
    if bad.any():
        raise S.SchemaError(
            f"{where.source}: {col!r} must be a finite number > 0; not at "
            f"{where(bad, raw)}. Fix: correct or drop those rows."
        )
    return values


def _check_geometry(out: pd.DataFrame, where: _Rows) -> None:
    e, s, t = (out[k].to_numpy() for k in (S.ENTRY, S.SL, S.TP))
    long = (out[S.SIDE] == S.LONG).to_numpy()
    wrong = np.where(long, ~((s < e) & (e < t)), ~((t < e) & (e < s)))
    if wrong.any():
        first = np.flatnonzero(wrong)[0]
        example = f"{out[S.SIDE].iloc[first]}: sl={s[first]:g}, entry={e[first]:g}, tp={t[first]:g}"
        raise S.SchemaError(
            f"{where.source}: sl/tp on the wrong side of entry for the side at {where(wrong)} "
            f"(first: {example}). Fix: a long needs sl < entry < tp and a short tp < entry < sl; "
            "check the side column, or whether sl and tp are swapped."
        )


def _signal_ids(df: pd.DataFrame, out: pd.DataFrame, where: _Rows) -> np.ndarray:
    if S.SIGNAL_ID in df:
        ids = df[S.SIGNAL_ID].astype("string").str.strip()
        empty = (ids.isna() | (ids == "")).to_numpy(bool)
        if empty.any():
            raise S.SchemaError(
                f"{where.source}: empty signal_id at {where(empty)}. Fix: "
                "fill them in, or drop the column to derive ids."
            )
        ids = ids.to_numpy(dtype=object)
        how = (
            "Fix: give every signal its own id, or drop the signal_id column to derive "
            "ids from symbol, strategy, side and time."
        )
    else:
        ids = np.empty(len(out), dtype=object)
        for (symbol, strategy), rows in out.groupby(
            [S.SYMBOL, S.STRATEGY], sort=False
        ).groups.items():
            part = out.loc[rows]
            ids[rows] = new_signal_ids(symbol, strategy, part[S.SIDE], part[S.SIGNAL_TIME])
        how = (
            "Those rows are the same signal (symbol, strategy, side and signal_time all "
            "equal). Fix: drop the repeated rows, or add a signal_id column that tells them "
            "apart."
        )
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        raise S.SchemaError(
            f"{where.source}: duplicate signal_id at {where(dup, pd.Series(ids))}. {how}"
        )
    return ids


def _candidates(symbol: str, keys: Sequence[str]) -> list[str]:
    if symbol in keys:
        return [symbol]
    forms = {re.sub(r"[/\-:]", sep, symbol).upper() for sep in ("_", "")}
    return [
        k
        for k in keys
        if any(k.upper() == f or k.upper().startswith((f"{f}_", f"{f}-")) for f in forms)
    ]
