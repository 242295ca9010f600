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
from research.analysis.metrics import reliability_table  # noqa: E402
from research.analysis.patterns import pattern_matrix, pattern_table  # noqa: E402
from research.plots import plot_pattern_cells, plot_pattern_heatmap, plot_reliability  # noqa: E402


@pytest.fixture(scope="module")
def trades():
    rng = np.random.default_rng(1)
    n = 2000
    won = rng.random(n) < 0.4
    return pd.DataFrame(
        {
            S.OUTCOME: np.where(won, "win", "loss"),
            S.REALIZED_RR: np.where(won, 1.5, -1.0),
            "hour": rng.integers(0, 24, n),
            "weekday": rng.integers(0, 7, n),
            S.SESSION: rng.choice(list(S.SESSIONS), n),
        }
    )


def test_reliability_diagram_draws_each_rule():
    rng = np.random.default_rng(0)
    p = rng.random(3000)
    y = rng.random(3000) < p
    rel = pd.concat(
        [
            reliability_table(y, p).reset_index().assign(rule="oof"),
            reliability_table(y, p**2).reset_index().assign(rule="in_sample"),
        ]
    )
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
    from research.dataset import ClosedTrades
    from research.plots import plot_importance_evolution, plot_permutation_importance
    from research.synthetic import make_market

    sig, out, x, y = closed_scalp_dataset(make_market(n_bars=4000, seed=1))
    data = ClosedTrades(
        features=x, y=y, signal_times=sig[S.SIGNAL_TIME], exit_times=out[S.EXIT_TIME]
    )
    ev = impurity_evolution(data)
    fig = plot_importance_evolution(ev, top=5)
    assert len(fig.axes[0].lines) == 5
    plt.close(fig)
    perm = permutation_importance_oos(data, n_splits=3, n_repeats=1)
    fig = plot_permutation_importance(perm, top=8)
    ax = fig.axes[0]
    assert len(ax.patches) == 8 and "noise probe" in [
        t.get_text() for t in ax.get_legend().get_texts()
    ]
    plt.close(fig)


def test_uplift_plot_draws_skill_against_its_null_and_net_and_says_too_few():
    """Skill (gross) with its interval over the null band, net uplift apart; a row the
    analysis gave no interval (note "too few") is drawn without one and labelled so."""
    from matplotlib.container import ErrorbarContainer

    from research.analysis.uplift import TOO_FEW
    from research.plots import plot_uplift

    uplift = pd.DataFrame(
        {
            "rule": ["in force"] * 3,
            "era": ["heuristic", "model", "model"],
            S.STRATEGY: ["scalp", "scalp", "all"],
            "n": [100, 400, 50],
            "n_passed": [12, 200, 0],
            "uplift": [0.30, 0.05, np.nan],
            "ci_low": [np.nan, -0.02, np.nan],
            "ci_high": [np.nan, 0.12, np.nan],
            "skill": [0.35, 0.08, np.nan],
            "skill_low": [np.nan, 0.01, np.nan],
            "skill_high": [np.nan, 0.15, np.nan],
            "null_low": [np.nan, -0.04, np.nan],
            "null_high": [np.nan, 0.05, np.nan],
            "note": [TOO_FEW, "", TOO_FEW],
        }
    )
    fig = plot_uplift(uplift)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "heuristic · scalp (12/100 passed): too few",
        "model · scalp (200/400 passed)",
        "model · all (0/50 passed)",
    ]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2, "only the row with enough passed trades has intervals"
    assert {b.lines[0].get_xdata()[0] for b in bars} == {0.08, 0.05}  # skill and net uplift
    assert len(ax.patches) == 1 and ax.patches[0].get_x() == pytest.approx(-0.04)  # null band
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("R gross" in t for t in legend) and any("R net of costs" in t for t in legend)
    assert any("null" in t for t in legend) and any("too few" in t for t in legend)
    assert any(t.get_text() == "no signal passed" for t in ax.texts)
    plt.close(fig)


def test_cumulative_r_figures_name_their_basis_and_draw_one():
    from research.analysis.activity import cumulative_r
    from research.plots import plot_cumulative_r, plot_cumulative_r_by_decision

    t0 = pd.Timestamp("2026-01-05", tz="UTC")
    decisions = pd.DataFrame(
        {
            S.EXIT_TIME: t0 + pd.to_timedelta(np.arange(4), unit="h"),
            S.CENSORED: [False] * 4,
            S.WAS_EXECUTED: [True, False, True, False],
            S.RR_IF_EXECUTED: [1.0, -1.2, -0.2, 0.8],
            "rr_gross": [1.1, -1.0, -0.1, 1.0],
        }
    )
    for basis, words, total in (("net", "R net of costs", 0.4), ("gross", "R gross", 1.0)):
        fig = plot_cumulative_r(decisions, basis=basis)
        ax = fig.axes[0]
        assert words in ax.get_ylabel() and words in ax.get_title()
        assert ax.lines[1].get_label().startswith("all signals")
        assert ax.lines[1].get_ydata()[-1] == pytest.approx(total)
        plt.close(fig)
    trades = decisions.rename(columns={S.RR_IF_EXECUTED: S.REALIZED_RR}).assign(
        **{S.OUTCOME: ["win", "loss", "loss", "win"], "cost_r": [0.1, 0.2, 0.1, 0.2]}
    )
    trades.loc[~trades[S.WAS_EXECUTED], S.REALIZED_RR] = [-1.0, 1.0]  # phantoms: gross
    fig = plot_cumulative_r_by_decision(cumulative_r(trades, basis="net"))
    assert "R net of costs" in fig.axes[0].get_ylabel()
    plt.close(fig)
    mixed = pd.concat([cumulative_r(trades, basis="net"), cumulative_r(trades, basis="gross")])
    with pytest.raises(ValueError, match="mixes cost bases"):
        plot_cumulative_r_by_decision(mixed)
