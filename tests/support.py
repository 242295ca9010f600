"""Helpers shared by several test modules (not fixtures)."""

from __future__ import annotations

import pandas as pd

from research import schema as S
from research.config import SimulatorConfig
from research.features import build_features
from research.phantom import PhantomTracker, simulate
from research.signals import generate_signals


def assert_tracker_matches_batch(candles, sigs, config=None):
    """Stream ``candles`` bar by bar through a PhantomTracker and compare with simulate()."""
    config = config or SimulatorConfig()
    batch = simulate(candles, sigs, config).set_index(S.SIGNAL_ID)
    tracker = PhantomTracker(timeframe=candles.attrs["timeframe"], config=config)
    pending = sigs.sort_values(S.SIGNAL_TIME, kind="stable")
    times = pd.DatetimeIndex(pending[S.SIGNAL_TIME])
    closed, j = [], 0
    for t, bar in candles.iterrows():
        k = int(times.searchsorted(t, side="right"))
        if k > j:  # signals known by this bar's open start being tracked now
            tracker.add_many(pending.iloc[j:k])
            j = k
        closed.append(tracker.update(_symbol_of(pending), bar))
    tracker.add_many(pending.iloc[j:])
    closed.append(tracker.censor_all())
    online = pd.concat([c for c in closed if len(c)]).set_index(S.SIGNAL_ID).loc[batch.index]
    pd.testing.assert_frame_equal(online, batch, check_dtype=False)


def _symbol_of(sigs):
    return str(sigs[S.SYMBOL].iloc[0])


def closed_scalp_dataset(candles):
    """Scalp signals of ``candles`` that closed by TP/SL/BE: (signals, outcomes, X, y=win)."""
    sig = generate_signals(candles, "scalp")
    out = simulate(candles, sig)
    keep = (~out[S.CENSORED] & (out[S.OUTCOME] != "timeout")).to_numpy()
    sig, out = sig[keep].reset_index(drop=True), out[keep].reset_index(drop=True)
    x = build_features(candles, sig)
    y = (out[S.OUTCOME] == "win").to_numpy(int)
    return sig, out, x, y
