"""Load, check, inspect and resample OHLCV candles (the first step of the data flow).

Every function returns or accepts the **candles** frame of DESIGN §3: a ``DatetimeIndex`` named
``timestamp`` (UTC, unit ns, bar *open* time, strictly increasing) and float64 columns
``open high low close volume``. Loaded frames carry ``attrs["symbol"]`` (str),
``attrs["timeframe"]`` (:class:`pandas.Timedelta`, the bar length), ``attrs["n_gaps"]`` and
``attrs["missing_bars"]`` (ints; :func:`find_gaps` lists them). Gaps are reported, never filled.

``attrs`` hold only scalars on purpose: pandas compares the ``attrs`` of its inputs with ``==``
(in ``concat``, ``agg``...), which raises for a DataFrame value.
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from research.data_files import BINANCE_KLINE_COLUMNS, FREQTRADE_EXTENSIONS, read_freqtrade
from research.schema import (
    CANDLE_COLUMNS,
    CLOSE,
    HIGH,
    LOW,
    OPEN,
    TIMESTAMP,
    VOLUME,
    SchemaError,
    validate_candles,
)

logger = logging.getLogger(__name__)

#: Accepted file extensions (lower case), longest first so ``.csv.gz`` is matched whole.
EXTENSIONS: tuple[str, ...] = (".csv.gz", ".csv", ".parquet", ".pq", *FREQTRADE_EXTENSIONS)
#: Accepted names of the time column, case-insensitive.
TIME_COLUMNS: tuple[str, ...] = (TIMESTAMP, "time", "date", "datetime", "open_time")
#: Columns of the :func:`find_gaps` frame.
GAP_START, GAP_END, MISSING_BARS = "gap_start", "gap_end", "missing_bars"

_UNITS = {"s": "s", "sec": "s", "m": "min", "min": "min", "h": "h", "hr": "h", "d": "D", "w": "W"}
_TF = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
_NAMES = (  # BTC_USDT_5m, BTC_USDT-5m (freqtrade), BTCUSDT-5m-2025-01 (Binance monthly dumps)
    re.compile(r"^(?P<symbol>.+)[_-](?P<tf>\d+[A-Za-z]+)(?:-futures|-mark|-index)?$"),
    re.compile(r"^(?P<symbol>[A-Za-z0-9]+)-(?P<tf>\d+[A-Za-z]+)-\d{4}-\d{2}(?:-\d{2})?$"),
)
_HEADER = f"{TIMESTAMP},{','.join(CANDLE_COLUMNS)}"
_MONDAY = pd.Timestamp("1970-01-05", tz="UTC")  # weekly bins open on Monday 00:00 UTC


def parse_timeframe(text: str | pd.Timedelta) -> pd.Timedelta:
    """Read a bar length: ``"1m"``, ``"5m"``, ``"15min"``, ``"1h"``, ``"4h"``, ``"1d"``, ...

    Parameters
    ----------
    text : str or Timedelta-like
        ``<int><unit>`` with unit ``s``, ``m``/``min``, ``h``, ``d``, ``w`` (any case but ``M``,
        months), another string pandas reads as a fixed length, or a timedelta.

    Returns
    -------
    pandas.Timedelta
        The bar length (> 0).
    """
    fix = "Fix: use a number and a unit such as '1m', '5m', '15m', '1h', '4h', '1d'."
    match = _TF.match(text) if isinstance(text, str) else None
    if match and match.group(2)[0] == "M" and match.group(2).lower() != "min":
        raise ValueError(f"timeframe {text!r}: 'M' means months (no fixed length). {fix}")
    if match and match.group(2).lower() in _UNITS:
        value = pd.Timedelta(int(match.group(1)), unit=_UNITS[match.group(2).lower()])
    else:
        try:
            value = pd.Timedelta(text)
        except (TypeError, ValueError):
            try:
                value = pd.Timedelta(to_offset(text).nanos, unit="ns")
            except (TypeError, ValueError):
                raise ValueError(f"cannot read timeframe {text!r}. {fix}") from None
    if pd.isna(value) or value <= pd.Timedelta(0):
        raise ValueError(f"timeframe must be positive, got {text!r}. {fix}")
    return value


def infer_timeframe(index: pd.DatetimeIndex | pd.DataFrame) -> pd.Timedelta:
    """Return the bar length as the most common positive step (on a tie, the shortest).

    Parameters
    ----------
    index : DatetimeIndex or DataFrame
        Bar open times (or a frame whose index they are).

    Returns
    -------
    pandas.Timedelta
    """
    if isinstance(index, pd.DataFrame):
        index = index.index
    steps = np.diff(pd.DatetimeIndex(index).as_unit("ns").asi8)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise SchemaError(
            f"cannot infer a timeframe from {len(index)} row(s) without two distinct stamps. "
            "Fix: pass the timeframe explicitly (e.g. timeframe='5m') or load more bars."
        )
    values, counts = np.unique(steps, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")


def timeframe_of(candles: pd.DataFrame) -> pd.Timedelta:
    """Bar length of ``candles``: ``attrs["timeframe"]`` if set, else :func:`infer_timeframe`."""
    if candles.attrs.get("timeframe") is not None:
        return parse_timeframe(candles.attrs["timeframe"])
    return infer_timeframe(candles.index)


def find_gaps(candles: pd.DataFrame, timeframe: str | pd.Timedelta | None = None) -> pd.DataFrame:
    """List missing bars: one row per step between consecutive stamps larger than the timeframe.

    Parameters
    ----------
    candles : DataFrame
        Candles (sorted index of bar open times).
    timeframe : str or Timedelta, optional
        Bar length; default :func:`timeframe_of`.

    Returns
    -------
    DataFrame
        ``gap_start`` / ``gap_end``: open time (UTC, ns) of the first / last missing bar;
        ``missing_bars`` (int64) counted on the grid of the bar before the gap (a step that is
        not a multiple of the timeframe counts its partial bar as missing).
    """
    tf_ns = (parse_timeframe(timeframe) if timeframe is not None else timeframe_of(candles)).value
    stamps = pd.DatetimeIndex(candles.index).as_unit("ns").asi8
    steps = np.diff(stamps)
    where = np.flatnonzero(steps > tf_ns)
    missing = -(-steps[where] // tf_ns) - 1
    start = stamps[where] + tf_ns
    ends = start + (missing - 1) * tf_ns
    utc = [pd.DatetimeIndex(a.astype("datetime64[ns]")).tz_localize("UTC") for a in (start, ends)]
    return pd.DataFrame({GAP_START: utc[0], GAP_END: utc[1], MISSING_BARS: missing.astype("int64")})


def _gap_attrs(gaps: pd.DataFrame) -> dict[str, int]:
    return {"n_gaps": len(gaps), "missing_bars": int(gaps[MISSING_BARS].sum())}


def _extension(path: Path) -> str | None:
    return next((ext for ext in EXTENSIONS if path.name.lower().endswith(ext)), None)


def _split_name(path: Path) -> tuple[str, str, pd.Timedelta | None]:
    """(stem without extension, symbol, timeframe or None) parsed from the file name."""
    stem = path.name[: len(path.name) - len(_extension(path) or path.suffix)]
    for match in filter(None, (pattern.match(stem) for pattern in _NAMES)):
        try:
            return stem, match.group("symbol"), parse_timeframe(match.group("tf"))
        except ValueError:
            pass
    return stem, stem, None


def _read_raw(path: Path, ext: str) -> tuple[pd.DataFrame, tuple[str, int]]:
    """:func:`_read_table`; any error of a reader becomes a SchemaError saying what is wrong."""
    try:
        return _read_table(path, ext)
    except (SchemaError, ImportError, MemoryError):  # ours, or not the file's bytes' fault
        raise
    except Exception as exc:  # whatever the reader raised, the bytes are not what the name says
        try:
            with path.open("rb") as fh:
                head = fh.read(4)
        except OSError:
            head = b""
        if isinstance(exc, PermissionError):
            what, fix = "cannot be opened", "give this user read access (chmod u+r FILE)."
        elif ext in (".parquet", ".pq"):
            what = "is corrupt or truncated" if head == b"PAR1" else "is not a Parquet file"
            fix = "export it again (DataFrame.to_parquet) or, if it is a CSV, name it .csv."
        elif ext == ".csv.gz" and head[:2] != b"\x1f\x8b":
            what, fix = "is named .csv.gz but is not gzip-compressed", "gzip it or name it .csv."
        elif ext == ".csv.gz" and isinstance(exc, OSError | EOFError | zlib.error):
            what, fix = "is a corrupt or truncated gzip file", "download or compress it again."
        else:
            what = "is not a CSV text file (binary, or not UTF-8)"
            fix = f"export the candles as UTF-8 CSV with the header line {_HEADER!r}."
        raise SchemaError(
            f"{path}: the file {what} ({type(exc).__name__}: {str(exc)[:200]}). Fix: {fix}"
        ) from None


def _read_table(path: Path, ext: str) -> tuple[pd.DataFrame, tuple[str, int]]:
    """Read with the file's own (or Binance's) column names; also how to number bad rows."""
    if ext in FREQTRADE_EXTENSIONS:  # freqtrade's .feather / .json (research.data_files)
        return read_freqtrade(path, ext), ("row", 0)
    if ext in (".parquet", ".pq"):
        raw = pd.read_parquet(path)
        if isinstance(raw.index, pd.DatetimeIndex) or str(raw.index.name).lower() in TIME_COLUMNS:
            raw = raw.rename_axis(raw.index.name or TIMESTAMP).reset_index()
        return raw, ("row", 0)  # 0-based row of the table
    with (gzip.open if ext == ".csv.gz" else open)(path, "rb") as fh:
        if b"\0" in fh.read(4096):  # text never holds NUL; pandas would read it as characters
            raise ValueError("a NUL byte in its first 4 KiB")
    try:
        first = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0]
    except pd.errors.EmptyDataError:
        raise SchemaError(
            f"{path}: the file is empty. Fix: write the header {_HEADER!r} and bars."
        ) from None
    if pd.to_numeric(first, errors="coerce").isna().any():  # a header row
        return pd.read_csv(path), ("line", 2)  # 1-based line of the file
    if len(first) != len(BINANCE_KLINE_COLUMNS):
        raise SchemaError(
            f"{path}: the first row is numeric (no header) and has {len(first)} columns; only "
            f"Binance's {len(BINANCE_KLINE_COLUMNS)}-column kline layout is read without a "
            f"header. Fix: add the header line {_HEADER!r}."
        )
    return pd.read_csv(path, header=None, names=list(BINANCE_KLINE_COLUMNS)), ("line", 1)


def _bad_rows(mask: np.ndarray, raw: pd.Series, rows: tuple[str, int]) -> str:
    where = np.flatnonzero(mask)
    shown = ", ".join(f"{r + rows[1]} ({raw.iloc[r]!r})" for r in where[:5])
    return f"{rows[0]}(s) {shown}" + (f" (and {len(where) - 5} more)" if len(where) > 5 else "")


def _to_utc_index(raw: pd.Series, path: Path, rows: tuple[str, int]) -> pd.DatetimeIndex:
    """Parse ISO strings, datetimes or epoch numbers into a UTC index of unit ns."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        stamps = pd.DatetimeIndex(raw).tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        stamps = pd.DatetimeIndex(raw).tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.to_numpy(dtype="float64")
        mag = np.abs(values)  # seconds ~1e9, milliseconds ~1e12, microseconds ~1e15, ns ~1e18
        factor = np.select([mag < 1e11, mag < 1e14, mag < 1e17], [10**9, 10**6, 10**3], 1)
        bad = ~(mag * factor < 9.2e18)  # NaN, inf, or past the year 2262 in ns
        if bad.any():
            raise SchemaError(
                f"{path}: no valid time (empty, infinite or beyond 2262) at "
                f"{_bad_rows(bad, raw, rows)}. Fix: drop those rows or fill in their open time."
            )
        if len(np.unique(factor)) > 1:
            logger.warning("%s: epoch stamps mix units; each read by its magnitude", path)
        if np.array_equal(values, np.floor(values)):  # exact integer arithmetic
            ns = raw.to_numpy().astype("int64") * factor
        else:
            ns = np.round(values * factor).astype("int64")
        stamps = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")
    else:
        stamps = pd.DatetimeIndex(pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce"))
        if stamps.isna().any():
            raise SchemaError(
                f"{path}: unreadable timestamps at {_bad_rows(stamps.isna(), raw, rows)}. Fix: use "
                "ISO 8601 (2020-12-01T00:00:00Z; no offset = UTC) or epoch numbers on every row."
            )
    return stamps.as_unit("ns").rename(TIMESTAMP)


def load_candles(
    path: str | Path, symbol: str | None = None, timeframe: str | pd.Timedelta | None = None
) -> pd.DataFrame:
    """Load one OHLCV file (csv, csv.gz, parquet/pq; freqtrade feather/json) as checked candles.

    Parameters
    ----------
    path : str or Path
        Header with one time column of :data:`TIME_COLUMNS` and ``open high low close volume``
        (any case; other columns dropped), or Binance's 12-column klines without header. Bar
        **open** times: ISO 8601 (naive = UTC) or epoch s/ms/µs/ns (unit told by magnitude).
    symbol : str, optional
        Default: from the file name (``BTC_USDT_5m.csv.gz`` -> ``BTC_USDT``), else its stem.
    timeframe : str or Timedelta, optional
        Bar length. Default: parsed from the name (``_5m``), else :func:`infer_timeframe`.

    Returns
    -------
    DataFrame
        Index ``timestamp`` (UTC, unit ns); float64 ``open high low close`` (quote currency per
        unit, as in the source) and ``volume`` (source units); ``attrs`` ``symbol``,
        ``timeframe``, ``n_gaps`` and ``missing_bars``. The gap count is logged at INFO.

    Raises
    ------
    FileNotFoundError, ValueError, SchemaError
        Messages name the file, the offending rows or columns, and say how to fix them (also
        for bytes that are not what the name says: a fake ``.gz``, binary, corrupt Parquet).
    """
    path = Path(path)
    if not path.is_file():
        kind = "is a folder (use load_folder)" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"candle file {path} {kind}. Fix: check the path.")
    ext = _extension(path)
    if ext is None:
        raise ValueError(
            f"{path}: unknown extension {''.join(path.suffixes) or '(none)'!r}. "
            f"Fix: save the candles as one of {list(EXTENSIONS)}."
        )
    _, name_symbol, name_tf = _split_name(path)
    raw, rows = _read_raw(path, ext)
    lower = {str(c).strip().lower(): c for c in raw.columns}
    time_cols = [c for c in TIME_COLUMNS if c in lower]
    missing = [c for c in CANDLE_COLUMNS if c not in lower]
    if len(time_cols) != 1 or missing:
        problem = f"missing {missing}" if missing else f"time columns {time_cols}"
        raise SchemaError(
            f"{path}: found columns {list(raw.columns)} ({problem}); expected exactly one time "
            f"column of {list(TIME_COLUMNS)} and {list(CANDLE_COLUMNS)} (any case). "
            f"Fix: rename the header to {_HEADER!r}."
        )
    if raw.empty:
        raise SchemaError(f"{path}: the file has a header but no bars. Fix: add candle rows.")
    index = _to_utc_index(raw[lower[time_cols[0]]], path, rows)
    columns = {}
    for col in CANDLE_COLUMNS:
        values = pd.to_numeric(raw[lower[col]], errors="coerce")
        text = np.asarray(values.isna() & raw[lower[col]].notna())
        if text.any():
            raise SchemaError(
                f"{path}: column {col!r} has non-numeric values at "
                f"{_bad_rows(text, raw[lower[col]], rows)}. Fix: repair or drop those rows."
            )
        columns[col] = values.to_numpy(dtype="float64")
    candles = pd.DataFrame(columns, index=index)
    try:
        validate_candles(candles)
    except SchemaError as err:
        raise SchemaError(f"{path}: {err}") from None
    tf = parse_timeframe(timeframe) if timeframe is not None else name_tf
    tf = tf if tf is not None else infer_timeframe(candles.index)
    short = np.flatnonzero(np.diff(candles.index.asi8) < tf.value) + 1
    if len(short):
        raise SchemaError(
            f"{path}: {len(short)} bar(s) open less than one timeframe ({tf}) after the previous "
            f"bar: {', '.join(map(str, candles.index[short[:5]]))}. Fix: pass the right "
            "timeframe (timeframe='1m', ...), rename the file, or drop the misplaced bars."
        )
    gaps = find_gaps(candles, tf)
    logger.info(
        "%s: %d bars of %s; %d gaps, %d missing bars (not filled)",
        path.name,
        len(candles),
        tf,
        len(gaps),
        gaps[MISSING_BARS].sum(),
    )
    candles.attrs = {"symbol": symbol or name_symbol, "timeframe": tf, **_gap_attrs(gaps)}
    return candles


def resample_candles(candles: pd.DataFrame, rule: str | pd.Timedelta) -> pd.DataFrame:
    """Aggregate candles to a coarser timeframe without filling gaps.

    Parameters
    ----------
    candles : DataFrame
        Candles; their bar length comes from :func:`timeframe_of`.
    rule : str or Timedelta
        New bar length (``"15m"``, ``"15min"``, ``"1h"``, ``"1d"``, ...), a whole multiple of
        the source's. Bins are left-closed, labelled by their open time and aligned to the Unix
        epoch (:00/:15/:30/:45 for 15m, 00:00 UTC for days; Monday 00:00 UTC for weeks).

    Returns
    -------
    DataFrame
        open = first, high = max, low = min, close = last, volume = sum. A bin without any
        source bar is dropped (a gap stays a gap); a partly filled bin is kept. ``attrs`` are
        kept, with ``timeframe`` set to the new length and the gap counts recomputed.
    """
    new_tf, source_tf = parse_timeframe(rule), timeframe_of(candles)
    if new_tf < source_tf or new_tf.value % source_tf.value:
        raise ValueError(
            f"cannot resample {source_tf} candles to {new_tf}: the new timeframe must be a whole "
            f"multiple of the source timeframe. Fix: use e.g. "
            f"{[str(source_tf * k) for k in (2, 3, 4, 12)]}, or start from finer candles."
        )
    origin = _MONDAY if new_tf.value % pd.Timedelta(days=7).value == 0 else "epoch"
    source = candles[list(CANDLE_COLUMNS)]
    bins = source.resample(new_tf, closed="left", label="left", origin=origin)
    how = {OPEN: "first", HIGH: "max", LOW: "min", CLOSE: "last", VOLUME: "sum"}
    out = bins.agg(how)[list(CANDLE_COLUMNS)].astype("float64")[bins.size().to_numpy() > 0]
    out.index = pd.DatetimeIndex(out.index, freq=None).as_unit("ns").rename(TIMESTAMP)
    validate_candles(out)
    out.attrs = {**candles.attrs, "timeframe": new_tf, **_gap_attrs(find_gaps(out, new_tf))}
    return out


def load_folder(
    path: str | Path, pattern: str = "*", timeframe: str | pd.Timedelta | None = None
) -> dict[str, pd.DataFrame]:
    """Load every candle file (``.csv``, ``.csv.gz``, ``.parquet``, ``.pq``) of one folder.

    Parameters
    ----------
    path : str or Path
        The folder (not searched recursively).
    pattern : str
        Glob pattern on file names, e.g. ``"BTC_*"``.
    timeframe : str or Timedelta, optional
        Keep only files of this bar length (told by the name, else by the data).

    Returns
    -------
    dict of str to DataFrame
        In file-name order, keyed by the file name without extension: ``symbol_timeframe`` as
        the file spells it (``"BTC_USDT_5m"``), so one symbol at several timeframes never
        collides; ``attrs["symbol"]`` holds the bare symbol.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not an existing folder. Fix: check the path.")
    want = parse_timeframe(timeframe) if timeframe is not None else None
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and _extension(p))
    if not files:
        raise FileNotFoundError(
            f"no candle files matching {pattern!r} in {folder}. Fix: put files ending in one of "
            f"{list(EXTENSIONS)} there, or change the pattern."
        )
    names = [_split_name(p) for p in files]
    stems = [name[0] for name in names]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise ValueError(
            f"{folder}: several files would load under the same key {twins}. "
            "Fix: keep one file (one format) per symbol_timeframe, or narrow the pattern."
        )
    out: dict[str, pd.DataFrame] = {}
    skipped: list[str] = []
    for file, (stem, _, name_tf) in zip(files, names, strict=True):
        if want is not None and name_tf is not None and name_tf != want:
            skipped.append(f"{file.name} ({name_tf})")
            continue
        candles = load_candles(file)
        if want is not None and candles.attrs["timeframe"] != want:
            skipped.append(f"{file.name} ({candles.attrs['timeframe']})")
            continue
        out[stem] = candles
    if not out:
        raise ValueError(
            f"no candle file of timeframe {want} in {folder}; found {skipped}. "
            "Fix: ask for one of those timeframes, or resample with resample_candles()."
        )
    logger.info("%s: loaded %d candle file(s)", folder, len(out))
    return out
