"""The period tear sheet: activity compute (hand-computed), the period loader and its errors,
gate flags in the state store, and pipelines/report.ipynb run by the runner, its HTML opened
in headless Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from research import schema as S  # noqa: E402
from research.analysis import activity as act  # noqa: E402
from research.reports import gate_frame, load_period  # noqa: E402
from research.signals import GATE_COLUMNS  # noqa: E402
from research.stores import StoreUnavailable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
T0 = pd.Timestamp("2026-01-05 10:00", tz="UTC")


def _trades() -> pd.DataFrame:
    """Six trades by hand: 3 executed (win, loss, win), 3 phantoms (loss, timeout, win)."""
    return pd.DataFrame({
        S.SIGNAL_ID: [f"s{i}" for i in range(6)],
        S.STRATEGY: ["scalp", "scalp", "trend", "scalp", "trend", "trend"],
        S.WAS_EXECUTED: [True, True, True, False, False, False],
        S.OUTCOME: ["win", "loss", "win", "loss", "timeout", "win"],
        S.REALIZED_RR: [1.5, -1.0, 2.0, -1.0, 0.2, 1.5],
        S.EXIT_TIME: [T0 + pd.Timedelta(days=d) for d in (0, 1, 8, 2, 9, 10)],
        S.SESSION: ["us", "us", "asia", "us", "asia", "asia"],
        S.VOLATILITY_REGIME: ["low", "low", "high", "low", "high", "high"],
    })  # fmt: skip


def test_executed_vs_phantom_by_hand():
    table = act.executed_vs_phantom(_trades()).set_index([S.STRATEGY, "decision"])
    assert table.loc[("all", "executed"), "trades"] == 3
    assert table.loc[("all", "executed"), "win_rate"] == pytest.approx(2 / 3)
    assert table.loc[("all", "executed"), "total_r"] == pytest.approx(2.5)
    assert table.loc[("all", "phantom"), "win_rate"] == pytest.approx(1 / 3)  # timeout: no win
    assert table.loc[("scalp", "phantom"), "mean_r"] == pytest.approx(-1.0)
    assert table.loc[("trend", "phantom"), "trades"] == 2
    lo, hi = table["wr_low"].to_numpy(), table["wr_high"].to_numpy()
    assert np.all(lo <= table["win_rate"]) and np.all(table["win_rate"] <= hi)


def test_activity_by_period_and_cumulative_r_by_hand():
    weekly = act.activity_by_period(_trades(), "W")
    assert weekly["trades"].sum() == 6
    first = weekly.loc[weekly["period"] == weekly["period"].min()]
    # week of 2026-01-05: s0, s1 (executed scalp), s3 (phantom scalp)
    assert first.groupby("decision")["trades"].sum().to_dict() == {"executed": 2, "phantom": 1}
    cum = act.cumulative_r(_trades())
    last = cum.groupby("series")["cum_r"].last()
    assert last["all signals"] == pytest.approx(3.2)
    assert last["executed"] == pytest.approx(2.5) and last["phantom"] == pytest.approx(0.7)


def test_calibration_by_bucket_by_hand():
    p = np.array([0.6, 0.6, 0.5, 0.2, 0.3, 0.7])
    table = act.calibration_by_bucket(_trades(), p, min_n=2).set_index(S.SESSION)
    assert table.loc["us", "n"] == 3
    assert table.loc["us", "predicted"] == pytest.approx(1.4 / 3)
    assert table.loc["us", "observed"] == pytest.approx(1 / 3)
    assert table.loc["asia", "gap"] == pytest.approx(2 / 3 - 0.5)
    sparse = act.calibration_by_bucket(_trades(), p, min_n=4)
    assert sparse["observed"].isna().all(), "buckets under min_n must not report rates"


# --------------------------------------------------------------------------------------------
# a small demo's stores (SQLite audit trail and state, replay frames), shared by the tests below
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, monkeypatch_module):
    from research.demo import REPLAY_DIR, run_demo
    from research.pipeline import load_market

    for var in ("PHANTOMLAB_REDIS_URL", "PHANTOMLAB_DATABASE_URL", "PHANTOMLAB_NAMESPACE"):
        monkeypatch_module.delenv(var, raising=False)
    workdir = tmp_path_factory.mktemp("demo")
    run_demo(load_market(n_bars=4000, seed=3), workdir=workdir, retrain_every=200,
             progress=False)  # fmt: skip
    assert (workdir / REPLAY_DIR / "decisions.parquet").is_file()
    return workdir


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _urls(workdir: Path) -> dict[str, str]:
    return {"database_url": f"sqlite:///{workdir / 'audit.db'}",
            "state_url": f"sqlite:///{workdir / 'state.db'}"}  # fmt: skip


def test_scalp_records_carry_gate_flags(demo_dir):
    period = load_period(**_urls(demo_dir), strategies=["scalp"])
    gates = gate_frame(period)
    assert len(gates) > 100
    assert set(GATE_COLUMNS) <= set(gates.columns)
    assert gates[list(GATE_COLUMNS)].dtypes.eq(bool).all()
    # the flags are the signals' own: at least one gate differs between phantoms
    assert gates[list(GATE_COLUMNS)].nunique().max() == 2


def test_load_period_filters_and_expands_features(demo_dir):
    everything = load_period(**_urls(demo_dir), replay_dir=demo_dir / "replay")
    t = everything.trades
    assert {S.SESSION, S.VOLATILITY_REGIME} <= set(everything.feature_columns)
    assert t[S.EXIT_TIME].is_monotonic_increasing
    assert set(t["win"]) <= {0, 1} and t["win"].sum() == (t[S.OUTCOME] == "win").sum()
    middle = t[S.EXIT_TIME].iloc[len(t) // 2]
    later = load_period(**_urls(demo_dir), start=str(middle), strategies=["scalp", "trend"])
    assert later.trades[S.EXIT_TIME].min() >= middle
    assert set(later.trades[S.STRATEGY]) <= {"scalp", "trend"}
    assert len(later.trades) < len(t)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "yesterday-ish"}, "is not a date"),
        ({"start": "2030-01-01", "end": "2029-01-01"}, "is not before end"),
        ({"strategies": ["breakout"]}, "unknown strategy"),
        ({"start": "2099-01-01"}, "completed trade(s)"),
    ],
)
def test_load_period_bad_input_says_how_to_fix(demo_dir, kwargs, message):
    with pytest.raises(ValueError) as info:
        load_period(**_urls(demo_dir), **kwargs)
    assert message in str(info.value) and "Fix:" in str(info.value)


def test_load_period_store_down_says_which_and_how_to_fix(demo_dir):
    down = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    with pytest.raises(StoreUnavailable) as info:
        load_period(database_url=down, state_url=_urls(demo_dir)["state_url"])
    assert "127.0.0.1:1" in str(info.value) and "Fix" in str(info.value)


def test_replay_frames_missing_folder_is_a_clear_error(demo_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="decisions.parquet"):
        load_period(**_urls(demo_dir), replay_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# the report pipeline through the runner, and its HTML in headless Chromium
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_run(demo_dir, tmp_path_factory):
    from research.runner import run_pipeline

    reports = tmp_path_factory.mktemp("reports")
    params = _urls(demo_dir) | {"replay_dir": str(demo_dir / "replay"), "gate_permutations": 50}
    result = run_pipeline("report", params, reports_dir=reports, timeout_sec=600)
    return result, reports


def test_report_pipeline_runs_and_writes_its_run_folder(report_run):
    result, reports = report_run
    assert result.ok, result.error
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert manifest["parameters"]["gate_permutations"] == 50
    assert result.html.is_file() and result.notebook.is_file()
    index = (reports / "index.html").read_text()
    assert result.run_id in index


def test_report_html_renders_in_headless_chromium(report_run, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), (
        "Debian's chromium is needed for this test. Fix: apt-get install chromium "
        "chromium-driver (.ci/run does this)."
    )
    result, _ = report_run
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(result.html.resolve().as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
            )
            text = page.inner_text("body")
            shot = result.run_dir / "screenshot.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not problems, f"console errors: {problems}"
    rendered = [w for done, w in images if done and w > 0]
    # activity (3) + calibration (2) + gates (2) + importance (2) + thresholds (>= 1)
    assert len(rendered) >= 10 and len(rendered) == len(images), images
    for heading in ("Activity", "Calibration", "gates", "importance", "thresholds"):
        assert heading.lower() in text.lower(), heading
    assert "database_url" in text, "the parameters should be shown"
    assert "import " not in text, "code should be hidden"
    assert shot.stat().st_size > 50_000
    shutil.copy(shot, tmp_path / "report.png")  # kept beside the test's other files
