"""Explorer, thresholds and replay notebooks (papermill), the explorer's functions and widget,
and the threshold and replay figures drawn on small frames."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from support import code_outputs, execute_notebook  # noqa: E402

from research import schema as S  # noqa: E402
from research import widgets  # noqa: E402
from research.analysis import explorer as E  # noqa: E402
from research.scoring import EnsembleScorer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
NOTEBOOKS = REPO / "notebooks"
T0 = pd.Timestamp("2024-03-04", tz="UTC")


# --------------------------------------------------------------------------------------------
# notebooks, executed by papermill
# --------------------------------------------------------------------------------------------
def _execute(tmp_path: Path, name: str, **parameters) -> nbformat.NotebookNode:
    return execute_notebook(NOTEBOOKS / f"{name}.ipynb", tmp_path / f"{name}.ipynb", parameters)


_outputs = code_outputs


def _check_clean_run(nb, n_images: int) -> list[dict]:
    outputs = _outputs(nb)
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == n_images, f"expected {n_images} figures, got {len(images)}"
    return outputs


def _tables(outputs, needle: str) -> list[str]:
    return [
        o["data"]["text/plain"]
        for o in outputs
        if o.output_type == "execute_result" and needle in o.get("data", {}).get("text/plain", "")
    ]


def _stdout(outputs) -> str:
    return "".join(o["text"] for o in outputs if o.output_type == "stream" and o.name == "stdout")


def _set_counts(table_text: str) -> dict[str, int]:
    """``signals`` of each row of a printed threshold table (first number after the set)."""
    return {
        m[1]: int(m[2])
        for m in re.finditer(r"^(executed|phantom|all)\s+(\d+)\s", table_text, flags=re.MULTILINE)
    }


def _check_explorer(nb) -> int:
    outputs = _check_clean_run(nb, n_images=3)  # split, win-rate sweep, mean-R sweep
    scored = int(re.search(r"([\d,]+) closed signals with a", _stdout(outputs))[1].replace(",", ""))
    tables = _tables(outputs, "wr_low")
    assert len(tables) == 1, "expected one threshold table"
    counts = _set_counts(tables[0])
    assert counts["executed"] + counts["phantom"] == counts["all"] == scored, counts
    widgets = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widgets) == 1 and "SignalExplorer" in widgets[0]["data"]["text/plain"]
    return scored


def test_explorer_notebook_on_synthetic_market(tmp_path):
    nb = _execute(
        tmp_path, "02_explorer", n_bars=4000, seed=1, n_estimators=15, gb_max_iter=15, threshold=40
    )
    assert _check_explorer(nb) > 100


def test_explorer_notebook_on_real_data_scores_every_closed_signal(tmp_path):
    from research.pipeline import load_market, run_signals_and_phantoms

    symbol = "BTC_USDT_1h"
    assert (DATA_DIR / f"{symbol}.csv.gz").is_file(), f"real data expected in {DATA_DIR}"
    nb = _execute(
        tmp_path, "02_explorer", data_dir=str(DATA_DIR), symbols=[symbol], score_source="heuristic"
    )
    study = run_signals_and_phantoms(load_market(DATA_DIR, symbols=[symbol]), progress=False)
    closed = int((~study.outcomes[S.CENSORED]).sum())
    assert _check_explorer(nb) == closed  # the heuristic scores every closed signal


def test_thresholds_notebook_on_synthetic_market(tmp_path):
    nb = _execute(tmp_path, "06_thresholds", n_bars=4000, seed=1, n_estimators=15, gb_max_iter=15)
    # bucket heatmap, EV curves (seed, rigorous), seed vs rigorous per bucket
    outputs = _check_clean_run(nb, n_images=4)
    buckets = _tables(outputs, "note")
    html = [
        h
        for o in outputs
        if (h := o.get("data", {}).get("text/html", ""))
        and all(f"<th>{c}</th>" in h for c in ("p_min", "weight", "note"))
    ]
    assert len(html) == 1, "expected one bucket table (seed rule)"
    assert set(re.findall(r"<th>(\w+\|\w+)</th>", html[0])) == {
        f"{s}|{v}" for s in S.SESSIONS for v in S.VOLATILITY_REGIMES
    }
    ev = _tables(outputs, "EV threshold")
    assert len(ev) == 1 and "pnl_percent" in ev[0] and re.search(r"^unit\s.*\bR\b", ev[0], re.M)
    side_by_side = [t for t in buckets if "seed" in t and "rigorous" in t]
    assert len(side_by_side) == 1


def test_replay_notebook_on_synthetic_market(tmp_path):
    nb = _execute(
        tmp_path,
        "07_replay",
        n_bars=3000,
        seed=2,
        strategies=["trend", "scalp"],
        retrain_every=120,
        n_estimators=15,
        gb_max_iter=15,
        n_boot=200,
    )
    # decisions, cumulative R, uplift, retrain timeline, threshold timeline
    outputs = _check_clean_run(nb, n_images=5)
    summary = _tables(outputs, "win_rate")
    assert summary and all(s in summary[0] for s in ("executed", "phantoms", "all"))
    uplift = _tables(outputs, "ci_low")
    assert len(uplift) == 1 and re.search(r"^all\s", uplift[0], flags=re.MULTILINE)
    retrains = _tables(outputs, "train_until")
    assert len(retrains) == 1 and re.search(r"^\d+\s+scalp\s+1\s", retrains[0], re.MULTILINE)
    assert _tables(outputs, "data_until"), "threshold refits table missing"
    assert _tables(outputs, "mean_threshold"), "decisions by model version table missing"


def test_replay_notebook_on_a_users_signals_file(tmp_path):
    from external_files import write_signals

    from research.pipeline import load_market

    # a user's file of signals on the notebook's own synthetic market (same n_bars and seed)
    written = write_signals(tmp_path / "signals.csv", load_market(n_bars=3000, seed=2))
    nb = _execute(
        tmp_path,
        "07_replay",
        n_bars=3000,
        seed=2,
        signals_path=str(tmp_path / "signals.csv"),
        retrain_every=120,
        n_estimators=15,
        gb_max_iter=15,
        n_boot=200,
    )
    outputs = _check_clean_run(nb, n_images=5)
    assert f"{len(written):,} signals of ['mybot'] on 3 symbol(s)" in _stdout(outputs)
    uplift = _tables(outputs, "ci_low")
    assert len(uplift) == 1 and re.search(r"^mybot\s", uplift[0], flags=re.MULTILINE)
    retrains = _tables(outputs, "train_until")
    assert len(retrains) == 1 and re.search(r"^\d+\s+mybot\s+1\s", retrains[0], re.MULTILINE)


# --------------------------------------------------------------------------------------------
# the explorer's pure functions
# --------------------------------------------------------------------------------------------
def _frame(scores, outcomes, rr, *, symbols=None, strategies=None, days=None) -> pd.DataFrame:
    n = len(scores)
    times = T0 + pd.to_timedelta(days if days is not None else np.zeros(n), unit="D")
    return pd.DataFrame(
        {
            S.SIGNAL_ID: [f"s{i}" for i in range(n)],
            S.SYMBOL: symbols or ["AAA"] * n,
            S.STRATEGY: strategies or ["scalp"] * n,
            S.SIGNAL_TIME: times,
            S.EXIT_TIME: times + pd.Timedelta("1h"),
            S.ML_SCORE: np.asarray(scores, dtype=float),
            S.OUTCOME: list(outcomes),
            S.REALIZED_RR: np.asarray(rr, dtype=float),
        }
    )


def test_threshold_table_hand_computed():
    frame = _frame(
        [10, 50, 70, 80, 90], ["win", "loss", "win", "timeout", "loss"], [2.0, -1.0, 2.0, 0.1, -1.0]
    )
    table = E.threshold_table(frame, 70)
    assert list(table.index) == ["executed", "phantom", "all"]
    ex, ph, al = (table.loc[k] for k in ("executed", "phantom", "all"))
    # executed: scores 70 (ties execute), 80, 90 -> one win (a timeout is not a win)
    assert (ex["signals"], ex["wins"]) == (3, 1) and (ph["signals"], ph["wins"]) == (2, 1)
    assert (al["signals"], al["wins"]) == (5, 2)
    assert ex["win_rate"] == pytest.approx(1 / 3) and ph["win_rate"] == pytest.approx(0.5)
    assert ex["mean_r"] == pytest.approx(1.1 / 3) and ex["total_r"] == pytest.approx(1.1)
    assert ph["total_r"] == pytest.approx(1.0) and al["total_r"] == pytest.approx(2.1)
    # Wilson 95 % interval of 1 win in 3, by hand: centre 0.4269, half-width 0.3654
    assert ex["wr_low"] == pytest.approx(0.0615, abs=1e-3)
    assert ex["wr_high"] == pytest.approx(0.7923, abs=1e-3)
    # mean R interval: sample sd of (2, 0.1, -1) is 1.5177; 1.96 * sd / sqrt(3) = 1.7175
    assert ex["r_high"] - ex["mean_r"] == pytest.approx(1.7175, abs=1e-3)


def test_threshold_table_empty_side_and_bad_input():
    frame = _frame([10, 20], ["win", "loss"], [1.0, -1.0])
    table = E.threshold_table(frame, 100)
    assert table.at["executed", "signals"] == 0 and np.isnan(table.at["executed", "win_rate"])
    assert table.at["executed", "total_r"] == 0.0
    with pytest.raises(ValueError, match="Fix:"):
        E.threshold_table(frame, 170)
    with pytest.raises(S.SchemaError, match="Fix:"):
        E.threshold_table(frame.assign(**{S.ML_SCORE: [np.nan, 1.0]}), 50)


_rows = st.lists(
    st.tuples(st.floats(0, 100), st.sampled_from(S.OUTCOMES), st.floats(-1.5, 3.0)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(rows=_rows, thresholds=st.lists(st.floats(0, 100), min_size=2, max_size=6))
def test_threshold_table_properties(rows, thresholds):
    scores, outcomes, rr = zip(*rows, strict=True)
    frame = _frame(scores, outcomes, rr)
    executed = []
    for t in sorted(thresholds):
        table = E.threshold_table(frame, t)
        n = table["signals"]
        assert n["executed"] + n["phantom"] == n["all"] == len(frame)
        assert table.at["all", "total_r"] == pytest.approx(
            table.at["executed", "total_r"] + table.at["phantom", "total_r"], abs=1e-9
        )
        filled = table.loc[n > 0]
        assert ((filled["win_rate"] >= 0) & (filled["win_rate"] <= 1)).all()
        assert (filled["wr_low"] <= filled["win_rate"] + 1e-12).all()
        assert (filled["win_rate"] <= filled["wr_high"] + 1e-12).all()
        executed.append(int(n["executed"]))
    assert executed == sorted(executed, reverse=True), "executed count must not rise with T"


def test_threshold_sweep_matches_table():
    frame = _frame(
        [5, 35, 55, 75, 95, 60],
        ["win", "loss", "win", "loss", "win", "timeout"],
        [2.0, -1.0, 2.0, -1.0, 2.0, 0.2],
    )
    sweep = E.threshold_sweep(frame, [0, 50, 100])
    assert len(sweep) == 9 and set(sweep["set"]) == set(E.SETS)
    at50 = sweep.loc[sweep["threshold"] == 50].set_index("set")[list(E.TABLE_COLUMNS)]
    pd.testing.assert_frame_equal(at50, E.threshold_table(frame, 50), check_names=False)
    executed = sweep.loc[sweep["set"] == "executed", "signals"].tolist()
    assert executed == [6, 4, 0]


def test_select_filters_symbol_strategy_and_inclusive_days():
    frame = _frame(
        [50] * 6,
        ["win"] * 6,
        [1.0] * 6,
        symbols=["A", "A", "B", "B", "A", "B"],
        strategies=["trend", "scalp"] * 3,
        days=[0, 1, 1, 2, 3.9, 4],
    )
    assert len(E.select(frame, symbols="all")) == 6
    assert set(E.select(frame, symbols="A")[S.SYMBOL]) == {"A"}
    assert len(E.select(frame, symbols=["A"], strategies="scalp")) == 1
    days = E.select(frame, start="2024-03-05", end="2024-03-07")  # T0 + 1 .. T0 + 3 (whole day)
    assert days[S.SIGNAL_ID].tolist() == ["s1", "s2", "s3", "s4"]


@pytest.fixture(scope="module")
def study():
    from research.pipeline import load_market, run_signals_and_phantoms

    return run_signals_and_phantoms(
        load_market(None, n_bars=3000, seed=3), ("trend", "scalp"), progress=False
    )


def test_heuristic_and_qscore_sources(study):
    from research.scoring import heuristic_scores

    h = E.signal_scores(study.signals, study.features, study.outcomes, source="heuristic")
    assert list(h.index) == list(study.signals[S.SIGNAL_ID]) and h.name == S.ML_SCORE
    np.testing.assert_allclose(h.to_numpy(), heuristic_scores(study.features.loc[h.index]))
    q = E.signal_scores(study.signals, study.features, study.outcomes, source="qscore")
    np.testing.assert_allclose(q.to_numpy(), study.signals[S.QSCORE].to_numpy())
    with pytest.raises(ValueError, match="Fix:"):
        E.signal_scores(study.signals, study.features, study.outcomes, source="in_sample")


def test_walk_forward_scores_never_see_their_own_outcome(study):
    trend = study.signals.loc[study.signals[S.STRATEGY] == "trend"]
    model = EnsembleScorer(n_estimators=10, gb_max_iter=10, nn_enabled=False, n_splits=3)
    kw = {"source": "walk_forward", "n_splits": 3, "min_train_size": 40, "model": model}
    scores = E.signal_scores(trend, study.features, study.outcomes, **kw)
    scored = scores.notna().to_numpy()
    assert 0 < scored.sum() < len(scores), "the first walk-forward block must stay unscored"
    assert ((scores[scored] >= 0) & (scores[scored] <= 100)).all()
    # The last block is only ever a test block: flipping its labels cannot move its scores.
    closed = study.outcomes.set_index(S.SIGNAL_ID).loc[trend[S.SIGNAL_ID]]
    closed = closed.loc[~closed[S.CENSORED]]
    last = closed.index[-len(closed) // 4 :]
    flipped = study.outcomes.copy()
    rows = flipped[S.SIGNAL_ID].isin(last)
    flipped.loc[rows, S.OUTCOME] = np.where(flipped.loc[rows, S.OUTCOME] == "win", "loss", "win")
    again = E.signal_scores(trend, study.features, flipped, **kw)
    np.testing.assert_allclose(again.loc[last].to_numpy(), scores.loc[last].to_numpy())
    # ... while flipping the first block's labels (training rows of every fold) does.
    first = closed.index[: len(closed) // 4]
    early = study.outcomes.copy()
    rows = early[S.SIGNAL_ID].isin(first)
    early.loc[rows, S.OUTCOME] = np.where(early.loc[rows, S.OUTCOME] == "win", "loss", "win")
    moved = E.signal_scores(trend, study.features, early, **kw)
    assert not np.allclose(moved.loc[last].to_numpy(), scores.loc[last].to_numpy())


def test_explorer_frame_joins_and_drops_unscored_and_censored(study):
    scores = E.signal_scores(study.signals, study.features, study.outcomes, source="heuristic")
    scores.iloc[:5] = np.nan
    frame = E.explorer_frame(study.signals, study.outcomes, scores, study.features)
    censored = set(study.outcomes.loc[study.outcomes[S.CENSORED], S.SIGNAL_ID])
    expected = set(study.signals[S.SIGNAL_ID]) - censored - set(scores.index[:5])
    assert set(frame[S.SIGNAL_ID]) == expected and frame[S.ML_SCORE].notna().all()
    assert frame[S.SIGNAL_TIME].is_monotonic_increasing
    assert {S.SESSION, S.VOLATILITY_REGIME} <= set(frame.columns)
    row = frame.iloc[0]
    assert row[S.ML_SCORE] == scores[row[S.SIGNAL_ID]]
    trades = E.as_qscore_trades(frame)
    np.testing.assert_array_equal(trades[S.QSCORE], frame[S.ML_SCORE])
    only = E.explorer_frame(study.signals, study.outcomes, scores, strategies="trend")
    assert set(only[S.STRATEGY]) == {"trend"}
    with pytest.raises(ValueError, match="Fix:"):
        E.explorer_frame(study.signals, study.outcomes, scores, symbols=["NOPE"])


# --------------------------------------------------------------------------------------------
# the widget, driven from Python (no browser)
# --------------------------------------------------------------------------------------------
def _widget_frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 120
    won = rng.random(n) < 0.4
    return _frame(
        rng.uniform(0, 100, n),
        np.where(won, "win", "loss"),
        np.where(won, 2.0, -1.0),
        symbols=list(rng.choice(["AAA", "BBB"], n)),
        strategies=list(rng.choice(["trend", "scalp"], n)),
        days=np.sort(rng.uniform(0, 10, n)),
    )


def _html(widget) -> str:
    return "".join(o["data"].get("text/html", "") for o in widget.output.outputs)


def test_signal_explorer_redraws_on_every_control():
    import ipywidgets

    frame = _widget_frame()
    w = widgets.signal_explorer(frame, threshold=70)
    assert isinstance(w, ipywidgets.Widget)
    pd.testing.assert_frame_equal(w.table, E.threshold_table(frame, 70))
    kinds = [set(o["data"]) for o in w.output.outputs]
    assert len(kinds) == 2 and "text/html" in kinds[0] and "image/png" in kinds[1]
    before = _html(w)

    w.threshold.value = 0
    assert w.table.at["executed", "signals"] == len(frame) and _html(w) != before
    assert f"<b>{len(frame)}</b> executed" in w.status.value
    w.threshold.value = 100
    assert w.table.at["executed", "signals"] == int((frame[S.ML_SCORE] >= 100).sum())

    w.symbol.value = "BBB"
    assert set(w.selection[S.SYMBOL]) == {"BBB"}
    assert w.table.at["all", "signals"] == int((frame[S.SYMBOL] == "BBB").sum())
    w.strategy.value = "trend"
    expected = frame.loc[(frame[S.SYMBOL] == "BBB") & (frame[S.STRATEGY] == "trend")]
    assert w.table.at["all", "signals"] == len(expected)

    w.symbol.value, w.strategy.value = E.ALL, E.ALL
    day = w.dates.options[3][1]
    w.dates.value = (day, day)
    assert (w.selection[S.SIGNAL_TIME].dt.floor("D") == day).all()
    assert w.table.at["all", "signals"] == int((frame[S.SIGNAL_TIME].dt.floor("D") == day).sum())
    assert len(w.output.outputs) == 2, "a redraw replaces the output, it does not append"


def test_signal_explorer_refuses_an_empty_frame():
    with pytest.raises(ValueError, match="Fix:"):
        widgets.signal_explorer(_widget_frame().iloc[:0])


# --------------------------------------------------------------------------------------------
# figures on small frames
# --------------------------------------------------------------------------------------------
def _drawn(fig, ax_index: int = 0) -> None:
    try:
        assert isinstance(fig, Figure)
        ax = fig.axes[ax_index]
        assert [*ax.lines, *ax.patches, *ax.collections, *ax.texts], "nothing drawn"
    finally:
        plt.close(fig)


def test_threshold_split_and_sweep_plots():
    from research.plots import plot_threshold_split, plot_threshold_sweep

    frame = _widget_frame()
    fig = plot_threshold_split(frame, 60)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    n_exec = int((frame[S.ML_SCORE] >= 60).sum())
    assert any(label.startswith(f"executed (n={n_exec},") for label in labels), labels
    _drawn(fig)
    sweep = E.threshold_sweep(frame)
    for metric in ("win_rate", "mean_r"):
        fig, ax = plt.subplots()
        assert plot_threshold_sweep(sweep, metric=metric, ax=ax) is fig
        assert len(ax.lines) == 4  # executed, phantom, all, the marked threshold
        _drawn(fig)
    with pytest.raises(ValueError, match="metric"):
        plot_threshold_sweep(sweep, metric="sharpe")


@pytest.fixture(scope="module")
def qscore_trades():
    rng = np.random.default_rng(5)
    n = 600
    q = rng.uniform(0, 100, n)
    won = rng.random(n) < 0.2 + 0.5 * q / 100
    return pd.DataFrame(
        {
            S.QSCORE: q,
            S.OUTCOME: np.where(won, "win", "loss"),
            S.SESSION: rng.choice(S.SESSIONS, n, p=[0.5, 0.3, 0.15, 0.05]),
            S.VOLATILITY_REGIME: rng.choice(S.VOLATILITY_REGIMES, n, p=[0.4, 0.4, 0.15, 0.05]),
            S.PNL_PERCENT: np.where(won, 1.0, -0.6),
            S.REALIZED_RR: np.where(won, 1.6, -1.0),
        }
    )


def test_threshold_bucket_curve_and_rule_plots(qscore_trades):
    from research.plots import plot_bucket_thresholds, plot_qscore_curves, plot_threshold_rules
    from research.thresholds import QscoreAdapter, ev_threshold

    seed = QscoreAdapter(rule="seed").fit(qscore_trades)
    rigorous = QscoreAdapter(rule="rigorous").fit(qscore_trades)
    fig = plot_bucket_thresholds(seed.bucket_stats_)
    texts = [t.get_text() for t in fig.axes[0].texts]
    with_own = seed.bucket_stats_["threshold"].notna()
    assert sum("n=" in t and "w=" in t for t in texts) == with_own.sum()
    assert any("fewer than 20" in t or "no trades" in t for t in texts)  # rare buckets say why
    _drawn(fig)

    p_min = ev_threshold(qscore_trades).p_min
    fig = plot_qscore_curves(seed, p_min=p_min)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "pooled" in labels and any(label.startswith("break-even") for label in labels)
    assert len(fig.axes[0].lines) == len(seed.curves_) + 4  # buckets, pooled, diagonal, p_min x2
    _drawn(fig)
    with pytest.raises(ValueError, match="Fix:"):
        plot_qscore_curves(QscoreAdapter.from_dict(seed.to_dict()))

    fig = plot_threshold_rules(seed.bucket_stats_, rigorous.bucket_stats_, floor=60, ceiling=95)
    ax = fig.axes[0]
    assert len(ax.get_xticklabels()) == 16
    seed_pts, rig_pts = (c.get_offsets() for c in ax.collections[-2:])
    assert np.isfinite(np.asarray(seed_pts)[:, 1]).sum() == with_own.sum()
    assert (
        np.isfinite(np.asarray(rig_pts)[:, 1]).sum()
        == rigorous.bucket_stats_["threshold"].notna().sum()
    )
    _drawn(fig)


@pytest.fixture(scope="module")
def replay_frames():
    rng = np.random.default_rng(6)
    n = 60
    times = T0 + pd.to_timedelta(np.sort(rng.uniform(0, 20, n)), unit="D")
    executed = rng.random(n) < 0.4
    rr = rng.choice([2.0, -1.0], n)
    decisions = pd.DataFrame(
        {
            S.SIGNAL_ID: [f"s{i}" for i in range(n)],
            S.STRATEGY: rng.choice(["trend", "scalp"], n),
            S.SIGNAL_TIME: times,
            S.EXIT_TIME: times + pd.Timedelta("3h"),
            S.WAS_EXECUTED: executed,
            S.PASSED: executed,
            S.EXPLORED: False,
            S.CENSORED: np.arange(n) >= n - 2,
            S.REALIZED_RR: rr,
            S.RR_IF_EXECUTED: rr - 0.05,
            S.THRESHOLD: np.where(np.arange(n) < 20, 70.0, rng.uniform(60, 95, n)),
            S.THRESHOLD_SOURCE: np.where(
                np.arange(n) < 20, "static", rng.choice(["bucket", "ev"], n)
            ),
            S.MODEL_VERSION: np.arange(n) // 20,
        }
    )
    retrains = pd.DataFrame(
        {
            "strategy": ["scalp", "scalp", "trend"],
            S.MODEL_VERSION: [1, 2, 1],
            "at": T0 + pd.to_timedelta([5, 12, 9], unit="D"),
            "n_trades": [50, 100, 50],
            "train_until": T0 + pd.to_timedelta([5, 12, 9], unit="D"),
        }
    )
    fits = retrains.rename(columns={S.MODEL_VERSION: S.THRESHOLD_VERSION}).assign(buckets=[2, 5, 1])
    uplift = pd.DataFrame(
        {
            "uplift": [0.2, np.nan, -0.1],
            "ci_low": [0.05, np.nan, -0.4],
            "ci_high": [0.35, np.nan, 0.2],
            "n": [40, 10, 50],
            "n_passed": [12, 0, 12],
        },
        index=pd.Index(["scalp", "range", "all"], name="strategy"),
    )
    return decisions, retrains, fits, uplift


def test_replay_plots(replay_frames):
    from research.plots import (
        plot_cumulative_r,
        plot_decisions_over_time,
        plot_retrain_timeline,
        plot_threshold_timeline,
        plot_uplift,
    )

    decisions, retrains, fits, uplift = replay_frames
    fig = plot_decisions_over_time(decisions)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert sum(heights) == len(decisions)  # every signal in exactly one stacked bar
    _drawn(fig)

    fig = plot_cumulative_r(decisions, by=S.STRATEGY)
    ax = fig.axes[0]
    closed = decisions.loc[~decisions[S.CENSORED]]
    ends = {line.get_label().split(" (")[0]: line.get_ydata()[-1] for line in ax.lines[:3]}
    assert ends["all signals"] == pytest.approx(closed[S.RR_IF_EXECUTED].sum())
    assert ends["executed"] + ends["phantoms"] == pytest.approx(ends["all signals"])
    assert len(ax.lines) == 3 + 2 + 1  # three sets, one executed line per strategy, zero line
    _drawn(fig)

    fig = plot_uplift(uplift)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][1] == "range (0/10 passed)"
    assert any(t.get_text() == "no signal passed" for t in ax.texts)
    _drawn(fig)

    fig = plot_retrain_timeline(retrains, fits)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["trend", "scalp"]
    assert len(ax.collections[0].get_offsets()) == 3 and len(ax.collections[1].get_offsets()) == 3
    assert {"v1\n50", "v2\n100", "5b"} <= {t.get_text() for t in ax.texts}
    _drawn(fig)

    fig = plot_threshold_timeline(decisions)
    points = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert points == len(decisions)
    _drawn(fig)
