"""Which candles a research notebook studies, chosen from its parameters and said in words.

``notebooks/01_signals_and_phantoms.ipynb`` takes ``data_dir`` and an optional ``symbol``;
:func:`pick_candles` resolves them to one candle frame and a sentence saying which file was
used and why, so the notebook stays thin and its errors name the parameter to change.
One file is one symbol at one timeframe: bars of different lengths are never pooled.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from research.candles import EXTENSIONS, load_candles
from research.reports.format import timeframe_text

logger = logging.getLogger(__name__)


def _stem(name: str) -> str | None:
    ext = next((e for e in EXTENSIONS if name.lower().endswith(e)), None)
    return None if ext is None else name[: len(name) - len(ext)]


def candle_files(data_dir: str | Path) -> dict[str, Path]:
    """The candle files of ``data_dir`` keyed by name without extension, in name order."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"data_dir={str(data_dir)!r} is not an existing folder. Fix: set data_dir to a "
            "folder of candle files, or to None for the built-in synthetic market."
        )
    files = {}
    for path in sorted(folder.iterdir()):
        stem = _stem(path.name) if path.is_file() else None
        if stem is not None:
            files[stem] = path
    if not files:
        raise FileNotFoundError(
            f"data_dir={str(data_dir)!r} holds no candle file (any of {list(EXTENSIONS)}). "
            "Fix: point data_dir at a folder of candle files."
        )
    return files


def pick_candles(data_dir: str | Path, symbol: str | None = None) -> tuple[pd.DataFrame, str]:
    """One candle file of ``data_dir`` and a sentence saying which one and why.

    Parameters
    ----------
    data_dir : str or Path
        Folder of candle files (``BTC_USDT_5m.csv.gz``, ...).
    symbol : str, optional
        The file's name without extension (``"BTC_USDT_5m"``), or a bare symbol
        (``"BTC_USDT"``) when the folder holds it at one timeframe only. ``None``: the first
        file in name order (the sentence says so and lists the others).

    Returns
    -------
    (DataFrame, str)
        The candles (``attrs["symbol"]``, ``attrs["timeframe"]``) and the sentence.

    Raises
    ------
    ValueError
        ``symbol`` matches no file, or a bare symbol matches several timeframes (they are
        not pooled: bars of different lengths are different markets to a strategy); the
        message names the parameter and the files to choose from.
    """
    files = candle_files(data_dir)
    names = list(files)
    if symbol is None:
        chosen, why = names[0], "`symbol` is not set: the first file of data_dir"
        if len(names) > 1:
            why += f" (the others: {', '.join(names[1:6])}{', ...' if len(names) > 6 else ''})"
    elif symbol in files:
        chosen, why = symbol, "`symbol`"
    else:
        matches = [n for n in names if n.startswith(f"{symbol}_") or n.startswith(f"{symbol}-")]
        if len(matches) != 1:
            what = (
                f"matches several timeframes {matches}: they are not pooled"
                if matches
                else "matches no candle file"
            )
            raise ValueError(
                f"symbol={symbol!r} {what} in data_dir={str(data_dir)!r}. Fix: set symbol to "
                f"one file's name without extension, one of {names[:12]}, or to None for the "
                "first file."
            )
        chosen, why = matches[0], f"`symbol`={symbol!r}, its only file"
    candles = load_candles(files[chosen])
    note = (
        f"{chosen} ({why}): {len(candles):,} bars of "
        f"{timeframe_text(candles.attrs['timeframe'])}, "
        f"{candles.index[0]:%Y-%m-%d %H:%M} .. {candles.index[-1]:%Y-%m-%d %H:%M} UTC."
    )
    logger.info("%s", note)
    return candles, note


def synthetic_note(candles: pd.DataFrame) -> str:
    """The sentence :func:`pick_candles` gives, for a synthetic market."""
    return (
        f"{candles.attrs.get('symbol', '?')} (synthetic, planted body_momentum edge): "
        f"{len(candles):,} bars of {timeframe_text(candles.attrs['timeframe'])}, "
        f"{candles.index[0]:%Y-%m-%d %H:%M} .. {candles.index[-1]:%Y-%m-%d %H:%M} UTC."
    )
