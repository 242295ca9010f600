"""Every file of the real data set: signals of all strategies, features, outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_FILES
from support import assert_tracker_matches_batch

from research import schema as S
from research.candles import load_candles
from research.features import build_features, feature_names
from research.phantom import simulate
from research.signals import generate_signals


@pytest.mark.parametrize("path", DATA_FILES, ids=[p.name for p in DATA_FILES])
def test_every_file_gives_signals_features_and_outcomes(path):
    candles = load_candles(path)
    signals = pd.concat(
        [generate_signals(candles, s) for s in ("trend", "range", "scalp")], ignore_index=True
    )
    counts = signals[S.STRATEGY].value_counts()
    assert all(counts.get(s, 0) >= 20 for s in ("trend", "range", "scalp")), counts.to_dict()
    features = build_features(candles, signals)
    assert list(features.columns) == feature_names(available="signal")
    assert not features.isna().any().any()
    assert np.isfinite(features.select_dtypes("number").to_numpy()).all()
    outcomes = simulate(candles, signals)
    assert len(outcomes) == len(signals)
    closed = outcomes[~outcomes[S.CENSORED]]
    assert closed[S.EXIT_TIME].notna().all() and closed[S.OUTCOME].notna().all()
    assert (closed[S.EXIT_TIME] > signals.loc[closed.index, S.SIGNAL_TIME]).all()
    # a trade is censored only if the data end before its timeout
    last_close = candles.index[-1] + candles.attrs["timeframe"]
    censored = signals.loc[outcomes[S.CENSORED].to_numpy()]
    assert (censored[S.SIGNAL_TIME] + pd.Timedelta("36h") > last_close).all()


def test_online_tracker_matches_batch_on_a_real_file(btc_1h):
    signals = pd.concat(
        [generate_signals(btc_1h, s) for s in ("trend", "range", "scalp")], ignore_index=True
    )
    assert len(signals) > 500
    assert_tracker_matches_batch(btc_1h, signals)
