"""Candles from exchanges: download with ccxt, list and check a data folder (``phantomlab data``).

:func:`download` pages through ccxt's ``fetch_ohlcv`` (``since``/``limit``) from the start to
now or the end, backs off and retries on rate limits and network errors, resumes from the last
stored bar (a second run fetches only newer bars), never stores the still-forming candle, and
reports gaps (never fills them). Files follow freqtrade's layout (:mod:`research.data_files`):
``<datadir>/<exchange>/BTC_USDT-1h.parquet``, futures in ``<datadir>/<exchange>/futures/``.
``phantomlab demo --data <datadir>/<exchange>`` reads such a folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from research import data_files as files
from research.candles import EXTENSIONS, MISSING_BARS, find_gaps, load_candles, parse_timeframe
from research.data_files import DATE, FUTURES, SPOT
from research.errors import DataError, DownloadError
from research.progress import tqdm
from research.schema import CANDLE_COLUMNS

logger = logging.getLogger(__name__)

_MS = 1_000_000  # ns per ms
#: ccxt errors worth another try (rate limits, Binance's HTTP 429/418, time-outs, network)
_RETRYABLE = ("RateLimitExceeded", "DDoSProtection", "RequestTimeout", "NetworkError")


@dataclass(frozen=True, kw_only=True, slots=True)
class DownloadConfig:
    """What :func:`download` fetches and how hard it tries.

    Attributes
    ----------
    exchange : str
        ccxt exchange id (``binance``, ``bybit``, ``okx``, ...).
    pairs : tuple of str
        ccxt symbols, ``BTC/USDT``; in futures mode ``BTC/USDT`` means ``BTC/USDT:USDT``.
    timeframes : tuple of str
        Bar lengths the exchange offers (``exchange.timeframes``), e.g. ``("5m", "1h")``.
    start, end : Timestamp, optional
        Bars opening in ``[start, end)`` (UTC). Default end: now; default start: ``days``
        before the end.
    days : float
        History length in days when ``start`` is not given.
    datadir : Path
        Files go to ``<datadir>/<exchange>/`` (futures: ``.../futures/``).
    trading_mode : {'spot', 'futures'}
    limit : int
        Bars asked per request (the exchange may send fewer; pages follow the last bar).
    max_attempts : int
        Tries per request on rate limits and network errors before giving up.
    backoff_s, max_backoff_s : float
        First wait and cap (seconds) of the exponential backoff; a ``Retry-After`` header of
        the exchange is honoured up to the cap.
    api_url : str, optional
        Send the REST requests to this scheme://host[:port] instead (a mirror, a proxy, tests).
    progress : bool
        Draw a tqdm bar per pair and timeframe.
    """

    exchange: str = "binance"
    pairs: tuple[str, ...] = ()
    timeframes: tuple[str, ...] = ("1h",)
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    days: float = 30.0
    datadir: Path = Path("data")
    trading_mode: str = SPOT
    limit: int = 1000
    max_attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    api_url: str | None = None
    progress: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class DownloadResult:
    """One pair and timeframe after :func:`download`: its file and what it holds."""

    pair: str
    timeframe: str
    path: Path
    new_bars: int  # bars added by this run
    bars: int  # bars in the file
    first: pd.Timestamp | None  # open time of the first / last stored bar (UTC)
    last: pd.Timestamp | None
    gaps: pd.DataFrame  # research.candles.find_gaps of the file (gap_start, gap_end, missing_bars)


def make_exchange(name: str, trading_mode: str = SPOT, api_url: str | None = None):
    """A ccxt client for public market data (no keys), rate-limited, markets of one mode.

    Parameters
    ----------
    name : str
        ccxt exchange id.
    trading_mode : {'spot', 'futures'}
        Futures load the linear (USDT-settled) swap markets.
    api_url : str, optional
        Replace scheme and host of every REST base URL (``https://api.binance.com/api/v3`` ->
        ``<api_url>/api/v3``).
    """
    import ccxt

    if trading_mode not in (SPOT, FUTURES):
        raise DataError(f"trading mode {trading_mode!r}. Fix: use 'spot' or 'futures'.")
    if name not in ccxt.exchanges:
        import difflib

        close = difflib.get_close_matches(name.lower(), ccxt.exchanges, n=5) or ccxt.exchanges[:8]
        raise DataError(f"ccxt knows no exchange {name!r}. Fix: use a ccxt id such as {close}.")
    options = {"defaultType": "swap" if trading_mode == FUTURES else "spot"}
    if name.startswith("binance"):  # only this mode's endpoints (no futures call for spot)
        options["fetchMarkets"] = ["linear"] if trading_mode == FUTURES else ["spot"]
    exchange = getattr(ccxt, name)({"enableRateLimit": True, "options": options})
    if api_url:
        _point_at(exchange.urls, api_url.rstrip("/"))
    return exchange


def _point_at(urls: dict, base: str) -> None:
    """Rewrite every URL of ``urls['api']`` (nested dicts included) to start with ``base``."""

    def rewrite(node):
        if isinstance(node, dict):
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, str) and "://" in node:
            rest = node.split("://", 1)[1]
            return base + ("/" + rest.split("/", 1)[1] if "/" in rest else "")
        return node

    urls["api"] = rewrite(urls["api"])


def _retry_wait(exchange, attempt: int, config: DownloadConfig, limited: bool) -> float:
    """Seconds before try ``attempt + 1``: a rate limit's Retry-After, else the backoff."""
    headers = (getattr(exchange, "last_response_headers", None) or {}) if limited else {}
    try:
        told = float(headers.get("Retry-After") or headers.get("retry-after") or "nan")
    except (TypeError, ValueError):
        told = float("nan")
    wait = told if told == told else config.backoff_s * 2 ** (attempt - 1)
    return max(0.0, min(wait, config.max_backoff_s))


def call_with_retries(exchange, what: str, config: DownloadConfig, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, retried with backoff on ccxt rate-limit and network errors.

    Retries ``RateLimitExceeded``, ``DDoSProtection`` (Binance's HTTP 429/418),
    ``RequestTimeout`` and other ``NetworkError`` up to ``config.max_attempts`` tries.

    Raises
    ------
    DownloadError
        After the last try, or at once for another ccxt error (the exchange refused).
    """
    import ccxt

    retryable = tuple(getattr(ccxt, name) for name in _RETRYABLE)
    for attempt in range(1, config.max_attempts + 1):
        try:
            return fn(*args, **kwargs)
        except retryable as exc:
            if attempt == config.max_attempts:
                raise DownloadError(
                    f"{exchange.id}: {what} failed {attempt} times, last with "
                    f"{type(exc).__name__}: {str(exc)[:300]}. Fix: check the connection and "
                    "the exchange's status page, then run the same command again (it resumes "
                    "from the last stored bar)."
                ) from exc
            wait = _retry_wait(exchange, attempt, config, isinstance(exc, ccxt.DDoSProtection))
            n, kind = config.max_attempts - 1, type(exc).__name__
            logger.warning(
                "%s: %s: %s; retry %d/%d in %.1f s", exchange.id, what, kind, attempt, n, wait
            )
            time.sleep(wait)
        except ccxt.BaseError as exc:
            raise DownloadError(
                f"{exchange.id}: {what} was refused ({type(exc).__name__}: {str(exc)[:300]}). "
                "Fix: check the pair, timeframe and dates against the exchange's documentation."
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _check_request(exchange, config: DownloadConfig) -> list[str]:
    """Validate timeframes and pairs against the exchange; return the ccxt symbols."""
    offered = list(getattr(exchange, "timeframes", None) or {})
    for tf in config.timeframes:
        if tf not in offered:
            raise DataError(f"{exchange.id} offers no timeframe {tf!r}. Fix: use one of {offered}.")
        try:
            parse_timeframe(tf)
        except ValueError:
            raise DataError(
                f"timeframe {tf!r} has no fixed length (months), which the research cannot "
                f"use. Fix: use one of {[t for t in offered if not t.endswith('M')]}."
            ) from None
    symbols = []
    for pair in config.pairs:
        symbol = pair
        if config.trading_mode == FUTURES and ":" not in pair and "/" in pair:
            symbol = f"{pair}:{pair.split('/')[1]}"  # linear perpetual, settled in the quote
        if symbol not in exchange.markets:
            import difflib

            kind = "swap" if config.trading_mode == FUTURES else "spot"
            names = [s for s, m in exchange.markets.items() if m.get("type") == kind]
            close = difflib.get_close_matches(symbol, names, n=5) or names[:5]
            raise DataError(
                f"{exchange.id} has no {config.trading_mode} market {symbol!r}. Fix: use a ccxt "
                f"symbol such as {close} (spot BASE/QUOTE, futures BASE/QUOTE:SETTLE)."
            )
        symbols.append(symbol)
    return symbols


def _time_range(config: DownloadConfig, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    def utc(value):
        stamp = pd.Timestamp(value)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    end = min(utc(config.end), now) if config.end is not None else now
    start = utc(config.start) if config.start is not None else end - pd.Timedelta(days=config.days)
    if start >= end:
        raise DataError(
            f"the time range is empty: start {start} is not before end {end} (or now). "
            "Fix: give --start before --end, or --days > 0."
        )
    return start, end


def _fetch_range(exchange, symbol, tf, span, now, config, bar) -> pd.DataFrame:
    """Closed bars (open + timeframe <= ``now``) opening in ``span`` = [start, stop), by pages."""
    tf_ms = parse_timeframe(tf).value // _MS
    since, stop_ms, now_ms = (t.value // _MS for t in (*span, now))
    fetch = partial(exchange.fetch_ohlcv, symbol, tf, limit=config.limit)
    rows: list[list] = []
    while since < stop_ms:
        what = f"fetch_ohlcv {symbol} {tf} since {pd.Timestamp(since, unit='ms', tz='UTC')}"
        page = call_with_retries(exchange, what, config, fetch, since=since) or []
        page = [r for r in page if r[0] >= since]
        if not page:  # nothing more from the exchange (data end, or a delisted market)
            logger.info("%s %s: no bars from %s on", symbol, tf, since)
            break
        keep = [r for r in page if r[0] < stop_ms and r[0] + tf_ms <= now_ms]
        rows.extend(keep)
        bar.update(len(keep))
        since = max(since + 1, int(page[-1][0]) + tf_ms)
    frame = pd.DataFrame(rows, columns=[DATE, *CANDLE_COLUMNS])
    index = pd.to_datetime(frame.pop(DATE).astype("int64"), unit="ms", utc=True)
    frame.index = pd.DatetimeIndex(index).as_unit("ns").rename(DATE)
    return frame.astype("float64")


def _download_one(exchange, symbol, tf, start, end, now, config) -> DownloadResult:
    """Bring one file up to date: fetch before its first and after its last bar, write it."""
    path = files.candle_path(config.datadir, exchange.id, symbol, tf, config.trading_mode)
    stored = files.read_stored(path) if path.is_file() else files.empty_bars()
    step = parse_timeframe(tf)
    end = min(end, now - step + pd.Timedelta(1, unit="ms"))  # only bars closed by now
    spans = [(start, end)]
    if len(stored):  # resume: only what lies before the first or after the last stored bar
        spans = [(start, stored.index[0]), (stored.index[-1] + step, end)]  # no hole
    spans = [(a, b) for a, b in spans if a < b]
    total = sum((b - a) // step for a, b in spans)
    desc, off = f"{symbol} {tf}", not config.progress
    with tqdm(total=total, desc=desc, unit="bar", disable=off, leave=False) as bar:
        fetched = [_fetch_range(exchange, symbol, tf, span, now, config, bar) for span in spans]
    new = sum(map(len, fetched))
    bars = pd.concat([f for f in [stored, *fetched] if len(f)]) if new else stored
    bars = bars[~bars.index.duplicated(keep="last")].sort_index()
    if new:
        files.write_candles(bars, path)
    elif not len(bars):
        logger.warning("%s %s: the exchange sent no bar in %s .. %s", symbol, tf, start, end)
    gaps = find_gaps(bars, step)
    if len(gaps):
        n_gaps, n_missing = len(gaps), int(gaps[MISSING_BARS].sum())
        logger.warning("%s %s: %d gap(s), %d missing bar(s), kept", symbol, tf, n_gaps, n_missing)
    first, last = (bars.index[0], bars.index[-1]) if len(bars) else (None, None)
    fields = {"pair": symbol, "timeframe": tf, "path": path, "new_bars": new, "bars": len(bars)}
    return DownloadResult(**fields, first=first, last=last, gaps=gaps)


def download(
    config: DownloadConfig, *, exchange=None, now: pd.Timestamp | None = None
) -> list[DownloadResult]:
    """Download (or bring up to date) every pair x timeframe of ``config``.

    A file that exists is extended, never re-downloaded: the bars from the start to its first
    bar (if the start is earlier) and every closed bar after its last one (whatever the start,
    so no hole opens). Bars are written only when new ones came.

    Parameters
    ----------
    config : DownloadConfig
    exchange : ccxt.Exchange, optional
        A ready client (e.g. with its ``urls['api']`` pointed elsewhere); default
        :func:`make_exchange` of ``config``.
    now : Timestamp, optional
        The clock (UTC) that tells the still-forming candle (open + timeframe > now: never
        stored); default the current time.

    Returns
    -------
    list of DownloadResult
        One per pair and timeframe, in the order asked.

    Raises
    ------
    DataError
        Unknown exchange, pair or timeframe, or an empty time range (with a fix).
    DownloadError
        The exchange kept failing after ``config.max_attempts`` tries.
    """
    if not config.pairs or not config.timeframes:
        raise DataError("nothing to download. Fix: give --pairs and --timeframes.")
    if exchange is None:
        exchange = make_exchange(config.exchange, config.trading_mode, config.api_url)
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    start, end = _time_range(config, now)
    call_with_retries(exchange, "load_markets", config, exchange.load_markets)
    symbols = _check_request(exchange, config)
    results = []
    for symbol in symbols:
        for tf in config.timeframes:
            result = _download_one(exchange, symbol, tf, start, end, now, config)
            n_new, n_all = result.new_bars, result.bars
            logger.info("%s %s: %d new bar(s), %d in %s", symbol, tf, n_new, n_all, result.path)
            results.append(result)
    return results


def candle_files(datadir: str | Path) -> list[Path]:
    """Every candle file under ``datadir`` (recursive), sorted by path."""
    folder = Path(datadir)
    if not folder.is_dir():
        raise DataError(f"{folder} is not an existing folder. Fix: check --datadir.")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(EXTENSIONS)
    )


#: Columns of :func:`inspect_files`.
INSPECT_COLUMNS = ("file", "pair", "timeframe", "first", "last", "bars", "gaps", "missing_bars")


def inspect_files(datadir: str | Path) -> pd.DataFrame:
    """One row per candle file under ``datadir``: what it holds, or why it cannot be read.

    Returns
    -------
    DataFrame
        ``file`` (relative path), ``pair``, ``timeframe``, ``first``/``last`` (bar open
        times, UTC), ``bars``, ``gaps``, ``missing_bars`` (ints), ``error`` (empty string if
        the file passed :func:`research.candles.load_candles`, else its message).
    """
    folder = Path(datadir)
    rows = []
    for path in candle_files(folder):
        pair, tf, _ = files.parse_candle_name(path)
        try:
            candles = load_candles(path, timeframe=tf)
        except (ValueError, OSError) as exc:  # SchemaError is a ValueError
            rows.append(
                (str(path.relative_to(folder)), pair, tf, pd.NaT, pd.NaT, 0, 0, 0, str(exc))
            )
            continue
        tf = tf or str(candles.attrs["timeframe"])
        what = (len(candles), candles.attrs["n_gaps"], candles.attrs["missing_bars"], "")
        rows.append((str(path.relative_to(folder)), pair, tf, *candles.index[[0, -1]], *what))
    return pd.DataFrame(rows, columns=[*INSPECT_COLUMNS, "error"])
