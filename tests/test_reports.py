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
    """Six trades by hand: 3 executed (win, loss, win), 3 phantoms (loss, timeout, win), R as
    the audit trail records it (executed net of costs, phantoms gross) and each one's cost_r."""
    return pd.DataFrame(
        {
            S.SIGNAL_ID: [f"s{i}" for i in range(6)],
            S.STRATEGY: ["scalp", "scalp", "trend", "scalp", "trend", "trend"],
            S.WAS_EXECUTED: [True, True, True, False, False, False],
            S.OUTCOME: ["win", "loss", "win", "loss", "timeout", "win"],
            S.REALIZED_RR: [1.5, -1.0, 2.0, -1.0, 0.2, 1.5],
            act.COST_R: [0.1, 0.1, 0.2, 0.1, 0.2, 0.1],
            S.EXIT_TIME: [T0 + pd.Timedelta(days=d) for d in (0, 1, 8, 2, 9, 10)],
            S.SESSION: ["us", "us", "asia", "us", "asia", "asia"],
            S.VOLATILITY_REGIME: ["low", "low", "high", "low", "high", "high"],
        }
    )


def test_executed_vs_phantom_by_hand():
    table = act.executed_vs_phantom(_trades()).set_index([S.STRATEGY, "decision"])
    assert table.loc[("all", "executed"), "trades"] == 3
    assert table.loc[("all", "executed"), "win_rate"] == pytest.approx(2 / 3)
    assert table.loc[("all", "executed"), "total_r"] == pytest.approx(2.5)  # net as recorded
    assert table.loc[("all", "executed"), "total_r_gross"] == pytest.approx(2.5 + 0.4)
    assert table.loc[("all", "phantom"), "win_rate"] == pytest.approx(1 / 3)  # timeout: no win
    # phantoms on the same (net) basis: charged their cost_r as if executed
    assert table.loc[("scalp", "phantom"), "mean_r"] == pytest.approx(-1.1)
    assert table.loc[("scalp", "phantom"), "mean_r_gross"] == pytest.approx(-1.0)
    assert table.loc[("all", "phantom"), "total_r"] == pytest.approx(0.7 - 0.4)
    assert table.loc[("trend", "phantom"), "trades"] == 2
    lo, hi = table["wr_low"].to_numpy(), table["wr_high"].to_numpy()
    assert np.all(lo <= table["win_rate"]) and np.all(table["win_rate"] <= hi)


def test_activity_by_period_and_cumulative_r_by_hand():
    weekly = act.activity_by_period(_trades(), "W")
    assert weekly["trades"].sum() == 6
    first = weekly.loc[weekly["period"] == weekly["period"].min()]
    # week of 2026-01-05: s0, s1 (executed scalp), s3 (phantom scalp)
    assert first.groupby("decision")["trades"].sum().to_dict() == {"executed": 2, "phantom": 1}
    assert weekly["total_r"].sum() == pytest.approx(2.8)
    assert weekly["total_r_gross"].sum() == pytest.approx(3.6)
    net = act.cumulative_r(_trades()).groupby("series")["cum_r"].last()
    assert net["all signals"] == pytest.approx(2.8)
    assert net["executed"] == pytest.approx(2.5) and net["phantom"] == pytest.approx(0.3)
    gross = act.cumulative_r(_trades(), basis="gross")
    assert set(gross["basis"]) == {"gross"}
    last = gross.groupby("series")["cum_r"].last()
    assert last["all signals"] == pytest.approx(3.6)
    assert last["executed"] == pytest.approx(2.9) and last["phantom"] == pytest.approx(0.7)


def test_restate_flips_outcomes_across_the_cost_line():
    trades = pd.DataFrame(
        {
            S.WAS_EXECUTED: [False, True, False, False],
            S.OUTCOME: ["win", "loss", "timeout", "win"],
            S.REALIZED_RR: [0.05, -0.05, 0.3, 2.0],
            act.COST_R: [0.1, 0.1, 0.1, np.nan],
        }
    )
    net = act.restate(trades, "net")
    # a gross win smaller than its costs loses net; a timeout stays one; no cost_r: unknown
    assert net[S.REALIZED_RR].iloc[:3].tolist() == pytest.approx([-0.05, -0.05, 0.2])
    assert net[S.OUTCOME].tolist()[:3] == ["loss", "loss", "timeout"]
    assert np.isnan(net[S.REALIZED_RR].iloc[3]) and pd.isna(net[S.OUTCOME].iloc[3])
    gross = act.restate(trades, "gross")
    assert gross[S.OUTCOME].tolist() == ["win", "win", "timeout", "win"]
    with pytest.raises(ValueError, match="Fix:"):
        act.restate(trades, "recorded")


def test_without_cost_r_no_figure_mixes_bases():
    """An audit trail of an older version (no cost_r): executed R is net, phantoms' gross;
    nothing that would need the other basis is computed from a mix."""
    trades = _trades().drop(columns=[act.COST_R])
    assert act.missing_cost(trades) == 6
    table = act.executed_vs_phantom(trades).set_index([S.STRATEGY, "decision"])
    assert table.loc[("all", "executed"), "total_r"] == pytest.approx(2.5)
    assert np.isnan(table.loc[("all", "executed"), "total_r_gross"])
    assert table.loc[("all", "phantom"), "total_r_gross"] == pytest.approx(0.7)
    assert np.isnan(table.loc[("all", "phantom"), "total_r"])
    assert np.isnan(table.loc[("all", "phantom"), "win_rate"])
    assert set(act.cumulative_r(trades)["series"]) == {"executed"}
    assert set(act.cumulative_r(trades, basis="gross")["series"]) == {"phantom"}


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
    key = tmp_path_factory.mktemp("workspace") / "signing_key"  # not the repository's .phantomlab/
    run_demo(
        load_market(n_bars=4000, seed=3),
        workdir=workdir,
        retrain_every=200,
        progress=False,
        key_path=key,
    )
    assert (workdir / REPLAY_DIR / "decisions.parquet").is_file()
    return workdir


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _urls(workdir: Path) -> dict[str, str]:
    return {
        "database_url": f"sqlite:///{workdir / 'audit.db'}",
        "state_url": f"sqlite:///{workdir / 'state.db'}",
    }


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
    from research.runs import run_pipeline

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
    # the parameters are folded away at the bottom (issue 14): listed, not in the way
    assert "Parameters (" in text and "database_url" in result.html.read_text(encoding="utf-8")
    assert "Verdict:" in text and text.index("Verdict:") < text.index("completed trades"), (
        "the verdict paragraph opens the report, above any table"
    )
    assert "R net of costs" in text and "R gross" in text, "figures and tables name their basis"
    assert "import " not in text, "code should be hidden"
    assert shot.stat().st_size > 50_000
    shutil.copy(shot, tmp_path / "report.png")  # kept beside the test's other files


# --------------------------------------------------------------------------------------------
# a small replay through the audit trail: the report's charts agree with its tables
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def replay_period(tmp_path_factory, monkeypatch_module):
    """A small replay's closed trades in a SQLite audit trail (entry features, cost_r among
    them, in features_json) and its frames in a folder, loaded as the report loads them."""
    from research.known_answer import known_answer_market
    from research.online.persist import audit_rows
    from research.pipeline import run_signals_and_phantoms
    from research.replay import ReplayConfig, replay
    from research.reports import save_replay_frames
    from research.scoring import EnsembleScorer, ScorerConfig
    from research.stores.audit import AuditTrail

    for var in ("PHANTOMLAB_REDIS_URL", "PHANTOMLAB_DATABASE_URL", "PHANTOMLAB_NAMESPACE"):
        monkeypatch_module.delenv(var, raising=False)
    candles = known_answer_market("planted", n_bars=4000)
    study = run_signals_and_phantoms(candles, progress=False)
    scorer = ScorerConfig(
        model=EnsembleScorer(n_estimators=10, gb_max_iter=10, nn_enabled=False),
        retrain_every=100,
        learn_from_timeouts=True,
    )
    result = replay(
        candles, config=ReplayConfig(scorer=scorer, n_boot=200), study=study, progress=False
    )
    workdir = tmp_path_factory.mktemp("replay_period")
    audit = AuditTrail(_urls(workdir)["database_url"])
    try:
        audit.record_trades(audit_rows(result.decisions, study.signals), features=study.features)
    finally:
        audit.close()
    save_replay_frames(result, workdir / "replay")
    return load_period(**_urls(workdir), replay_dir=workdir / "replay")


def _line_ends(fig) -> dict[str, float]:
    """Last y of each labelled line of a figure's first axis, keyed by the label's name."""
    return {
        line.get_label().split(" (")[0]: float(line.get_ydata()[-1])
        for line in fig.axes[0].lines
        if not line.get_label().startswith("_")
    }


def test_report_cumulative_r_charts_end_on_its_tables_totals(replay_period):
    """Each cumulative-R line of the report ends on the total its tables print, on the same
    basis — and the audit trail's lines (phantoms restated net with cost_r) on the replay's
    totals. Before issue 11 the audit-trail chart added phantoms' gross R to executed trades'
    net R, and its "all signals" line ended far from the replay's net total."""
    from research.reports import tearsheet

    period = replay_period
    assert act.COST_R in period.trades and act.missing_cost(period.trades) == 0
    activity = tearsheet.activity(period)
    rep = tearsheet.replay(period, n_boot=200)
    summary = rep.tables["summary"].set_index([S.STRATEGY, "set"])
    table = activity.tables["executed_vs_phantom"].set_index([S.STRATEGY, "decision"])
    # (line in the replay's chart, line in the audit trail's chart, summary set, table decision)
    sets = [
        ("executed", "executed", "executed", "executed"),
        ("phantoms", "phantom", "phantoms", "phantom"),
        ("all signals", "all signals", "all", None),
    ]
    words = {"total_r": "R net of costs", "total_r_gross": "R gross"}
    for basis, column in (("net", "total_r"), ("gross", "total_r_gross")):
        name = f"cumulative_r_{basis}"
        replayed, audited = rep.figures[name], activity.figures[name]
        for fig in (replayed, audited):
            ax = fig.axes[0]
            assert words[column] in ax.get_ylabel() and words[column] in ax.get_title()
        ends, audit = _line_ends(replayed), _line_ends(audited)
        for replay_line, audit_line, summary_set, decision in sets:
            total = summary.loc[("all", summary_set), column]
            assert ends[replay_line] == pytest.approx(total), (basis, replay_line)
            # the audit trail's line against the replay's table: same closed signals, same basis
            assert audit[audit_line] == pytest.approx(total), (basis, audit_line)
            if decision is not None:  # ... and against the table printed beside it
                assert audit[audit_line] == pytest.approx(table.loc[("all", decision), column])
    # the uplift table's totals are net too
    uplift = rep.tables["uplift"]
    row = uplift.loc[
        (uplift["era"] == "all") & (uplift[S.STRATEGY] == "all") & (uplift["rule"] == "in force")
    ].iloc[0]
    assert row["total R net all"] == pytest.approx(summary.loc[("all", "all"), "total_r"])


def test_report_opens_with_the_verdict_and_its_null_control(replay_period):
    from research.reports import PeriodData, tearsheet

    section = tearsheet.verdict(replay_period, n_boot=200)
    text = section.notes[0]
    assert text.startswith("Verdict:")
    assert "costs of crypto_perp" in text and "R per trade" in text, "the cost basis is stated"
    assert "null control" in text
    control = section.tables["null_control"]
    assert {"skill 95 %", "null 95 %"} <= set(control.columns)
    assert set(control["era"]) >= {"heuristic", "model"}
    legend = section.figures["null_control"].axes[0].get_legend()
    labels = {t.get_text() for t in legend.get_texts()}
    assert any("gross" in t for t in labels) and any("null" in t for t in labels)
    # the uplift table says "too few" rather than print an interval under 30 passed trades
    uplift = tearsheet.replay(replay_period, n_boot=200).tables["uplift"]
    passed = uplift["passed"].str.split("/").str[0].str.replace(",", "").astype(int)
    assert (uplift.loc[passed < 30, "skill 95 %"] == "too few").all() and (passed < 30).any()
    assert uplift.loc[passed >= 30, "skill 95 %"].str.startswith("[").all()
    assert set(uplift["rule"]) == {"in force", "seed"}
    # production audit trail only: one sentence instead of a verdict
    bare = PeriodData(
        trades=replay_period.trades,
        feature_columns=[],
        scalp_records=pd.DataFrame(),
        thresholds={},
        model_versions=pd.DataFrame(),
    )
    notes = tearsheet.verdict(bare).notes
    assert len(notes) == 1 and "no replay frames" in notes[0] and notes[0].count(". ") == 0
