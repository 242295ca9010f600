"""Patterns by context and the in-sample vs out-of-fold calibration comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import closed_scalp_dataset

from research import schema as S
from research.analysis.calibration import calibration_comparison
from research.analysis.patterns import (
    DIMENSIONS,
    best_worst,
    pattern_matrix,
    pattern_table,
    trades_with_context,
    wilson_interval,
)
from research.dataset import ClosedTrades
from research.scoring import EnsembleScorer
from research.synthetic import edge, make_market


def test_wilson_interval_by_hand():
    lo, hi = wilson_interval([8, 0], [10, 0])
    assert lo[0] == pytest.approx(0.4902, abs=1e-4) and hi[0] == pytest.approx(0.9433, abs=1e-4)
    assert np.isnan(lo[1]) and np.isnan(hi[1])


def test_pattern_table_by_hand():
    trades = pd.DataFrame(
        {
            S.OUTCOME: ["win", "loss", "win", "timeout", "loss"],
            S.REALIZED_RR: [2.0, -1.0, 2.0, 0.1, -1.0],
            "hour": [1, 1, 2, 2, 2],
        }
    )
    t = pattern_table(trades, "hour", min_n=3).set_index("value")
    assert t.loc["1", "n"] == 2 and t.loc["1", "win_rate"] == 0.5 and not t.loc["1", "enough"]
    assert t.loc["2", "win_rate"] == pytest.approx(1 / 3)  # a timeout is not a win
    assert t.loc["2", "mean_r"] == pytest.approx(0.1 / 3 + 1 / 3) and t.loc["2", "enough"]
    assert t.loc["2", "total_r"] == pytest.approx(1.1)
    with pytest.raises(ValueError, match="no trades"):
        pattern_table(trades.iloc[:0], "hour")


def test_a_planted_session_effect_is_the_clear_best_cell():
    rng = np.random.default_rng(0)
    n = 4000
    session = rng.choice(list(S.SESSIONS), n)
    won = rng.random(n) < np.where(session == "us", 0.6, 0.3)
    trades = pd.DataFrame(
        {
            S.OUTCOME: np.where(won, "win", "loss"),
            S.REALIZED_RR: np.where(won, 1.5, -1.0),
            S.SESSION: session,
        }
    )
    table = pattern_table(trades, S.SESSION)
    bw = best_worst(table, trades, metric="win_rate", k=1)
    best = bw[bw["rank"] == "best"].iloc[0]
    assert best["value"] == "us" and best["clear"]
    assert best["wr_low"] < 0.6 < best["wr_high"]
    with pytest.raises(ValueError, match="metric"):
        best_worst(table, trades, metric="sharpe")


@pytest.fixture(scope="module")
def study():
    candles = make_market(n_bars=6000, seed=4, edges=(edge("body_momentum"),))
    sig, out, x, y = closed_scalp_dataset(candles)
    return sig, out, x, y


def test_patterns_on_simulated_trades_cover_every_dimension(study):
    sig, out, x, _ = study
    trades = trades_with_context(out, x)
    assert len(trades) == len(out)
    table = pattern_table(trades)
    assert set(table["dimension"]) == set(DIMENSIONS)
    assert (table.groupby("dimension")["n"].sum() == len(trades)).all()
    grid = pattern_matrix(trades, "weekday", "hour", min_n=5)
    assert grid.shape[0] <= 7 and grid.shape[1] <= 24
    assert np.nanmax(grid.to_numpy()) <= 1.0
    with pytest.raises(S.SchemaError, match="context columns"):
        trades_with_context(out, x.drop(columns=["trend_state"]))


def test_in_sample_and_out_of_fold_calibration_side_by_side(study):
    sig, out, x, y = study
    res = calibration_comparison(
        ClosedTrades(features=x, y=y, signal_times=sig[S.SIGNAL_TIME], exit_times=out[S.EXIT_TIME]),
        n_splits=3,
        estimator=EnsembleScorer(n_estimators=40, gb_max_iter=40, nn_enabled=False),
    )
    folds = res["by_fold"]
    assert set(folds["rule"]) == {"in_sample", "oof"}
    assert len(folds) == 2 * folds["fold"].nunique() >= 4
    rel = res["reliability"]
    assert rel.groupby("rule")["count"].sum().nunique() == 1  # same test rows for both rules
    assert (res["by_bucket"]["n"] >= 30).all() and set(res["by_bucket"]["rule"]) == {
        "in_sample",
        "oof",
    }
    mean = folds.groupby("rule")[["brier", "ece"]].mean()
    # in-sample calibration trusts over-fitted forest probabilities: out of sample it is
    # worse calibrated than the out-of-fold rule
    assert mean.loc["oof", "ece"] < mean.loc["in_sample", "ece"]
    assert mean.loc["oof", "brier"] <= mean.loc["in_sample", "brier"] + 0.002
