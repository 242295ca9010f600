"""Candle files of the exchange-data tools: names, readers and writers (freqtrade's layout).

The layout is the one freqtrade users know (``freqtrade download-data``)::

    <datadir>/<exchange>/<BASE>_<QUOTE>-<timeframe>.parquet                   spot
    <datadir>/<exchange>/futures/<BASE>_<QUOTE>_<SETTLE>-<timeframe>-futures.parquet

A file holds the columns ``date`` (bar open time, UTC) and ``open high low close volume``
(float64; prices in quote currency per unit of base, volume in base units), one row per closed
bar, sorted, gaps kept. :func:`read_freqtrade` also reads freqtrade's ``.feather`` files (same
columns) and ``.json``/``.json.gz`` files (a list of ``[open_time_ms, open, high, low, close,
volume]``). This module imports nothing of :mod:`research.candles` (which uses it).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

from research.schema import CANDLE_COLUMNS, CLOSE, HIGH, LOW, OPEN, VOLUME, SchemaError

#: Binance kline layout (12 columns, usually without a header row).
BINANCE_KLINE_COLUMNS: tuple[str, ...] = (
    "open_time",
    OPEN,
    HIGH,
    LOW,
    CLOSE,
    VOLUME,
    "close_time",
    "quote_asset_volume",
    "number_of_trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
)
#: freqtrade's candle file formats read by :func:`read_freqtrade` (lower case).
FREQTRADE_EXTENSIONS: tuple[str, ...] = (".json.gz", ".feather", ".json")
#: The time column of freqtrade's files (and of the files written here).
DATE = "date"
SPOT, FUTURES = "spot", "futures"
#: freqtrade's candle types of futures files (the suffix after the timeframe).
_CANDLE_TYPES = ("futures", "mark", "index", "premiumIndex", "funding_rate")
_FILE = re.compile(
    r"^(?P<pair>[A-Za-z0-9_.-]+?)-(?P<tf>\d+[A-Za-z]{1,3})(?:-(?P<type>[A-Za-z_]+))?$"
)


def pair_to_filename(pair: str) -> str:
    """freqtrade's file-name form of a ccxt symbol: ``BTC/USDT:USDT`` -> ``BTC_USDT_USDT``."""
    for char in "/ .@$+:":
        pair = pair.replace(char, "_")
    return pair


def candle_path(
    datadir: str | Path, exchange: str, pair: str, timeframe: str, trading_mode: str = SPOT
) -> Path:
    """Where a downloaded pair/timeframe lives (freqtrade's layout, Parquet).

    Parameters
    ----------
    datadir : str or Path
        The data folder; files go to ``<datadir>/<exchange>/`` (futures: ``.../futures/``).
    exchange : str
        ccxt exchange id, e.g. ``"binance"``.
    pair : str
        ccxt symbol: ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (linear perpetual).
    timeframe : str
        ccxt timeframe, e.g. ``"5m"``, ``"1h"``.
    trading_mode : {'spot', 'futures'}
    """
    folder = Path(datadir) / exchange
    name = f"{pair_to_filename(pair)}-{timeframe}"
    if trading_mode == FUTURES:
        folder, name = folder / "futures", f"{name}-futures"
    return folder / f"{name}.parquet"


def parse_candle_name(path: str | Path) -> tuple[str, str | None, str]:
    """(pair, timeframe or None, candle type) told by a file name of freqtrade's layout.

    ``BTC_USDT-1h.parquet`` -> ``("BTC/USDT", "1h", "spot")``;
    ``BTC_USDT_USDT-1h-futures.feather`` -> ``("BTC/USDT:USDT", "1h", "futures")``. A name of
    another layout gives its stem as the pair and no timeframe.
    """
    name = Path(path).name
    stem = name.split(".", 1)[0] if "." in name else name
    match = _FILE.match(stem)
    if match is None or (match.group("type") or SPOT) not in (SPOT, *_CANDLE_TYPES):
        return stem, None, SPOT
    parts = match.group("pair").split("_")
    pair = match.group("pair")
    if len(parts) == 2:
        pair = f"{parts[0]}/{parts[1]}"
    elif len(parts) == 3 and match.group("type"):
        pair = f"{parts[0]}/{parts[1]}:{parts[2]}"
    return pair, match.group("tf"), match.group("type") or SPOT


def read_freqtrade(path: str | Path, ext: str) -> pd.DataFrame:
    """Read a freqtrade ``.feather`` or ``.json``/``.json.gz`` candle file as a raw table.

    Parameters
    ----------
    path : str or Path
    ext : str
        One of :data:`FREQTRADE_EXTENSIONS` (the file's extension, lower case).

    Returns
    -------
    DataFrame
        Columns ``date`` (feather: datetimes, UTC; json: epoch milliseconds) and
        ``open high low close volume``, as stored; :func:`research.candles.load_candles` checks
        and converts them.

    Raises
    ------
    SchemaError
        The bytes are not such a file, or the JSON is not a list of 6-value rows; the message
        says how to fix it.
    """
    path = Path(path)
    try:
        if ext == ".feather":
            return pd.read_feather(path)
        with (gzip.open if ext == ".json.gz" else open)(path, "rt", encoding="utf-8") as fh:
            rows = json.load(fh)
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        kind = "Feather (Arrow IPC)" if ext == ".feather" else "JSON"
        raise SchemaError(
            f"{path}: the file is not a readable {kind} candle file ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Fix: download it again (phantomlab data download) or export "
            "it again with freqtrade (freqtrade convert-data)."
        ) from None
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 6 for r in rows):
        raise SchemaError(
            f"{path}: freqtrade's JSON candle format is a list of [open_time_ms, open, high, low, "
            "close, volume] rows; this file holds something else. Fix: convert it with "
            "freqtrade convert-data --format-to feather, or download it again."
        )
    return pd.DataFrame(rows, columns=[DATE, *CANDLE_COLUMNS])


def empty_bars() -> pd.DataFrame:
    """A frame of no bars: index ``date`` (UTC, ns), float64 ``open high low close volume``."""
    index = pd.DatetimeIndex([], tz="UTC", name=DATE).as_unit("ns")
    return pd.DataFrame({c: pd.Series([], dtype="float64") for c in CANDLE_COLUMNS}, index=index)


def read_stored(path: str | Path) -> pd.DataFrame:
    """The bars of a file written by :func:`write_candles`: index ``date`` (UTC, ns)."""
    raw = pd.read_parquet(path)
    if DATE not in raw.columns:
        raw = raw.rename_axis(DATE).reset_index()
    index = pd.DatetimeIndex(pd.to_datetime(raw[DATE], utc=True)).as_unit("ns").rename(DATE)
    return pd.DataFrame(
        {c: raw[c].to_numpy(dtype="float64") for c in CANDLE_COLUMNS}, index=index
    ).sort_index()


def write_candles(bars: pd.DataFrame, path: str | Path) -> Path:
    """Write bars (index of open times, UTC) as freqtrade-style Parquet, atomically.

    The file gets the columns ``date`` (``datetime64[ns, UTC]``) and float64
    ``open high low close volume``; it is written to a temporary file in the same folder and
    renamed, so a reader never sees half a file and an interrupted run leaves the old one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            DATE: pd.DatetimeIndex(bars.index).tz_convert("UTC").as_unit("ns"),
            **{c: bars[c].to_numpy(dtype="float64") for c in CANDLE_COLUMNS},
        }
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_freqtrade(bars: pd.DataFrame, path: str | Path) -> Path:
    """Write bars in freqtrade's ``.feather`` or ``.json`` format (told by the extension).

    JSON rows are ``[open_time_ms, open, high, low, close, volume]`` (what freqtrade's
    ``json`` data format stores); Feather has the Parquet file's columns.
    """
    path = Path(path)
    stamps = pd.DatetimeIndex(bars.index).tz_convert("UTC").as_unit("ns")
    values = {c: bars[c].to_numpy(dtype="float64") for c in CANDLE_COLUMNS}
    if path.suffix == ".feather":
        pd.DataFrame({DATE: stamps, **values}).to_feather(path)
    else:
        ms = (stamps.asi8 // 1_000_000).astype(np.int64)
        rows = [[int(t), *map(float, v)] for t, *v in zip(ms, *values.values(), strict=True)]
        path.write_text(json.dumps(rows), encoding="utf-8")
    return path
