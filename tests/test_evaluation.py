"""Walk-forward evaluation and calibration metrics."""

from __future__ import annotations

import numpy as np
import pytest
from support import closed_scalp_dataset

from research import schema as S
from research.analysis.evaluation import walk_forward_evaluation
from research.analysis.metrics import (
    expected_calibration_error,
    probability_metrics,
    reliability_table,
)
from research.candles import load_candles
from research.dataset import ClosedTrades
from research.scoring import EnsembleScorer


def test_reliability_table_and_ece_by_hand():
    y = [0, 1, 1, 1]
    p = [0.05, 0.15, 0.95, 0.95]
    t = reliability_table(y, p, n_bins=10)
    assert t["count"].tolist() == [1, 1, 2]
    np.testing.assert_allclose(t["gap"], [-0.05, 0.85, 0.05])
    # ECE = (1*0.05 + 1*0.85 + 2*0.05) / 4
    assert expected_calibration_error(y, p) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="Fix"):
        reliability_table([], [])
    m = probability_metrics([0, 1], [0.2, 0.8])
    assert m["auc"] == 1.0 and m["brier"] == pytest.approx(0.04)
    assert np.isnan(probability_metrics([1, 1], [0.2, 0.8])["auc"])


def test_calibrated_ensemble_is_no_worse_than_the_base_rate_out_of_sample(data_dir):
    sig, out, x, y = closed_scalp_dataset(load_candles(data_dir / "BTC_USDT_5m.csv.gz"))
    ev, preds = walk_forward_evaluation(
        ClosedTrades(features=x, y=y, signal_times=sig[S.SIGNAL_TIME], exit_times=out[S.EXIT_TIME]),
        n_splits=3,
        return_predictions=True,
        estimator=lambda: EnsembleScorer(n_estimators=60, gb_max_iter=60),
    )
    mean = ev.groupby("model")[["auc", "brier", "log_loss", "ece"]].mean()
    assert set(ev["model"]) == {"ensemble", "base_rate", "heuristic"}
    assert (ev.groupby("fold")["n_test"].first() > 500).all()
    # Real markets have little edge: the bar is "no worse than the base rate", within noise.
    assert mean.loc["ensemble", "brier"] <= mean.loc["base_rate", "brier"] + 0.001
    assert mean.loc["ensemble", "ece"] < 0.05
    assert mean.loc["heuristic", "brier"] > mean.loc["base_rate", "brier"]  # uncalibrated
    # The reliability table of the pooled out-of-sample ensemble predictions: where a bin
    # holds enough signals, what it predicts is what happened (within a few points).
    ens = preds[preds["model"] == "ensemble"]
    assert len(ens) == ev.loc[ev["model"] == "ensemble", "n_test"].sum()
    assert (ens["y"].to_numpy() == y[ens["row"].to_numpy()]).all()
    table = reliability_table(ens["y"], ens["p"], n_bins=10)
    print(table)  # reported in the test log (-s), as the issue asks
    big = table[table["count"] >= 200]
    assert len(big) >= 2
    assert (big["gap"].abs() < 0.06).all()
