"""Known-answer markets: where the right verdict of a filter is known before it is computed.

* ``'planted'``: three hourly symbols whose only directional effect is the planted
  ``volume_momentum`` edge — after a bar whose volume is at least twice its 20-bar mean, the
  next 12 bars drift 0.15 sigma per bar in the direction of that bar's body. The edge **varies
  between signals** (a signal right after a spike its way gains ~+0.3 R gross, one against it
  loses ~0.2 R, most gain nothing), it is **visible at signal time** to the registered features
  ``spike_dir_12`` / ``spike_age_12`` / ``signed_volume_12``, and it **pays after the default
  costs** (crypto perpetual: ~0.08-0.11 R per trade at these volatilities).
* ``'null'``: the same market with no edge and no trend: the price is a martingale and bars are
  Brownian-bridge paths, so every stop/target trade has zero expected gross R (checked: mean
  within 2 standard errors of 0) and a filter that "finds" something has found noise.

:func:`oracle_scores` gives, per signal, what an oracle that knows the planted rule knows at
the signal's close: the drift the edge has already committed to the coming bars, signed by the
trade's side (sigma units x bars). Its AUC on the outcomes is the ceiling a model of the same
information can reach; :mod:`research.analysis.efficacy` reports the product as a share of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from research import schema as S
from research.synthetic import edge, ground_truth, make_markets

KINDS: tuple[str, ...] = ("planted", "null")
SYMBOLS: tuple[str, ...] = ("SYNTH_A", "SYNTH_B", "SYNTH_C")
#: per-bar log-return sigma of each symbol at session multiplier 1 (hourly crypto-like)
BASE_VOLS: tuple[float, ...] = (0.005, 0.0065, 0.008)
PLANTED_EDGE = edge("volume_momentum", drift=0.15, horizon=12, threshold=2.0)


def known_answer_market(
    kind: str = "planted",
    *,
    n_bars: int = 20_000,
    seed: int = 0,
    symbols: Sequence[str] = SYMBOLS,
    timeframe: str = "1h",
    drift: float | None = None,
) -> dict[str, pd.DataFrame]:
    """Candles by symbol of a known-answer market (see the module doc).

    Parameters
    ----------
    kind : {'planted', 'null'}
    n_bars : int
        Bars per symbol (20,000 hourly bars is ~2.3 years).
    seed : int
        Symbol ``i`` uses ``seed + i``; a planted and a null market of one seed share their
        noise, so their difference is the edge alone.
    symbols : sequence of str
    timeframe : str
    drift : float, optional
        Planted drift, sigma units per bar (default 0.15); ignored for ``'null'``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is unknown. Fix: use one of {KINDS}.")
    planted = (
        PLANTED_EDGE
        if drift is None
        else edge("volume_momentum", drift=drift, horizon=12, threshold=2.0)
    )
    edges = (planted,) if kind == "planted" else ()
    markets = {}
    for i, symbol in enumerate(symbols):
        markets.update(
            make_markets(
                (symbol,),
                n_bars=n_bars,
                seed=seed + i,
                timeframe=timeframe,
                base_vol=BASE_VOLS[i % len(BASE_VOLS)],
                trend_drift=0.0,
                edges=edges,
            )
        )
    return markets


def oracle_scores(candles: Mapping[str, pd.DataFrame], signals: pd.DataFrame) -> pd.Series:
    """Per signal, the planted drift already committed at its close, signed by its side.

    Units: sigma x bars (0 on a null market, or where no edge is active). Indexed by
    ``signal_id``. Raises ValueError for candles that are not a synthetic market.
    """
    out = pd.Series(0.0, index=pd.Index(signals[S.SIGNAL_ID], name=S.SIGNAL_ID))
    for symbol, sig in signals.groupby(S.SYMBOL, sort=False):
        bars = candles[symbol]
        truth = ground_truth(bars)
        cols = [c for c in truth.columns if c.endswith("_ahead")]
        if not cols:
            continue
        ahead = truth[cols].sum(axis=1).to_numpy()
        tf = bars.attrs["timeframe"]
        pos = bars.index.get_indexer(pd.DatetimeIndex(sig[S.SIGNAL_TIME]) - tf)
        if (pos < 0).any():
            raise ValueError(f"{symbol}: signals whose bar is not in the candles")
        side = np.where(sig[S.SIDE].to_numpy() == S.LONG, 1.0, -1.0)
        out.loc[sig[S.SIGNAL_ID].to_numpy()] = side * ahead[pos]
    return out
