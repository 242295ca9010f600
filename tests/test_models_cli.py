"""phantomlab models list|show|rollback|verify on real stores (SQLite files, Redis)."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from support import closed_scalp_dataset

from research.cli import main
from research.scoring import EnsembleScorer
from research.stores.audit import AuditTrail
from research.stores.registry import KEY_ENV, ModelRegistry
from research.stores.state import open_state
from research.synthetic import make_market
from research.workspace import write_workspace

KEY = "models-cli-signing-key-0123456789"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def model():
    _, _, x, y = closed_scalp_dataset(make_market(n_bars=3000, seed=1))
    return EnsembleScorer(n_estimators=10, gb_max_iter=10, nn_enabled=False).fit(x, y)


@pytest.fixture
def stores(tmp_path, monkeypatch, model):
    """Two published scalp versions (v2 champion) in SQLite files, named by the workspace."""
    for var in (
        "PHANTOMLAB_REDIS_URL",
        "PHANTOMLAB_DATABASE_URL",
        "PHANTOMLAB_WORKSPACE",
        "PHANTOMLAB_NAMESPACE",
        "PHANTOMLAB_SIGNING_KEY_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.chdir(tmp_path)
    state_url, db_url = f"sqlite:///{tmp_path / 'state.db'}", f"sqlite:///{tmp_path / 'a.db'}"
    write_workspace({"redis_url": state_url, "database_url": db_url})
    store = open_state(state_url)
    with AuditTrail(db_url) as audit:
        registry = ModelRegistry(store, audit=audit)
        for _ in range(2):
            registry.publish(
                "scalp",
                model,
                metrics={"brier": 0.2},
                n_rows=123,
                train_start="2024-01-01",
                train_end="2024-02-01",
            )
    return store, db_url


def _cli(*args):
    return CliRunner().invoke(main, ["models", *args])


def _tamper(store, version: int) -> None:
    key = store.keys.ml("scalp", f"model:v{version}:meta")
    meta = json.loads(store.backend.get(key))
    meta["n_rows"] = 999_999
    store.backend.set(key, json.dumps(meta))


def test_list_shows_versions_champion_status_window_and_metrics(stores):
    result = _cli("list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["strategy"], r["version"], r["champion"]) for r in rows] == [
        ("scalp", 1, False),
        ("scalp", 2, True),
    ]
    assert all(r["status"] == "ready" and r["n_rows"] == 123 for r in rows)
    assert rows[1]["train_start"].startswith("2024-01-01")
    assert rows[1]["train_end"].startswith("2024-02-01")
    assert rows[1]["metrics"] == {"brier": 0.2} and rows[1]["created_at"]
    text = _cli("list", "--strategy", "scalp")
    assert text.exit_code == 0 and "* scalp v2  ready" in text.output
    empty = _cli("list", "--strategy", "trend")
    assert empty.exit_code == 0 and "no model versions" in empty.output


def test_show_gives_metadata_and_signature_status(stores):
    store, _ = stores
    result = _cli("show", "scalp", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["version"], out["champion"], out["signature"]) == (2, True, "ok")
    assert out["meta"]["n_rows"] == 123 and "calibration" not in out["meta"]
    _tamper(store, 1)
    refused = _cli("show", "scalp", "1")
    assert refused.exit_code == 1 and "refused" in refused.output
    assert "signature mismatch" in refused.output
    missing = _cli("show", "scalp", "7")
    assert missing.exit_code == 2 and "no v7" in missing.output and "Fix:" in missing.output


def test_rollback_moves_the_champion_in_the_store_and_in_sql(stores):
    store, db_url = stores
    result = _cli("rollback", "scalp", "1")
    assert result.exit_code == 0, result.output
    assert "scalp champion: v2 -> v1" in result.output
    assert ModelRegistry(store, key=KEY).champion_version("scalp") == 1
    with AuditTrail(db_url, upgrade=False) as audit:
        versions = audit.model_versions("scalp")
    assert versions.loc[versions["is_champion"].astype(bool), "version"].tolist() == [1]
    missing = _cli("rollback", "scalp", "9")
    assert missing.exit_code == 2 and "no v9" in missing.output
    _tamper(store, 2)
    refused = _cli("rollback", "scalp", "2")
    assert refused.exit_code == 1 and "rollback refused" in refused.output
    assert "Fix:" in refused.output
    assert ModelRegistry(store, key=KEY).champion_version("scalp") == 1


def test_verify_exits_1_only_when_a_champion_is_refused(stores, monkeypatch):
    store, _ = stores
    ok = _cli("verify", "--json")
    assert ok.exit_code == 0, ok.output
    assert [(r["version"], r["result"]) for r in json.loads(ok.output)] == [(1, "ok"), (2, "ok")]
    _tamper(store, 1)  # not the champion: reported, exit 0
    old = _cli("verify", "scalp")
    assert old.exit_code == 0 and "scalp v1: refused" in old.output
    assert "* scalp v2: ok" in old.output
    _tamper(store, 2)
    bad = _cli("verify", "scalp")
    assert bad.exit_code == 1 and "* scalp v2: refused" in bad.output
    monkeypatch.setenv(KEY_ENV, "another-key-of-the-wrong-kind")
    wrong = _cli("verify", "scalp", "--json")
    assert wrong.exit_code == 1
    assert all(r["result"] == "refused" for r in json.loads(wrong.output))


def test_models_on_redis_with_a_flag_and_a_store_that_is_down(tmp_path, monkeypatch, model):
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.chdir(tmp_path)
    namespace = f"mcli{uuid.uuid4().hex[:8]}:"
    store = open_state(REDIS_URL, namespace=namespace)
    try:
        ModelRegistry(store).publish("trend", model)
        args = ["--state-url", REDIS_URL, "--namespace", namespace]
        result = _cli("verify", "trend", *args)
        assert result.exit_code == 0 and "* trend v1: ok" in result.output
    finally:
        keys = store.all_keys()
        if keys:
            store.backend.delete(*keys)
    down = _cli("list", "--state-url", "redis://127.0.0.1:1/0")
    assert down.exit_code == 1 and "Fix:" in down.output
