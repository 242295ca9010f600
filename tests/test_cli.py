"""The phantomlab command: help, the demo on synthetic and on a user folder, exit codes."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from research.cli import main


@pytest.fixture(autouse=True)
def reports_dir(tmp_path, monkeypatch):
    """The demo's report runs land here, never in the repository's reports/ (nor its key in
    the repository's .phantomlab/)."""
    folder = tmp_path / "reports"
    monkeypatch.setenv("PHANTOMLAB_REPORTS_DIR", str(folder))
    monkeypatch.setenv("PHANTOMLAB_WORKSPACE", str(tmp_path / "workspace"))
    return folder


def _assert_report(output: str, reports_dir) -> None:
    """The demo ended with an ok report run, listed in the index it points to."""
    runs = list((reports_dir / "report").glob("*/manifest.json"))
    assert len(runs) == 1 and '"status": "ok"' in runs[0].read_text(), output
    index = reports_dir / "index.html"
    assert index.resolve().as_uri() in output
    assert runs[0].parent.name in index.read_text()


def test_help_lists_the_demo():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "demo" in result.output


def test_demo_on_synthetic_market_replays_and_publishes_locally(tmp_path, monkeypatch, reports_dir):
    for var in ("PHANTOMLAB_REDIS_URL", "PHANTOMLAB_DATABASE_URL", "PHANTOMLAB_SIGNING_KEY"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "work"
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--bars",
            "4000",
            "--out",
            str(tmp_path),
            "--workdir",
            str(work),
            "--retrain-every",
            "200",
        ],
    )
    assert result.exit_code == 0, result.output
    for strategy in ("trend", "range", "scalp"):
        assert strategy in result.output
    assert "win_rate" in result.output and "mean_r" in result.output
    assert "uplift" in result.output and "scalp: champion v1" in result.output
    # the verdict in words comes before any table, and states its cost basis
    out = result.output
    assert "Verdict:" in out and out.index("Verdict:") < out.index("win_rate")
    assert "crypto_perp" in out and "gross" in out and "net" in out
    outcomes = pd.read_parquet(tmp_path / "outcomes.parquet")
    signals = pd.read_parquet(tmp_path / "signals.parquet")
    assert len(outcomes) == len(signals) > 0
    assert len(pd.read_parquet(tmp_path / "decisions.parquet")) == len(signals)
    # the embedded backend holds the published, verifiable champion
    from research.stores.registry import ModelRegistry
    from research.stores.state import open_state

    store = open_state(f"sqlite:///{work / 'state.db'}")
    key = (tmp_path / "workspace" / "signing_key").read_text()  # private, outside reports/
    champion = ModelRegistry(store, key=key).load_champion("scalp")
    assert champion.version == 1 and champion.meta["n_rows"] >= 200
    from research.stores.audit import AuditTrail

    audit = AuditTrail(f"sqlite:///{work / 'audit.db'}")
    assert audit.count_trades() == (~outcomes["censored"]).sum()
    assert audit.model_versions("scalp")["is_champion"].tolist() == [True]
    _assert_report(result.output, reports_dir)


def test_demo_publishes_to_redis_when_a_url_is_given(tmp_path, monkeypatch, reports_dir):
    import uuid

    from research.stores.state import open_state

    ns = f"demo{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PHANTOMLAB_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PHANTOMLAB_NAMESPACE", ns)
    monkeypatch.setenv("PHANTOMLAB_SIGNING_KEY", "cli-test-signing-key-0123456789")
    try:
        result = CliRunner().invoke(
            main, ["demo", "--bars", "3000", "--workdir", str(tmp_path), "--retrain-every", "200"]
        )
        assert result.exit_code == 0, result.output
        assert "redis://127.0.0.1:6379/0" in result.output
        keys = open_state().all_keys()
        assert f"{ns}:ml:scalp:model" in keys and f"{ns}:phantom:completed" in keys
        assert not (tmp_path / "state.db").exists()
        # the report pipeline's kernel inherits the URL and namespace: it read Redis
        _assert_report(result.output, reports_dir)
        manifest = next((reports_dir / "report").glob("*/manifest.json")).read_text()
        assert '"state_url": null' in manifest, "a URL from the environment is not a parameter"
    finally:
        store = open_state()
        if store.all_keys():
            store.backend.delete(*store.all_keys())


def test_demo_with_a_store_that_is_down_exits_1_with_a_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PHANTOMLAB_REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(main, ["demo", "--bars", "3000", "--workdir", str(tmp_path)])
    assert result.exit_code == 1
    assert "does not answer" in result.output and "Fix" in result.output


def test_demo_on_a_user_folder(tmp_path, data_dir):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "BTC_USDT_1h.csv.gz").write_bytes((data_dir / "BTC_USDT_1h.csv.gz").read_bytes())
    result = CliRunner().invoke(
        main, ["demo", "--data", str(folder), "--workdir", str(tmp_path / "work"), "--no-report"]
    )
    assert result.exit_code == 0, result.output
    assert "BTC_USDT_1h" in result.output
    assert not (tmp_path / "reports").exists()


def test_bad_candles_exit_2_with_a_fix(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "X_1h.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,100,99,98,100,1\n"  # high below open and close
        "2024-01-01T01:00:00Z,100,101,99,100,1\n"
    )
    result = CliRunner().invoke(main, ["demo", "--data", str(folder)])
    assert result.exit_code == 2
    assert "high below open or close" in result.output and "Fix" in result.output
