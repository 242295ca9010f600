"""Leakage: lifecycle features make OOS results implausible; feature code has no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from support import closed_scalp_dataset

from research import schema as S
from research.analysis.leakage import leakage_check, perturb_future
from research.dataset import ClosedTrades
from research.features import build_features, feature_names, lifecycle_features
from research.phantom import simulate
from research.synthetic import edge, make_market


@pytest.fixture(scope="module")
def data():
    market = make_market(
        n_bars=16_000, seed=5, trend_drift=0.0, edges=(edge("volume_momentum", drift=0.5),)
    )
    return market, closed_scalp_dataset(market)


def _data(sig, out, x, y) -> ClosedTrades:
    return ClosedTrades(
        features=x, y=y, signal_times=sig[S.SIGNAL_TIME], exit_times=out[S.EXIT_TIME]
    )


def test_lifecycle_features_are_flagged(data):
    _, (sig, out, x, y) = data
    report = leakage_check(_data(sig, out, x.join(lifecycle_features(sig, out)), y))
    assert {"tp1_hit", "be_moved", "time_to_exit_sec"} <= set(report.flagged), report.features
    assert not set(report.flagged) & set(feature_names(available="signal"))
    v = report.variants
    assert v.loc["entry+all_lifecycle", "auc_oos"] > v.loc["entry", "auc_oos"] + 0.2
    assert v.loc["entry", "auc_oos"] < 0.7  # the honest model is only modestly good
    assert (v["auc_gap"] == v["auc_in"] - v["auc_oos"]).all()


def test_entry_features_alone_flag_nothing(data):
    _, (sig, out, x, y) = data
    report = leakage_check(_data(sig, out, x, y))
    assert report.flagged == []
    assert list(report.variants.index) == ["entry"]


def test_a_label_copy_among_entry_features_is_flagged(data):
    _, (sig, out, x, y) = data
    rng = np.random.default_rng(0)
    bugged = x.assign(rsi_14=y + rng.normal(0, 0.3, len(y)))  # a "feature" that knows the label
    report = leakage_check(_data(sig, out, bugged, y))
    assert report.flagged == ["rsi_14"], report.features.sort_values("univariate_auc").tail()


def test_perturbing_the_future_changes_no_entry_feature(data):
    market, (sig, out, _, _) = data
    entry = perturb_future(market, sig, n_checks=10)
    assert set(entry.index) == set(feature_names(available="signal"))
    assert (entry["n_changed"] == 0).all(), entry[entry["n_changed"] > 0]

    def with_lifecycle(candles, signals):
        return build_features(candles, signals).join(
            lifecycle_features(signals, simulate(candles, signals))
        )

    both = perturb_future(market, sig, feature_fn=with_lifecycle, n_checks=10)
    assert (both.loc[feature_names(available="signal"), "n_changed"] == 0).all()
    assert both.loc["time_to_exit_sec", "n_changed"] > 0  # outcomes do depend on the future


def test_perturb_future_catches_a_look_ahead_feature(data):
    market, (sig, _, _, _) = data

    def peeking(candles, signals):  # atr_pct replaced by the next bar's close: look-ahead
        f = build_features(candles, signals)
        nxt = candles.index.searchsorted(signals[S.SIGNAL_TIME].to_numpy(), side="left")
        f["atr_pct"] = candles[S.CLOSE].to_numpy()[np.minimum(nxt, len(candles) - 1)]
        return f

    report = perturb_future(market, sig, feature_fn=peeking, n_checks=5)
    assert report.index[0] == "atr_pct" and report.loc["atr_pct", "share"] == 1.0
    assert report["n_changed"].iloc[1:].eq(0).all()


def test_bad_input_raises_with_a_fix(data):
    market, (sig, out, x, y) = data
    with pytest.raises(ValueError, match="Fix"):
        leakage_check(_data(sig, out, x, y[:-1]))
    with pytest.raises(ValueError, match="no rows"):
        leakage_check(_data(sig[:0], out[:0], x.iloc[:0], y[:0]))
    with pytest.raises(ValueError, match="Fix"):
        leakage_check(_data(sig.iloc[:-1], out, x, y))
    with pytest.raises(ValueError, match="Fix"):
        perturb_future(market, sig, n_checks=0)
