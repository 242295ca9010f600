"""Files a user would bring: candle folders and a signals file written from outside the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from research.signals import generate_signals
from research.synthetic import make_markets


def write_candles(folder: Path, n_bars: int = 6000, seed: int = 3) -> dict[str, pd.DataFrame]:
    """A three-symbol synthetic market written as ``SYNTH_X_5m.csv`` files; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    markets = make_markets(n_bars=n_bars, seed=seed)
    for name, candles in markets.items():
        candles.rename_axis("timestamp").reset_index().to_csv(
            folder / f"{name}_5m.csv", index=False
        )
    return markets


def write_signals(path: Path, markets: dict[str, pd.DataFrame], seed: int = 0) -> pd.DataFrame:
    """The trend strategy's signals as a user's bot logs them; returns the written frame.

    Symbols as ``SYNTH/A`` (matched to ``SYNTH_A_5m``), sides as ``BUY``/``sell``, times as ISO
    strings, a strategy name of the user's own, one numeric and one text column of the bot's.
    """
    signals = pd.concat(
        [generate_signals(c, "trend", symbol=k) for k, c in markets.items()], ignore_index=True
    )
    rng = np.random.default_rng(seed)
    out = pd.DataFrame(
        {
            "symbol": signals["symbol"].str.replace("_", "/"),
            "side": np.where(signals["side"] == "long", "BUY", "sell"),
            "signal_time": signals["signal_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "entry": signals["entry"],
            "sl": signals["sl"],
            "tp": signals["tp"],
            "strategy": "mybot",
            "confidence": rng.normal(size=len(signals)).round(4),
            "venue": rng.choice(["binance", "okx"], size=len(signals)),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return out
