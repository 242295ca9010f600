"""Reports that answer first (issue 14, item 4): formatted tables, "no skill" said in words,
the verdict or decision at the top of a run's page with the parameters folded away, and an
index whose rows say what each run found, why it failed, and which runs were refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from support import notebook_warnings  # noqa: E402

from research.reports.format import format_table, number_text, timeframe_text
from research.reports.skill import auc_interval, no_skill_notes
from research.runs import build_index, run_answer, write_report

VERDICT = {
    "label": "none",
    "headline": "no evidence that the filter adds skill",
    "era": "model",
    "basis": "R per trade, out of sample (replayed decisions), model era; skill gross "
    "of costs, uplift net of costs of crypto_perp",
    "n_passed": 728,
    "n": 1032,
    "skill_r": -0.0525,
    "skill_low": -0.1063,
    "skill_high": 0.0004,
    "null_low": -0.0516,
    "null_high": 0.0588,
    "null_p": 0.975,
    "uplift_r": -0.0478,
    "uplift_low": -0.0946,
    "uplift_high": 0.0012,
    "auc": 0.5092,
}
KEPT = {
    "model_version": 1,
    "published": False,
    "forced": False,
    "reason": "challenger Brier 0.2310 > champion 0.2290 - 0.0: champion v1 kept",
    "metrics": {
        "challenger_brier": 0.231,
        "champion_brier": 0.229,
        "challenger_auc": 0.52,
        "champion_auc": 0.55,
        "challenger_n": 120,
    },
}


def test_tables_are_formatted_for_reading():
    raw = pd.DataFrame(
        {
            "strategy": ["scalp", "scalp", "all"],
            "decision": ["executed", "phantom", "executed"],
            "trades": [1185, 371, 1556],
            "wins": [39.0, 12.0, 51.0],
            "win_rate": [0.33541234, 0.353, 0.3401],
            "mean_r": [0.0412345678, -0.0513, 0.0123],
            "total_r_gross": [102.95512345, 88.8661, 191.8],
            "first_exit": pd.to_datetime(
                ["2024-01-14 15:00", "2024-01-15 16:30", "2024-01-14 00:00"], utc=True
            ),
            "confirmed": [True, False, True],
        }
    )
    shown = format_table(raw)
    # a meaningful index (the labels that tell rows apart), not 0 ... n
    assert list(shown.index.names) == ["strategy", "decision"]
    row = shown.loc[("scalp", "executed")]
    assert row["trades"] == "1,185" and row["wins"] == "39", "counts as integers"
    assert row["win_rate"] == "33.5 %", "a rate as a percentage"
    assert row["mean_r"] == "0.041" and shown.loc[("scalp", "phantom"), "mean_r"] == "-0.051"
    assert row["total_r_gross"] == "103.0", "one decimal for a column above 100"
    assert row["first_exit"] == "2024-01-14 15:00" and row["confirmed"] == "yes"
    # no 16-digit floats anywhere
    assert not any(re.search(r"\d\.\d{5,}", v) for v in shown.to_numpy().ravel())
    assert format_table(raw.iloc[0:0]) is None, "an empty table is 'none', not headers"
    # a Series (e.g. a decision summary) shows no "Name: ..., dtype: object" footer
    series = pd.Series(
        {"publish": False, "reason": "kept", "challenger_brier": 0.2312345, "window_trades": 120},
        name="decision",
    )
    frame = format_table(series)
    assert "dtype" not in frame.to_string() and frame.loc["publish", "decision"] == "no"
    assert frame.loc["challenger_brier", "decision"] == "0.231"
    assert frame.loc["window_trades", "decision"] == "120"
    # no labels that tell rows apart: rows are numbered from 1
    numbered = format_table(pd.DataFrame({"x": [1.5, 2.5]}))
    assert list(numbered.index) == [1, 2] and numbered.index.name == "#"
    assert number_text(np.nan) == "–" and number_text(0.00012) == "0.00012"


def test_timeframes_read_as_traders_write_them():
    assert timeframe_text(pd.Timedelta("0 days 00:05:00")) == "5m"
    assert timeframe_text(pd.Timedelta(hours=4)) == "4h"
    assert timeframe_text(pd.Timedelta(days=1)) == "1d"
    assert timeframe_text(pd.Timedelta(seconds=30)) == "30s"
    assert timeframe_text("1h") == "1h"


def test_no_skill_is_said_in_words():
    low, high = auc_interval(0.508, 350, 682)
    assert low < 0.5 < high and high - low < 0.1
    low, high = auc_interval(0.70, 350, 682)
    assert low > 0.5, "a clear AUC is not flagged"
    assert np.isnan(auc_interval(float("nan"), 10, 10)[0])
    metrics = pd.DataFrame(
        {"auc": [0.508, 0.70], "n": [1032, 1032], "win_rate": [0.34, 0.34]},
        index=["chance model", "good model"],
    )
    reliability = pd.DataFrame(
        {"rule": ["flat", "good model", "good model"], "count": [100, 60, 40]}
    )
    notes = no_skill_notes(metrics, reliability)
    assert len(notes) == 2
    assert "No skill shown" in notes[0] and "chance model" in notes[0] and "0.5" in notes[0]
    assert "good model" not in notes[0]
    assert "flat" in notes[1] and "one probability bin" in notes[1]
    assert no_skill_notes(metrics.iloc[1:]) == []


def _manifest(run_id: str, status: str = "ok", **extra) -> dict:
    params = {f"p{i}": i for i in range(13)}
    return {
        "pipeline": "report",
        "run_id": run_id,
        "status": status,
        "parameters": params,
        "overrides": {},
        "started_at": f"2026-12-0{len(run_id) % 9 + 1}T10:00:00+00:00",
        "duration_sec": 3.0,
        "notebook": "report.ipynb",
        "html": "report.html",
        "error": None,
        "results": {},
    } | extra


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# The tear sheet\n\nFINDINGS START HERE")]
    return nb


def test_run_page_opens_with_the_verdict_and_folds_the_parameters(tmp_path):
    manifest = _manifest("r1", results={"verdict": VERDICT, "metrics": {"skill_r": -0.0525}})
    page = write_report(_notebook(), manifest, tmp_path / "r.html").read_text(encoding="utf-8")
    verdict, findings = page.index('id="verdict"'), page.index("FINDINGS START HERE")
    params = page.index("<summary>Parameters (13)")
    assert verdict < findings < params, "verdict first, findings next, parameters last"
    assert page.index("<details", findings) < params, "the parameters are folded away"
    top = page[verdict:findings]
    assert "Verdict: no evidence that the filter adds skill" in top
    assert "-0.05 R [-0.11, +0.00]" in top, "the skill with its interval, two decimals"
    assert "R gross" in top and "R net of costs" in top and "out of sample" in top
    assert "model era" in top, "the basis: gross/net, OOS, era"
    assert "728 of 1,032" in top
    assert not re.search(r"\d\.\d{5,}", page), "no long floats on the page"
    assert "phantomlab results" not in page


def test_retrain_page_says_published_or_kept_and_why(tmp_path):
    manifest = _manifest("r2", results={"pipeline_run_id": "abc", **KEPT}) | {
        "pipeline": "retrain_publish"
    }
    answer = run_answer(manifest)
    assert answer["kind"] == "kept" and answer["title"] == "Kept the champion v1"
    page = write_report(_notebook(), manifest, tmp_path / "r.html").read_text(encoding="utf-8")
    top = page[page.index('id="verdict"') : page.index("FINDINGS START HERE")]
    assert "Kept the champion v1" in top and "champion v1 kept" in top and "0.231" in top
    published = run_answer(
        _manifest("r3", results=KEPT | {"published": True, "forced": True, "model_version": 2})
    )
    assert published["kind"] == "published" and published["title"] == "Published v2 (forced)"


def _write_run(reports: Path, manifest: dict) -> None:
    folder = reports / manifest["pipeline"] / manifest["run_id"]
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_index_rows_say_what_each_run_found_and_refused_runs_stand_apart(tmp_path):
    reports = tmp_path / "reports"
    _write_run(reports, _manifest("ok-verdict", results={"verdict": VERDICT}))
    _write_run(reports, _manifest("kept-run", results=KEPT) | {"pipeline": "retrain_publish"})
    reason = "StoreUnavailable: postgresql://127.0.0.1:1 does not answer. Fix: start it"
    _write_run(
        reports,
        _manifest(
            "failed-run",
            "failed",
            error={"ename": "StoreUnavailable", "evalue": reason.split(": ", 1)[1]},
        ),
    )
    _write_run(
        reports,
        _manifest(
            "typo-run",
            "failed",
            refused=True,
            error={"ename": "ParameterError", "evalue": "unknown parameter 'strategie'"},
        ),
    )
    page = build_index(reports).read_text(encoding="utf-8")

    def row(run_id: str) -> str:
        return page.split(run_id, 1)[1].split("</tr>", 1)[0]

    assert "Verdict: no evidence that the filter adds skill" in row("ok-verdict")
    assert "Kept the champion v1" in row("kept-run") and "champion v1 kept" in row("kept-run")
    failed = row("failed-run")
    # the reason is in the row's text, not only in a tooltip
    assert re.search(r">[^<]*does not answer\. Fix: start it", failed), failed
    assert ">failed</span>" in failed
    # the refused run is not among the runs: in a folded section of its own, marked refused
    runs_table, rest = page.split("</table>", 1)
    assert "typo-run" not in runs_table and "typo-run" in rest
    assert "<details" in rest and "refused before starting" in rest
    assert ">refused</span>" in row("typo-run")
    assert "3 run(s)" in page


def test_a_bad_parameter_leaves_a_refused_run(tmp_path):
    from nbrunner import ParameterError, run_pipeline

    fixtures = Path(__file__).parent / "fixtures" / "notebooks"
    with pytest.raises(ParameterError) as info:
        run_pipeline(
            "tiny_ok", {"scal": 2}, pipelines_dir=fixtures, reports_dir=tmp_path, run_id="typo"
        )
    res = info.value.result
    assert res.status == "failed", "still failed for the exit code and the API"
    assert res.manifest["refused"] is True
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    runs_table = page.split("</table>", 1)[0] if "</table>" in page else page
    assert "No runs yet" in page and "typo" in page.split("No runs yet", 1)[1]
    assert "typo" not in runs_table.split("No runs yet", 1)[0]
    html = res.html.read_text(encoding="utf-8")
    assert "Run refused before it started" in html and ">refused</span>" in html


# ------------------------------------------------------------------ notebook fixes (item 5)
def test_importance_scatter_labels_do_not_overlap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from research.plots.layout import place_labels

    fig, ax = plt.subplots(figsize=(5, 4))
    xs = np.array([0.10, 0.101, 0.102, 0.103, 0.30, 0.301])  # crowded: six names, two spots
    ys = np.array([0.020, 0.0201, 0.0202, 0.0199, 0.010, 0.0101])
    ax.plot(xs, ys, "o")
    texts = place_labels(ax, xs, ys, [f"feature_{i}" for i in range(6)])
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert len(texts) >= 3, "crowded labels are offset, not all dropped"
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1 :]), "labels overlap"
    plt.close(fig)


def test_synergy_colour_bar_is_in_the_points_it_names():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from research.plots import plot_synergy_heatmap

    combos = pd.DataFrame(
        {"size": [2, 2, 1], "synergy": [0.05, -0.02, np.nan]}, index=["a & b", "a & c", "a"]
    )
    fig = plot_synergy_heatmap(combos)
    colorbar = fig.axes[1]
    assert "percentage points" in colorbar.get_ylabel()
    values = fig.axes[0].collections[0].get_array()
    assert np.nanmax(values) == pytest.approx(5.0) and np.nanmin(values) == pytest.approx(-2.0)
    assert "+5.0" in [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)


def test_candles_are_picked_by_parameter_and_errors_name_it(tmp_path):
    from research.reports.inputs import pick_candles
    from research.synthetic import make_market

    market = make_market(n_bars=1500, seed=0, symbol="SYN")
    frame = market.reset_index()
    frame.to_csv(tmp_path / "AAA_5m.csv", index=False)
    frame.to_csv(tmp_path / "SYN_5m.csv", index=False)
    (tmp_path / "SYN_15m.csv").write_text("not loaded unless chosen\n")
    candles, note = pick_candles(tmp_path)  # data_dir alone: the first file, said
    assert "AAA_5m" in note and "the first file" in note and "SYN_5m" in note
    assert "bars of 5m" in note and "days" not in note, "the timeframe as 5m, not a Timedelta"
    assert len(candles) == 1500
    _, note = pick_candles(tmp_path, "SYN_5m")
    assert note.startswith("SYN_5m")
    _, note = pick_candles(tmp_path, "AAA")  # a bare symbol held at one timeframe
    assert note.startswith("AAA_5m")
    with pytest.raises(ValueError, match=r"symbol='SYN' matches several timeframes.*not pooled"):
        pick_candles(tmp_path, "SYN")
    with pytest.raises(ValueError, match=r"symbol='SYNTH_A' matches no candle file.*Fix"):
        pick_candles(tmp_path, "SYNTH_A")
    with pytest.raises(FileNotFoundError, match="data_dir="):
        pick_candles(tmp_path / "missing")


def test_the_runners_kernel_prints_no_tcp_warning(tmp_path, capfd):
    """Not ipykernel's TCP warning on the kernel's own stderr: the kernel is the runner's
    (``phantomlab``), bound to 127.0.0.1. (Every notebook test checks its cells' stderr for
    warnings: ``tests/support.py::notebook_warnings``.)"""
    name, parameters = "01_signals_and_phantoms", {"n_bars": 3000, "seed": 1}
    import papermill

    from nbrunner.kernel import TCP_WARNING, ensure_kernel

    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(Path(__file__).resolve().parents[1] / "notebooks" / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name=ensure_kernel(),
        cwd=str(Path(__file__).resolve().parents[1]),
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    assert not notebook_warnings(nb), notebook_warnings(nb)
    assert TCP_WARNING not in capfd.readouterr().err
