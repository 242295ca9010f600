"""``phantomlab data``: download candles from an exchange (ccxt), list and check a data folder.

Exit codes (mapped by :mod:`research.cli_common`): 0 success; 1 a download that failed after
its retries (``DownloadError``), or a bad file (``check``); 2 bad usage (``DataError``: unknown
exchange, pair or timeframe, bad dates), with a message saying how to fix it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

from research.cli_common import cli_errors

_DATADIR_OPTION = click.option(
    "--datadir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Data folder; files go to DATADIR/<exchange>/ (futures: DATADIR/<exchange>/futures/).",
)


def _utc(text: str | None, name: str) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise click.BadParameter(
            f"cannot read {text!r} as a date. Fix: use ISO 8601, e.g. 2024-01-31 or "
            "2024-01-31T12:00 (UTC).",
            param_hint=name,
        ) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _gap_text(gaps: pd.DataFrame, shown: int = 3) -> str:
    spans = [f"{g.gap_start} .. {g.gap_end} ({g.missing_bars} bars)" for g in gaps.itertuples()]
    more = f" and {len(spans) - shown} more" if len(spans) > shown else ""
    return "; ".join(spans[:shown]) + more


class _ManyValues(click.Command):
    """``--pairs`` and ``--timeframes`` take several space-separated values (freqtrade's way)."""

    many = ("--pairs", "--timeframes")

    def parse_args(self, ctx, args):
        out: list[str] = []
        current = None
        for arg in args:
            if arg.startswith("-"):
                current = arg if arg in self.many else None
            elif current is not None and out[-1] != current:
                out.append(current)  # --pairs A B  ->  --pairs A --pairs B
            out.append(arg)
        return super().parse_args(ctx, out)


@click.group()
def data() -> None:
    """Market data from exchanges: download (ccxt), list and check candle files."""


@data.command(cls=_ManyValues)
@click.option("--exchange", default="binance", show_default=True, help="ccxt exchange id.")
@click.option(
    "--pairs",
    required=True,
    multiple=True,
    help="ccxt symbols, e.g. --pairs BTC/USDT ETH/USDT (futures: BTC/USDT or BTC/USDT:USDT).",
)
@click.option(
    "--timeframes",
    multiple=True,
    default=("1h",),
    show_default=True,
    help="Bar lengths the exchange offers, e.g. --timeframes 5m 1h.",
)
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=30,
    show_default=True,
    help="History to download, in days before --end (when --start is not given).",
)
@click.option("--start", default=None, help="First bar's open time (UTC), e.g. 2024-01-01.")
@click.option("--end", default=None, help="Stop before this time (UTC; default: now).")
@_DATADIR_OPTION
@click.option(
    "--trading-mode", type=click.Choice(["spot", "futures"]), default="spot", show_default=True
)
@click.option(
    "--retries",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Tries per request on rate limits and network errors.",
)
@click.option(
    "--api-url",
    default=None,
    help="Send REST requests to this scheme://host:port "
    "instead of the exchange's (a mirror or proxy).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@cli_errors()
def download(
    exchange, pairs, timeframes, days, start, end, datadir, trading_mode, retries, api_url, progress
) -> None:
    """Download closed candles with ccxt into DATADIR/<exchange>/<BASE>_<QUOTE>-<tf>.parquet.

    Pages through the exchange's history, backs off on rate limits, resumes from the last
    stored bar on the next run, never stores the still-forming candle, and reports gaps
    (never fills them). Several values: --pairs BTC/USDT ETH/USDT, --timeframes 5m 1h.
    """
    from research.data import DownloadConfig
    from research.data import download as run_download

    config = DownloadConfig(
        exchange=exchange,
        pairs=_words(pairs),
        timeframes=_words(timeframes),
        days=days,
        start=_utc(start, "--start"),
        end=_utc(end, "--end"),
        datadir=datadir,
        trading_mode=trading_mode,
        max_attempts=retries,
        api_url=api_url,
        progress=progress,
    )
    results = run_download(config)
    for res in results:
        span = f"{res.first} .. {res.last}" if res.bars else "no bars"
        click.echo(
            f"{res.pair} {res.timeframe}: {res.new_bars:,} new bar(s), {res.bars:,} in "
            f"{res.path} ({span})"
        )
        if len(res.gaps):
            click.echo(
                f"  {len(res.gaps)} gap(s), {int(res.gaps['missing_bars'].sum())} missing "
                f"bar(s), kept as gaps: {_gap_text(res.gaps)}"
            )
    folder = datadir / exchange / ("futures" if trading_mode == "futures" else "")
    click.echo(f"\nUse it: phantomlab demo --data {folder}")


def _words(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--pairs BTC/USDT ETH/USDT`` arrives as extra arguments; commas also separate."""
    return tuple(w for v in values for w in v.replace(",", " ").split())


def _table(datadir: Path) -> pd.DataFrame:
    from research.data import inspect_files

    table = inspect_files(datadir)  # DataError: exit 2 (cli_errors)
    if table.empty:
        raise click.UsageError(
            f"no candle files under {datadir}. Fix: check --datadir, or run "
            "phantomlab data download first."
        )
    return table


@data.command("list")
@_DATADIR_OPTION
@cli_errors()
def list_command(datadir) -> None:
    """List the candle files under DATADIR: pair, timeframe, first/last bar, bars, gaps."""
    table = _table(datadir)
    shown = table.drop(columns="error").assign(
        first=table["first"].astype(str), last=table["last"].astype(str)
    )
    click.echo(shown.to_string(index=False))
    bad = table[table["error"] != ""]
    if len(bad):
        click.echo(
            f"\n{len(bad)} file(s) cannot be read: phantomlab data check --datadir {datadir}"
        )


@data.command()
@_DATADIR_OPTION
@cli_errors()
def check(datadir) -> None:
    """Check every candle file under DATADIR with load_candles and report its gaps.

    Exits 1 if a file is bad (each message says what is wrong and how to fix it).
    """
    table = _table(datadir)
    for row in table.itertuples():
        if row.error:
            click.echo(f"BAD  {row.file}: {row.error}")
        else:
            gaps = (
                f"{row.gaps} gap(s), {row.missing_bars} missing bar(s)" if row.gaps else "no gaps"
            )
            click.echo(f"ok   {row.file}: {row.bars:,} bars {row.first} .. {row.last}, {gaps}")
    n_bad = int((table["error"] != "").sum())
    click.echo(f"\n{len(table) - n_bad} ok, {n_bad} bad of {len(table)} file(s) in {datadir}")
    if n_bad:
        sys.exit(1)
