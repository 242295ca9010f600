"""Figures of the analyses: drawn from real frames, on a given axis or a new figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from support import planted_gate_frame  # noqa: E402

from research import schema as S  # noqa: E402
from research.analysis.calibration import reliability_table  # noqa: E402
from research.analysis.patterns import pattern_matrix, pattern_table  # noqa: E402
from research.plots import plot_pattern_cells, plot_pattern_heatmap, plot_reliability  # noqa: E402


@pytest.fixture(scope="module")
def trades():
    rng = np.random.default_rng(1)
    n = 2000
    won = rng.random(n) < 0.4
    return pd.DataFrame({S.OUTCOME: np.where(won, "win", "loss"),
                         S.REALIZED_RR: np.where(won, 1.5, -1.0),
                         "hour": rng.integers(0, 24, n), "weekday": rng.integers(0, 7, n),
                         S.SESSION: rng.choice(list(S.SESSIONS), n)})  # fmt: skip


def test_reliability_diagram_draws_each_rule():
    rng = np.random.default_rng(0)
    p = rng.random(3000)
    y = rng.random(3000) < p
    rel = pd.concat([reliability_table(y, p).reset_index().assign(rule="oof"),
                     reliability_table(y, p ** 2).reset_index().assign(rule="in_sample")])  # fmt: skip
    fig = plot_reliability(rel)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"oof", "in_sample", "perfect calibration"} <= set(labels)
    assert len(fig.axes[0].lines) == 3
    plt.close(fig)


def test_pattern_cells_show_intervals_and_counts(trades):
    table = pattern_table(trades, ["hour", S.SESSION], min_n=100)
    fig, ax = plt.subplots()
    assert plot_pattern_cells(table, S.SESSION, ax=ax) is fig
    assert [t.get_text() for t in ax.get_xticklabels()] == sorted(S.SESSIONS)
    assert len(ax.texts) == 4  # one count label per cell
    plt.close(fig)
    with pytest.raises(ValueError, match="no cells for dimension"):
        plot_pattern_cells(table, "weekday")


def test_pattern_heatmap(trades):
    grid = pattern_matrix(trades, "weekday", "hour", min_n=5)
    fig = plot_pattern_heatmap(grid, center=0.4)
    assert fig.axes[0].collections, "no heatmap drawn"
    plt.close(fig)


def test_gate_plots_from_a_real_analysis():
    from research.analysis.gates import analyze_gates
    from research.plots import plot_gate_deltas, plot_synergy_heatmap

    frame, gates = planted_gate_frame(0)
    res = analyze_gates(frame, gates, n_perm=50)
    fig = plot_gate_deltas(res.singles)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == "g0 ✓"  # the planted gate: largest |delta| (drawn on top), confirmed
    plt.close(fig)
    fig = plot_synergy_heatmap(res.combos)
    assert fig.axes[0].collections
    plt.close(fig)


def test_importance_plots_from_real_frames():
    from support import closed_scalp_dataset

    from research.analysis.importance import impurity_evolution, permutation_importance_oos
    from research.plots import plot_importance_evolution, plot_permutation_importance
    from research.synthetic import make_market

    sig, out, x, y = closed_scalp_dataset(make_market(n_bars=4000, seed=1))
    ev = impurity_evolution(x, y, signal_times=sig[S.SIGNAL_TIME])
    fig = plot_importance_evolution(ev, top=5)
    assert len(fig.axes[0].lines) == 5
    plt.close(fig)
    perm = permutation_importance_oos(x, y, sig[S.SIGNAL_TIME], out[S.EXIT_TIME], n_splits=3,
                                      n_repeats=1)  # fmt: skip
    fig = plot_permutation_importance(perm, top=8)
    ax = fig.axes[0]
    assert len(ax.patches) == 8 and "noise probe" in [t.get_text() for t in
                                                       ax.get_legend().get_texts()]  # fmt: skip
    plt.close(fig)
