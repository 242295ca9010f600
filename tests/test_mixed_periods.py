"""Folders mixing periods (ADA 2014, BTC 2024): each symbol is clustered on its own early history,
point in time, and a symbol with too little history gets cluster -1 instead of a crash."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from research import schema as S
from research.candles import load_folder
from research.features import SymbolClusterer
from research.pipeline import MIN_PROFILE_BARS, cluster_symbols, run_signals_and_phantoms
from research.synthetic import make_market


def _market(symbol: str, start: str, seed: int, n_bars: int = 4000) -> pd.DataFrame:
    return make_market(n_bars=n_bars, symbol=symbol, seed=seed, start=pd.Timestamp(start, tz="UTC"))


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    for name, start, seed in (
        ("ADA_BTC", "2014-03-01", 1),
        ("BTC_USDT", "2024-01-01", 2),
        ("ETH_USDT", "2024-02-01", 3),
    ):
        candles = _market(name, start, seed)
        candles.rename_axis("timestamp").reset_index().to_csv(
            folder / f"{name}_5m.csv", index=False
        )
    return folder


def test_a_folder_of_non_overlapping_years_runs_end_to_end(mixed_folder):
    candles = load_folder(mixed_folder)
    assert candles["ADA_BTC_5m"].index[-1] < candles["BTC_USDT_5m"].index[0]
    study = run_signals_and_phantoms(candles, ("trend", "scalp"), progress=False)
    assert set(study.signals[S.SYMBOL]) == set(candles)
    assert len(study.outcomes) == len(study.signals) == len(study.features)
    cluster = study.features[S.SYMBOL_CLUSTER].to_numpy()
    times, symbols = study.signals[S.SIGNAL_TIME], study.signals[S.SYMBOL]
    for name, bars in candles.items():
        cut = bars.index[len(bars) // 5]  # each symbol's own 20 %
        mine = (symbols == name).to_numpy()
        before = mine & (times < cut).to_numpy()
        assert before.any() and (cluster[before] == -1).all()  # not yet known at signal time
        after = cluster[mine & ~before]
        assert len(set(after)) == 1 and after[0] >= 0  # one label, known from the cut-off on


def test_the_profile_uses_only_bars_before_the_symbols_own_cutoff(mixed_folder):
    candles = load_folder(mixed_folder)
    clusterer, cutoffs = cluster_symbols(candles)
    for name, bars in candles.items():
        assert cutoffs[name] == bars.index[len(bars) // 5]
        expected = SymbolClusterer.profile(bars[bars.index < cutoffs[name]])
        assert clusterer.profiles_.loc[name].to_dict() == pytest.approx(expected)
    # scrambling every bar at or after each cut-off changes nothing
    rng = np.random.default_rng(0)
    moved = {}
    for name, bars in candles.items():
        late = (bars.index >= cutoffs[name])[:, None]
        moved[name] = bars * np.where(late, rng.uniform(0.5, 1.5, (len(bars), 1)), 1.0)
    again, _ = cluster_symbols(moved)
    pd.testing.assert_frame_equal(again.profiles_, clusterer.profiles_)
    assert again.labels_ == clusterer.labels_
    # while the bar just before a cut-off does count
    name = "BTC_USDT_5m"
    bars = candles[name].copy()
    bars.iloc[len(bars) // 5 - 1, :4] *= 3.0
    third, _ = cluster_symbols({**candles, name: bars})
    assert (
        third.profiles_.loc[name, "log_daily_vol"] != clusterer.profiles_.loc[name, "log_daily_vol"]
    )


def test_too_little_history_is_cluster_minus_one_not_a_crash(caplog):
    long_a, long_b = _market("A", "2024-01-01", 1, 2000), _market("B", "2020-01-01", 2, 2000)
    short = _market("C", "2014-01-01", 3, 5 * (MIN_PROFILE_BARS - 1))  # 20 % = too few bars
    with caplog.at_level(logging.WARNING):
        clusterer, _ = cluster_symbols({"A": long_a, "B": long_b, "C": short})
    assert clusterer.skipped_ == ["C"] and "['C'] have too little history" in caplog.text
    assert clusterer.predict(["A", "B", "C"]).tolist()[2] == -1
    assert min(clusterer.predict(["A", "B"])) >= 0
    with caplog.at_level(logging.WARNING):
        none, cutoffs = cluster_symbols({"C": short})
    assert none is None and "every symbol_cluster is -1" in caplog.text and "C" in cutoffs
    # the pipeline runs on (C is too short for any signal after the indicators' warm-up)
    study = run_signals_and_phantoms({"C": short, "A": long_a}, ("scalp",), progress=False)
    late = (study.signals[S.SIGNAL_TIME] >= long_a.index[len(long_a) // 5]).to_numpy()
    assert late.any() and (study.features[S.SYMBOL_CLUSTER].to_numpy()[late] == 0).all()
    # one explicit cut-off for all symbols, as before: still the error when nothing is left
    with pytest.raises(ValueError, match="Fix"):
        SymbolClusterer().fit({"A": long_a}, end="2000-01-01")
