"""The dataset type: closed trades built from a study or from the stores, split by splits.py."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from research import schema as S
from research.dataset import ClosedTrades, fresh_estimator
from research.errors import InsufficientDataError, SchemaError, SplitError, TooFewRowsError
from research.features import lifecycle_features
from research.pipeline import research_market, run_signals_and_phantoms
from research.splits import latest_exits_split


@pytest.fixture(scope="module")
def study():
    candles = research_market("planted", n_bars=3000, seed=0, edge_drift=0.5)
    return run_signals_and_phantoms(candles, ["scalp", "trend"], progress=False)


@pytest.mark.parametrize(("strategy", "timeouts"), [(None, False), ("scalp", True)])
def test_from_study_keeps_the_closed_trades_row_aligned(study, strategy, timeouts):
    data = ClosedTrades.from_study(study, strategy, learn_from_timeouts=timeouts)
    out = study.outcomes
    keep = ~out[S.CENSORED].to_numpy(bool) & (timeouts | (out[S.OUTCOME] != "timeout").to_numpy())
    if strategy is not None:
        keep &= (study.signals[S.STRATEGY] == strategy).to_numpy()
    signals = study.signals[keep].reset_index(drop=True)
    outcomes = out[keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(data.signals, signals)
    pd.testing.assert_frame_equal(data.outcomes, outcomes)
    pd.testing.assert_frame_equal(data.features, study.features[keep])
    np.testing.assert_array_equal(data.y, (outcomes[S.OUTCOME] == "win").to_numpy(int))
    assert (data.signal_times == pd.DatetimeIndex(signals[S.SIGNAL_TIME])).all()
    assert data.exit_times.tz is not None and data.trainable.all() and len(data) == keep.sum()
    assert data.strategy == strategy
    leaky = data.with_lifecycle().features
    pd.testing.assert_frame_equal(
        leaky, study.features[keep].join(lifecycle_features(signals, outcomes))
    )


def test_from_study_refuses_an_unknown_strategy(study):
    with pytest.raises(ValueError, match="has no signals in this study.*Fix"):
        ClosedTrades.from_study(study, "range")


def _audit_rows() -> pd.DataFrame:
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame(
        {
            S.SIGNAL_ID: ["a", "b", "c", "d"],
            S.SIGNAL_TIME: [t0 + pd.Timedelta(hours=h) for h in range(4)],
            S.EXIT_TIME: [t0 + pd.Timedelta(hours=h + 0.5) for h in range(4)],
            S.OUTCOME: ["win", "timeout", "loss", "win"],
            S.WAS_EXECUTED: [True, False, False, True],
        },
        index=[7, 8, 9, 10],
    )


def test_from_audit_keeps_timeouts_but_does_not_train_on_them():
    rows = _audit_rows()
    data = ClosedTrades.from_audit(rows, pd.DataFrame({"f": [1.0, 2, 3, 4]}), strategy="scalp")
    np.testing.assert_array_equal(data.y, [1, 0, 0, 1])
    np.testing.assert_array_equal(data.trainable, [True, False, True, True])
    assert list(data.trades.index) == [0, 1, 2, 3] and list(data.features.index) == [0, 1, 2, 3]
    both = ClosedTrades.from_audit(rows, rows[[]], strategy="scalp", learn_from_timeouts=True)
    assert both.trainable.all()
    table = data.summary()
    assert table.loc["executed", "trades"] == 2 and table.loc["phantom", "timeouts"] == 1
    with pytest.raises(SchemaError, match="outcome"):
        ClosedTrades.from_audit(rows.drop(columns=S.OUTCOME), rows[[]], strategy="scalp")


def test_bad_arrays_are_refused_with_a_fix():
    rows = _audit_rows()
    x, times = pd.DataFrame({"f": range(4)}), rows[S.SIGNAL_TIME]
    with pytest.raises(TypeError, match="DataFrame.*Fix"):
        ClosedTrades(features=x.to_numpy(), y=[0, 1, 0, 1], signal_times=times, exit_times=times)
    with pytest.raises(SchemaError, match="0/1.*Fix"):
        ClosedTrades(features=x, y=[0, 2, 0, 1], signal_times=times, exit_times=times)
    with pytest.raises(SchemaError, match="4 rows but 3 signal.*Fix"):
        ClosedTrades(features=x, y=[0, 1, 0, 1], signal_times=times[:3], exit_times=times)
    with pytest.raises(SchemaError, match="datetimes.*Fix"):
        ClosedTrades(features=x, y=[0, 1, 0, 1], signal_times=[True] * 4, exit_times=times)
    bare = ClosedTrades(features=x, y=[0, 1, 0, 1], signal_times=times, exit_times=times)
    with pytest.raises(SchemaError, match="built from arrays.*Fix"):
        bare.summary()
    empty = ClosedTrades(features=x[:0], y=[], signal_times=times[:0], exit_times=times[:0])
    with pytest.raises(InsufficientDataError, match="no rows.*Fix"):
        empty.require_rows("an analysis")


def test_fresh_estimator_clones_an_estimator_and_calls_a_factory():
    model = LogisticRegression(C=0.5)
    fresh = fresh_estimator(model)
    assert fresh is not model and fresh.get_params() == model.get_params()
    made = fresh_estimator(functools.partial(LogisticRegression, C=2.0))
    assert made.C == 2.0


def test_latest_exits_split_holds_out_the_last_exits_and_purges():
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    signal = [t0 + pd.Timedelta(hours=h) for h in range(6)]
    # row 2 stays open until after row 4's signal: it is purged
    exits = [t0 + pd.Timedelta(hours=h) for h in (0.5, 1.5, 4.5, 3.5, 5.5, 6.5)]
    hold = latest_exits_split(signal, exits, 0.3)  # ceil(1.8) = 2 latest exits: rows 4, 5
    np.testing.assert_array_equal(hold.test, [4, 5])
    np.testing.assert_array_equal(hold.train, [0, 1, 3])
    assert (hold.purged, hold.capped) == (1, 0)
    capped = latest_exits_split(signal, exits, 0.3, max_train_size=2)
    np.testing.assert_array_equal(capped.train, [1, 3])  # the most recent exits stay
    assert capped.capped == 1
    with pytest.raises(TooFewRowsError, match="Fix"):
        latest_exits_split(signal[:1], exits[:1], 0.5)
    with pytest.raises(SplitError, match="NaT.*Fix"):
        latest_exits_split(signal, [*exits[:5], pd.NaT], 0.3)
