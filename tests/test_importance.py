"""Feature importance: MDI evolution (seed) and purged OOS permutation importance (rigorous)."""

from __future__ import annotations

import numpy as np
import pytest
from support import closed_scalp_dataset

from research import schema as S
from research.analysis.importance import (
    NOISE,
    impurity_evolution,
    permutation_importance_oos,
    rank_stability,
)
from research.dataset import ClosedTrades
from research.features import feature_names, lifecycle_features
from research.synthetic import edge, make_market, null_market

N_BARS = 20_000
# volume_momentum plants drift after a bar whose volume is >= 2x its 20-bar mean: the signal
# bar's volume_ratio / volume_zscore carry it (its direction comes from the bar's body).
# the registered features that see the planted volume-spike edge at signal time
PLANTED = ("spike_age_12", "spike_dir_12")
FAST = {"n_splits": 8, "n_repeats": 3}


@pytest.fixture(scope="module")
def planted():
    market = make_market(
        n_bars=N_BARS, seed=5, trend_drift=0.0, edges=(edge("volume_momentum", drift=1.0),)
    )
    return closed_scalp_dataset(market)


@pytest.fixture(scope="module")
def null():
    return closed_scalp_dataset(null_market(n_bars=N_BARS, seed=5))


def _data(sig, out, x, y, **kw) -> ClosedTrades:
    return ClosedTrades(
        features=x, y=y, signal_times=sig[S.SIGNAL_TIME], exit_times=out[S.EXIT_TIME], **kw
    )


def _perm(data):
    return permutation_importance_oos(_data(*data), **FAST)


def test_planted_features_beat_the_noise_probe_out_of_sample(planted):
    imp = _perm(planted)
    order = list(imp.index)
    assert imp["base_auc"].iloc[0] > 0.6
    for f in PLANTED:
        assert order.index(f) < order.index(NOISE), imp.head(10)
    assert imp.loc["spike_age_12", "beats_probe_fdr"], imp.head(10)
    assert not imp.loc[NOISE, "beats_probe"]
    assert set(imp.index) == set(feature_names(available="signal")) | {NOISE}


def test_null_market_has_nothing_clearly_beating_the_probe(null):
    imp = _perm(null)
    assert abs(imp["base_auc"].iloc[0] - 0.5) < 0.05
    assert imp["beats_probe"].sum() <= 1, imp[imp["beats_probe"]]
    assert not imp["beats_probe_fdr"].any()
    # constant features (symbol_cluster = -1 here) carry no importance and never "beat" noise
    assert imp.loc["symbol_cluster", "mean"] == 0 and not imp.loc["symbol_cluster", "beats_probe"]


def test_mdi_evolution_columns_sum_to_one_and_hold_entry_features_only(planted):
    sig, out, x, y = planted
    evo = impurity_evolution(_data(sig, out, x, y))
    assert list(evo.columns) == [30, 100, 300, "all"]
    np.testing.assert_allclose(evo.sum().to_numpy(), 1.0, atol=1e-9)
    assert list(evo.index) == feature_names(available="signal")
    assert not set(evo.index) & set(feature_names(available="after_entry"))
    # one-hot blocks are summed back to their feature
    assert "session" in evo.index and not any("=" in f for f in evo.index)
    stab = rank_stability(evo)
    assert list(zip(stab["from"], stab["to"], strict=True)) == [(30, 100), (100, 300), (300, "all")]
    assert stab[["spearman", "kendall"]].abs().le(1).all().all()
    assert stab["correlation"].equals(stab["spearman"])


def test_mdi_size_beyond_the_data_is_nan(planted):
    sig, out, x, y = planted
    evo = impurity_evolution(_data(sig[:200], out[:200], x.iloc[:200], y[:200]), sizes=(100, 300))
    assert evo[300].isna().all() and evo[100].notna().all()


def test_lifecycle_features_are_refused(planted):
    sig, out, x, y = planted
    leaky = x.join(lifecycle_features(sig, out))
    with pytest.raises(ValueError, match="allow_after_entry"):
        impurity_evolution(_data(sig, out, leaky, y))
    with pytest.raises(ValueError, match="allow_after_entry"):
        permutation_importance_oos(_data(sig, out, leaky, y))


def test_bad_input_raises_with_a_fix(planted):
    sig, out, x, y = planted
    with pytest.raises(ValueError, match="Fix"):
        impurity_evolution(_data(sig, out, x, y[:-1]))
    with pytest.raises(ValueError, match="no rows"):
        impurity_evolution(_data(sig[:0], out[:0], x.iloc[:0], y[:0]))
    with pytest.raises(ValueError, match="0/1"):
        impurity_evolution(_data(sig, out, x, y + 1))
    with pytest.raises(ValueError, match="Fix"):
        permutation_importance_oos(
            ClosedTrades(
                features=x,
                y=y,
                signal_times=sig[S.SIGNAL_TIME].iloc[:-1],
                exit_times=out[S.EXIT_TIME],
            )
        )
    with pytest.raises(ValueError, match="Fix"):
        rank_stability(impurity_evolution(_data(sig, out, x, y), sizes=(None,)))
