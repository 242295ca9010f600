"""The pipeline runner under faults (issue 13, item 4): a run is visible from its start, a
SIGTERM stops it cleanly, and a runner killed outright (``kill -9``) is marked ``died`` by
the next ``phantomlab reports`` or run, in the manifest, the index and the SQL
``pipeline_runs`` row. Real subprocesses, real signals, the real PostgreSQL; no mocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from support import closed_scalp_trades, fresh_pg_database, processes_of

from research.stores.audit import AuditTrail

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "notebooks"
EXE = Path(sys.executable).with_name("phantomlab")
BEAT = "0.5"  # heartbeat seconds in these tests: a dead run is stale after 3 x 0.5 + 5 s
META = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def _env(**extra: str) -> dict:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PHANTOMLAB_HEARTBEAT_SEC": BEAT}
    env.pop("PHANTOMLAB_DATABASE_URL", None)
    return env | extra


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _manifest(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not written yet (or, on old code, never)
        return None


def _sql_row(url: str, run_id: str) -> dict:
    with AuditTrail(url, upgrade=False) as audit:
        runs = audit.runs()
    row = runs.loc[runs["run_id"] == run_id]
    assert len(row) == 1, runs
    return row.iloc[0].to_dict()


def _index_row(reports: Path, run_id: str) -> str:
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert run_id in page, "the run is not in the index"
    return page.split(run_id, 1)[1].split("</tr>", 1)[0]


def _row_opening_notebook(folder: Path) -> Path:
    """A pipeline that opens a SQL pipeline_runs row, records its id, then sleeps."""
    cells = [
        nbformat.v4.new_markdown_cell("# Opens a pipeline_runs row, then sleeps"),
        nbformat.v4.new_code_cell(
            'database_url: str = "sqlite://"  # audit trail\n'
            "sleep_sec: float = 120.0  # how long the last cell sleeps",
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell(
            "from nbrunner import record\n"
            "from research.stores.audit import AuditTrail\n"
            "audit = AuditTrail(database_url)\n"
            'sql_run = audit.start_run("faults", {"sleep_sec": sleep_sec})\n'
            "audit.close()\n"
            "record(pipeline_run_id=sql_run)"
        ),
        nbformat.v4.new_code_cell("import time\n\ntime.sleep(sleep_sec)"),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "opens_row.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=META), path)
    return path


@pytest.fixture
def pg_url():
    with fresh_pg_database() as url:
        AuditTrail(url).close()  # the tables, as a deployment has them
        yield url


# --------------------------------------------------------------------------------------------
# SIGTERM: stopped, recorded, SQL row closed, then the signal takes its effect
# --------------------------------------------------------------------------------------------
def test_sigterm_stops_the_run_and_leaves_manifest_html_index_and_a_closed_sql_row(
    tmp_path, pg_url
):
    pipelines = tmp_path / "pipelines"
    _row_opening_notebook(pipelines)
    reports = tmp_path / "reports"
    run_dir = reports / "opens_row" / "t1"
    runner = subprocess.Popen(
        [
            str(EXE),
            "pipeline",
            "run",
            "opens_row",
            "--pipelines-dir",
            str(pipelines),
            "--reports-dir",
            str(reports),
            "--run-id",
            "t1",
            "-p",
            f"database_url={pg_url}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        # from the start: a manifest saying "running", listed in the index, heartbeating, and
        # (read back from the notebook as papermill saves it) the SQL row the notebook opened
        first = _wait_for(
            lambda: (m := _manifest(run_dir)) and m["status"] == "running" and m,
            90,
            "a running manifest",
        )
        assert first["finished_at"] is None and first["heartbeat_sec"] == float(BEAT)
        assert first["runner_pid"] == runner.pid
        assert "running" in _index_row(reports, "t1")
        m = _wait_for(
            lambda: (m := _manifest(run_dir)) and m["results"].get("pipeline_run_id") and m,
            90,
            "the notebook's pipeline_run_id in the manifest",
        )
        sql_run = m["results"]["pipeline_run_id"]
        assert _sql_row(pg_url, sql_run)["status"] == "running"
        beat = m["heartbeat_at"]
        _wait_for(lambda: _manifest(run_dir)["heartbeat_at"] > beat, 10, "a newer heartbeat")
        assert processes_of(run_dir), "the executor and kernel run"
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=120)
    finally:
        runner.kill()
    # the runner recorded everything, then let SIGTERM end it as it would have
    assert runner.returncode == -signal.SIGTERM, (runner.returncode, out, err)
    assert "SIGTERM received" in err
    _wait_for(lambda: not processes_of(run_dir), 15, "the executor and kernel to exit")
    m = _manifest(run_dir)
    assert m["status"] == "failed" and m["error"]["ename"] == "Terminated", m
    assert "SIGTERM" in m["error"]["evalue"] and m["finished_at"] and m["duration_sec"] > 0
    assert "heartbeat_at" not in m, "the final manifest replaced the running one"
    assert m["pipeline_run_closed"] is True
    row = _sql_row(pg_url, sql_run)
    assert row["status"] == "failed" and "Terminated" in row["error"]
    page = (run_dir / "opens_row.html").read_text(encoding="utf-8")
    assert "Run failed" in page and "Terminated" in page
    nb = nbformat.read(run_dir / "opens_row.ipynb", as_version=4)
    assert "Run stopped" in nb.cells[0].source
    assert "failed" in _index_row(reports, "t1")


# --------------------------------------------------------------------------------------------
# kill -9 of `phantomlab pipeline run retrain_publish`: marked died later, SQL row closed
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trades_db():
    """A fresh PostgreSQL audit trail holding closed scalp trades with their features."""
    trades, features = closed_scalp_trades(n_bars=4000, seed=1)
    with fresh_pg_database() as url:
        with AuditTrail(url) as audit:
            audit.record_trades(trades, features=features)
        yield url


def test_kill_9_of_retrain_publish_is_marked_died_by_the_next_reports(tmp_path, trades_db):
    reports = tmp_path / "reports"
    run_dir = reports / "retrain_publish" / "k9"
    # big models, so that the run is still training when it is killed
    runner = subprocess.Popen(
        [
            str(EXE),
            "pipeline",
            "run",
            "retrain_publish",
            "--reports-dir",
            str(reports),
            "--run-id",
            "k9",
            "-p",
            f"database_url={trades_db}",
            "-p",
            f"state_url=sqlite:///{tmp_path / 'state.db'}",
            "-p",
            "min_trades=100",
            "-p",
            "min_window=20",
            "-p",
            "n_estimators=1500",
            "-p",
            "gb_max_iter=500",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(PHANTOMLAB_SIGNING_KEY="faults-test-key-0123456789"),
        cwd=tmp_path,
    )
    try:
        m = _wait_for(
            lambda: (m := _manifest(run_dir)) and m["results"].get("pipeline_run_id") and m,
            120,
            "the SQL run id in the running manifest",
        )
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        runner.kill()
    sql_run = m["results"]["pipeline_run_id"]
    # orphans notice their runner is gone and exit; nothing closes the SQL row for them
    _wait_for(lambda: not processes_of(run_dir), 20, "the executor and kernel to exit")
    assert _manifest(run_dir)["status"] == "running"
    assert _sql_row(trades_db, sql_run)["status"] == "running"
    assert "running" in _index_row(reports, "k9"), "listed since its start"
    # once its heartbeat is stale, the next `phantomlab reports` marks the run died
    stale = _manifest(run_dir)["stale_after_sec"]
    assert stale == pytest.approx(3 * float(BEAT) + 5)
    time.sleep(stale + 1)
    done = subprocess.run(
        [str(EXE), "reports", "--reports-dir", str(reports)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    m = _manifest(run_dir)
    assert m["status"] == "died" and m["error"]["ename"] == "RunnerDied", m
    assert "heartbeat" in m["error"]["evalue"] and "Fix:" in m["error"]["evalue"]
    assert m["finished_at"] == m["heartbeat_at"] and m["pipeline_run_closed"] is True
    row = _sql_row(trades_db, sql_run)
    assert row["status"] == "failed" and "RunnerDied" in row["error"]
    assert "died" in _index_row(reports, "k9")
    page = (run_dir / "retrain_publish.html").read_text(encoding="utf-8")
    assert "Run died" in page
    # marking is done once: a second rebuild changes nothing
    subprocess.run(
        [str(EXE), "reports", "--reports-dir", str(reports)],
        env=_env(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert _manifest(run_dir) == m


# --------------------------------------------------------------------------------------------
# a later run sweeps: stale -> died; fresh running and finished runs untouched
# --------------------------------------------------------------------------------------------
def _hand_manifest(reports: Path, run_id: str, status: str, beat_age_sec: float) -> Path:
    run_dir = reports / "other" / run_id
    run_dir.mkdir(parents=True)
    beat = datetime.now(UTC) - timedelta(seconds=beat_age_sec)
    (run_dir / "manifest.json").write_text(
        json.dumps(
            {
                "pipeline": "other",
                "run_id": run_id,
                "status": status,
                "html": "other.html",
                "notebook": "other.ipynb",
                "started_at": (beat - timedelta(seconds=60)).isoformat(),
                "heartbeat_at": beat.isoformat(),
                "heartbeat_sec": 5.0,
                "stale_after_sec": 20.0,
                "parameters": {},
                "overrides": {},
                "results": {},
            }
        )
    )
    return run_dir


def test_a_later_run_marks_only_stale_running_runs_died(tmp_path, monkeypatch):
    from nbrunner import run_pipeline

    reports = tmp_path / "reports"
    stale = _hand_manifest(reports, "stale", "running", beat_age_sec=300)
    fresh = _hand_manifest(reports, "fresh", "running", beat_age_sec=1)
    old_failed = _hand_manifest(reports, "old-failed", "failed", beat_age_sec=3600)
    before = {d: _manifest(d) for d in (fresh, old_failed)}
    monkeypatch.setenv("PHANTOMLAB_HEARTBEAT_SEC", BEAT)
    res = run_pipeline("tiny_ok", {}, pipelines_dir=FIXTURES, reports_dir=reports, timeout_sec=180)
    assert res.ok, res.error
    m = _manifest(stale)
    assert m["status"] == "died" and m["error"]["ename"] == "RunnerDied"
    assert (stale / "other.html").is_file(), "a died run gets a report page to link to"
    assert {d: _manifest(d) for d in (fresh, old_failed)} == before
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert ">died</span>" in page and ">running</span>" in page and ">ok</span>" in page


def test_a_bad_heartbeat_setting_is_refused_with_a_fix(tmp_path, monkeypatch):
    from nbrunner import run_pipeline

    monkeypatch.setenv("PHANTOMLAB_HEARTBEAT_SEC", "often")
    with pytest.raises(ValueError, match="PHANTOMLAB_HEARTBEAT_SEC='often'.*Fix:"):
        run_pipeline("tiny_ok", {}, pipelines_dir=FIXTURES, reports_dir=tmp_path)
    assert not (tmp_path / "tiny_ok").exists(), "refused before any run folder"
