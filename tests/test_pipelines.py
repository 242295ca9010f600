"""The production pipelines through the CLI runner, on their failure paths: a store that is
down, a run that dies after opening its SQL record, a bad parameter. Each leaves the failed
notebook, its HTML and a manifest, and exits non-zero."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from research.cli import main
from research.stores.audit import AuditTrail

KEY = "pipelines-test-signing-key-0123456789"


@pytest.fixture
def env(monkeypatch, tmp_path):
    for var in ("PHANTOMLAB_REDIS_URL", "PHANTOMLAB_DATABASE_URL", "PHANTOMLAB_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PHANTOMLAB_SIGNING_KEY", KEY)
    return tmp_path


def _run(reports: Path, *args: str):
    result = CliRunner().invoke(
        main, ["pipeline", "run", "retrain_publish", "--reports-dir", str(reports), *args]
    )
    runs = sorted((reports / "retrain_publish").glob("*/manifest.json"))
    assert len(runs) == 1, result.output
    return result, json.loads(runs[0].read_text()), runs[0].parent


def _assert_failed_artefacts(run_dir: Path, manifest: dict) -> str:
    assert manifest["status"] == "failed"
    assert (run_dir / "retrain_publish.ipynb").is_file()
    page = html.unescape((run_dir / "retrain_publish.html").read_text())
    assert manifest["error"]["evalue"][:40] in page
    return page


def test_store_down_fails_with_notebook_html_and_exit_1(env):
    down = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    state = f"sqlite:///{env / 'state.db'}"
    result, manifest, run_dir = _run(
        env / "reports", "-p", f"database_url={down}", "-p", f"state_url={state}"
    )
    assert result.exit_code == 1, result.output
    page = _assert_failed_artefacts(run_dir, manifest)
    assert manifest["error"]["ename"] == "StoreUnavailable"
    assert "127.0.0.1:1" in page and "Fix" in page
    index = (env / "reports" / "index.html").read_text()
    assert manifest["run_id"] in index and "failed" in index


def test_failure_after_start_closes_the_sql_run_as_failed(env):
    db = f"sqlite:///{env / 'audit.db'}"
    state = f"sqlite:///{env / 'state.db'}"
    result, manifest, run_dir = _run(
        env / "reports", "-p", f"database_url={db}", "-p", f"state_url={state}"
    )
    assert result.exit_code == 1, result.output
    _assert_failed_artefacts(run_dir, manifest)
    assert "completed" in manifest["error"]["evalue"]  # no trades in an empty audit trail
    assert manifest["pipeline_run_closed"] is True
    audit = AuditTrail(db)
    runs = audit.runs("retrain_publish")
    audit.close()
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["run_id"] == manifest["results"]["pipeline_run_id"]
    assert row["status"] == "failed" and "completed" in row["error"]


def test_bad_parameter_exits_2_and_keeps_a_failed_run(env):
    result, manifest, run_dir = _run(env / "reports", "-p", "min_trades=many")
    assert result.exit_code == 2, result.output
    _assert_failed_artefacts(run_dir, manifest)
    assert "min_trades" in result.output and "expects int" in result.output


def test_unknown_parameter_suggests_the_close_one(env):
    result, manifest, _ = _run(env / "reports", "-p", "strategie=scalp")
    assert result.exit_code == 2
    assert "strategy" in result.output and manifest["status"] == "failed"
