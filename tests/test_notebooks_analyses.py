"""Analysis notebooks 03-05 run end to end (papermill) and their new figures draw."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import papermill  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from support import code_outputs, execute_notebook, planted_gate_frame  # noqa: E402

from research import schema as S  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
NOTEBOOKS = REPO / "notebooks"

# small sizes: each run stays well under the ~40 s budget of a notebook test
SMALL_CALIBRATION = {"n_bars": 5000, "n_splits": 3, "n_estimators": 30, "gb_max_iter": 30}
SMALL_GATES = {"n_bars": 20_000, "seed": 1, "n_perm": 200}
SMALL_IMPORTANCE = {
    "n_bars": 5000,
    "n_splits": 3,
    "n_repeats": 1,
    "n_estimators": 20,
    "n_checks": 3,
}


def _execute(tmp_path: Path, name: str, **parameters) -> nbformat.NotebookNode:
    return execute_notebook(NOTEBOOKS / f"{name}.ipynb", tmp_path / f"{name}.ipynb", parameters)


_outputs = code_outputs


def _checked(nb: nbformat.NotebookNode, n_images: int) -> tuple[str, list[str]]:
    """Assert no error and ``n_images`` PNG figures; return (all stream text, result texts)."""
    outputs = _outputs(nb)
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == n_images, f"{len(images)} figures rendered, expected {n_images}"
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    results = [o["data"]["text/plain"] for o in outputs if o.output_type == "execute_result"]
    return streams, results


def _table(results: list[str], *columns: str, absent: str | None = None) -> str:
    """The one displayed table whose header names every column in ``columns`` (not ``absent``)."""
    hits = [r for r in results if all(c in r for c in columns) and not (absent and absent in r)]
    assert len(hits) == 1, f"expected one table with {columns}, found {len(hits)}"
    return hits[0]


def _line(streams: str, prefix: str) -> str:
    found = re.search(rf"^{re.escape(prefix)}(.*)$", streams, flags=re.MULTILINE)
    assert found, f"no line starting {prefix!r} in:\n{streams}"
    return found.group(1).strip()


# --------------------------------------------------------------------------------------------
# the notebooks, executed
# --------------------------------------------------------------------------------------------
def test_calibration_notebook_shows_in_sample_overconfidence(tmp_path):
    nb = _execute(tmp_path, "03_calibration", **SMALL_CALIBRATION)
    streams, results = _checked(nb, n_images=3)  # reliability, per-fold metrics, buckets
    assert "closed scalp trades" in streams
    means = _table(results, "auc", "brier", "log_loss", "ece", absent="fold")
    rows = {
        m.group(1): [float(v) for v in m.group(2).split()]
        for m in re.finditer(r"^(in_sample|oof) +([-\d. ]+)$", means, re.MULTILINE)
    }
    assert set(rows) == {"in_sample", "oof"}, means
    auc, brier, _, ece = zip(*(rows["in_sample"], rows["oof"]), strict=True)
    # the seed's in-sample isotonic is judged on later folds: far worse calibrated
    assert ece[1] < 0.1 < ece[0] and brier[1] < brier[0], means
    assert all(0.3 < a < 0.8 for a in auc), means
    by_fold = _table(results, "fold", "rule", "ece")
    assert len(re.findall(r"^\d+ +\d+ +(?:in_sample|oof) ", by_fold, re.MULTILINE)) == 2 * 3


def test_gates_notebook_confirms_the_planted_volume_gate(tmp_path):
    nb = _execute(tmp_path, "04_gates", **SMALL_GATES)
    streams, results = _checked(nb, n_images=3)  # deltas, synergy, deltas vs null
    assert "vol_200" in _line(streams, "confirmed gates:").split(", ")
    ranking = _table(results, "seed_rank", "delta", "q_value", "conf_delta", "confirmed")
    assert re.search(r"^vol_200\s", ranking, re.MULTILINE)
    assert _table(results, "seed_says", "why")
    assert _table(results, "observed_max_abs_delta", "p95")


def test_gates_notebook_confirms_nothing_on_the_null_market(tmp_path):
    nb = _execute(tmp_path, "04_gates", market="null", **SMALL_GATES)
    streams, results = _checked(nb, n_images=3)
    assert _line(streams, "confirmed gates:") == "none"
    assert _line(streams, "confirmed combinations:").startswith("0;")
    assert "No gate survives FDR and the later period" in streams
    recs = _table(results, "seed_says", "why")
    assert re.search(r"\benable +True\b", recs), "the seed still recommends gates on noise"


def test_gates_notebook_runs_on_real_data(tmp_path):
    assert (DATA_DIR / "BTC_USDT_5m.csv.gz").is_file(), f"real data expected in {DATA_DIR}"
    nb = _execute(tmp_path, "04_gates", data_dir=str(DATA_DIR), symbols=["BTC_USDT_5m"], n_perm=100)
    streams, results = _checked(nb, n_images=3)
    assert streams.startswith("BTC_USDT_5m: 65,7"), streams[:80]
    assert _line(streams, "confirmed gates:")  # a verdict is printed, whatever it is
    assert _table(results, "seed_rank", "q_value", "confirmed")


def test_unknown_market_fails_with_a_fix(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as info:
        _execute(tmp_path, "04_gates", market="noise", n_bars=2000)
    assert info.value.ename == "ValueError"
    assert "market='noise'" in str(info.value) and "Fix:" in str(info.value)


def test_importance_notebook_flags_lifecycle_features_and_no_look_ahead(tmp_path):
    nb = _execute(tmp_path, "05_importance", **SMALL_IMPORTANCE)
    # MDI evolution, permutation vs probe, MDI vs permutation, leakage AUC
    streams, results = _checked(nb, n_images=4)
    stability = _table(results, "spearman", "kendall", "top5_overlap")
    pairs = re.findall(r"^\d+ +(\S+) +(\S+) +-?\d", stability, re.MULTILINE)
    assert pairs == [("30", "100"), ("100", "300"), ("300", "all")], stability
    assert "noise probe: drop in AUC" in streams
    assert "__noise__" not in _table(results, "mdi", "permutation", "mdi_rank")
    flagged = _line(streams, "flagged:").split(", ")
    assert {"tp1_hit", "max_favorable_r"} <= set(flagged), flagged
    assert _line(streams, "entry features changed by rewriting the future:").startswith("none")
    variants = _table(results, "auc_in", "auc_oos", "auc_gap")
    oos = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(entry\S*) +\S+ +\S+ +(\S+)", variants, re.MULTILINE)
    }
    assert oos["entry+all_lifecycle"] > oos["entry"] + 0.2, variants


# --------------------------------------------------------------------------------------------
# the new figures, drawn on small frames
# --------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _by_fold() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {
            "fold": k,
            "rule": rule,
            "auc": 0.55 + 0.01 * k,
            "brier": b + rng.normal(0, 0.01),
            "log_loss": 4 * b,
            "ece": e,
        }
        for k in range(3)
        for rule, b, e in (("in_sample", 0.42, 0.40), ("oof", 0.24, 0.02))
    ]
    return pd.DataFrame(rows)


def test_fold_metrics_one_panel_per_metric_one_line_per_rule():
    from research.plots import plot_fold_metrics

    fig = plot_fold_metrics(_by_fold())
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    for ax, metric in zip(fig.axes, ("auc", "brier", "log_loss", "ece"), strict=True):
        data = [line for line in ax.lines if len(line.get_xdata()) == 3]
        assert len(data) == 2, metric  # in_sample and oof
        assert ax.get_title() == metric
    ece = [line.get_ydata() for line in fig.axes[3].lines if len(line.get_xdata()) == 3]
    assert sorted(float(np.mean(y)) for y in ece) == pytest.approx([0.02, 0.40])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["in_sample", "oof"]  # the seed's rule first, whatever the row order


def test_fold_metrics_on_given_axes_and_bad_axes():
    from research.plots import plot_fold_metrics

    fig, axes = plt.subplots(1, 2)
    assert plot_fold_metrics(_by_fold(), metrics=("ece", "auc"), ax=axes) is fig
    assert axes[1].get_title() == "auc"
    with pytest.raises(ValueError, match="2 axes given for 4 panels. Fix"):
        plot_fold_metrics(_by_fold(), ax=axes)
    with pytest.raises(S.SchemaError, match="missing"):
        plot_fold_metrics(_by_fold().drop(columns="ece"))


def _by_bucket() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rule": ["in_sample", "in_sample", "oof", "oof"],
            "bucket": ["asia|low", "us|high", "asia|low", "us|high"],
            "n": [40, 55, 40, 55],
            "ece": [0.41, 0.47, 0.03, 0.12],
        }
    )


def test_bucket_grid_places_each_bucket_and_keeps_all_sixteen():
    from research.plots import bucket_grid

    grid = bucket_grid(_by_bucket(), "oof")
    assert list(grid.index) == list(S.SESSIONS)
    assert list(grid.columns) == list(S.VOLATILITY_REGIMES)
    assert grid.loc["asia", "low"] == 0.03 and grid.loc["us", "high"] == 0.12
    assert int(grid.notna().sum().sum()) == 2
    own = bucket_grid(
        pd.DataFrame({"rule": ["oof"], "bucket": ["night|calm"], "ece": [0.2]}), "oof"
    )
    assert own.loc["night", "calm"] == 0.2 and own.shape == (5, 5)


def test_bucket_calibration_shares_one_colour_scale():
    from research.plots import plot_bucket_calibration

    fig = plot_bucket_calibration(_by_bucket())
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["in_sample: ece by bucket", "oof: ece by bucket"]
    limits = {tuple(ax.collections[0].get_clim()) for ax in panels}
    assert limits == {(0.0, 0.47)}
    texts = [t.get_text() for t in panels[1].texts]
    assert sorted(texts) == ["0.03\nn=40", "0.12\nn=55"]  # blank buckets carry no label


def _importance_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    feats = ["volume_ratio", "volume_zscore", "rsi_14", "hour"]
    perm = pd.DataFrame(
        {
            "mean": [0.02, 0.006, 0.0005, -0.001, 0.001],
            "se": [0.004, 0.002, 0.001, 0.001, 0.001],
            "beats_probe": [True, True, False, False, False],
        },
        index=pd.Index([*feats[:3], "__noise__", "hour"], name="feature"),
    )
    evo = pd.DataFrame({30: [0.1, 0.2, 0.3, 0.4], "all": [0.4, 0.3, 0.2, 0.1]}, index=feats)
    return perm, evo


def test_importance_pairs_ranks_both_measures():
    from research.plots import importance_pairs

    perm, evo = _importance_frames()
    pairs = importance_pairs(perm, evo)
    assert list(pairs.index) == ["volume_ratio", "volume_zscore", "hour", "rsi_14"]
    assert pairs.loc["volume_ratio", ["mdi_rank", "permutation_rank"]].tolist() == [1, 1]
    assert pairs.loc["hour", "mdi"] == 0.1 and pairs.loc["hour", "permutation_rank"] == 3
    assert importance_pairs(perm, evo, size=30).loc["hour", "mdi_rank"] == 1
    with pytest.raises(ValueError, match="size 300 .*Fix"):
        importance_pairs(perm, evo, size=300)


def test_importance_comparison_scatter_probe_and_labels():
    from research.plots import plot_importance_comparison

    perm, evo = _importance_frames()
    fig, ax = plt.subplots()
    assert plot_importance_comparison(perm, evo, label_top=1, ax=ax) is fig
    probe = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(probe) == 1 and probe[0].get_ydata()[0] == pytest.approx(-0.001)
    equal = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert equal[0].get_xdata()[0] == pytest.approx(0.25)  # 1 / 4 features
    assert sorted(t.get_text() for t in ax.texts) == ["volume_ratio"]  # top 1 of both
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "beats the probe (2)" in legend and "does not (2)" in legend


def test_leakage_auc_entry_on_top_and_flags_marked():
    from research.plots import plot_leakage_auc

    variants = pd.DataFrame(
        {
            "auc_in": [0.99, 1.0, 0.99, 0.98],
            "auc_oos": [0.58, 0.99, 0.93, 0.57],
        },
        index=pd.Index(
            ["entry+all_lifecycle", "entry", "entry+tp1_hit", "entry+ambiguous_bar"], name="variant"
        ),
    )
    fig = plot_leakage_auc(variants, flagged=["tp1_hit"])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "entry" and "entry+tp1_hit ⚠" in labels
    assert "entry+ambiguous_bar" in labels
    flag = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert flag[0].get_xdata()[0] == pytest.approx(0.99 + 0.05)  # entry's OOS AUC + max_jump
    assert len(ax.collections[0].get_segments()) == 4  # one in-sample/OOS segment per variant
    with pytest.raises(ValueError, match="no 'entry' variant"):
        plot_leakage_auc(variants.drop(index="entry"))


def test_deltas_vs_null_from_a_real_gate_analysis():
    from research.analysis.gates import analyze_gates
    from research.plots import plot_deltas_vs_null

    frame, gates = planted_gate_frame(3)
    res = analyze_gates(frame, gates, n_perm=50)
    fig = plot_deltas_vs_null(res.singles, res.null, top=4)
    ax = fig.axes[0]
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "g0"  # largest |delta| first
    green = [
        p for p in ax.patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb("tab:green")
    ]
    assert (
        len(green)
        == int(res.singles.loc[[t.get_text() for t in ax.get_xticklabels()], "confirmed"].sum())
        >= 1
    )
    levels = sorted(line.get_ydata()[0] for line in ax.lines)
    assert levels == pytest.approx(sorted(res.null[["median", "p95"]].iloc[0]))
    with pytest.raises(ValueError, match="no sufficient gate"):
        plot_deltas_vs_null(res.singles.assign(sufficient=False), res.null)
