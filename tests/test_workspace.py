"""One workspace: the demo leaves .phantomlab/config.toml and every later command reads it.

Settings resolve flag > environment > workspace file > default (research.config.Settings.resolve);
the signing key falls back to the workspace's key file (mode 0600, owned by the user); the
README's commands after `make demo` run exactly as printed, with nothing exported.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from research.cli import main
from research.config import DEFAULT_REDIS_URL, Settings
from research.stores import ModelIntegrityError
from research.stores.registry import KEY_ENV, signing_key
from research.workspace import config_path, read_workspace, write_workspace

ROOT = Path(__file__).resolve().parents[1]
PHANTOMLAB = Path(sys.executable).with_name("phantomlab")
STORE_VARS = (
    "PHANTOMLAB_REDIS_URL",
    "PHANTOMLAB_DATABASE_URL",
    "PHANTOMLAB_SIGNING_KEY",
    "PHANTOMLAB_SIGNING_KEY_FILE",
    "PHANTOMLAB_WORKSPACE",
    "PHANTOMLAB_NAMESPACE",
    "PHANTOMLAB_REPORTS_DIR",
    "PHANTOMLAB_JOURNAL",
    "PHANTOMLAB_DATA_DIR",
)


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """A clean working directory with no PHANTOMLAB_* store variable: ./.phantomlab applies."""
    for var in STORE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _key_file(folder: Path, mode: int = 0o600) -> Path:
    path = folder / "key"
    path.write_text("k" * 40 + "\n")
    path.chmod(mode)
    return path


# ---------------------------------------------------------------------------- resolution
def test_flag_beats_environment_beats_workspace_beats_default(cwd, monkeypatch):
    path = write_workspace(
        {"redis_url": "sqlite:///ws.db", "database_url": "sqlite:///a.db", "io_timeout_sec": "7"}
    )
    assert path == Path(".phantomlab/config.toml") and path.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("PHANTOMLAB_DATABASE_URL", "postgresql://u:secret@h/db")
    resolved = Settings.resolve(flags={"redis_url": "sqlite:///flag.db"})
    s, src = resolved.settings, resolved.sources
    assert (s.redis_url, src["redis_url"]) == ("sqlite:///flag.db", "flag")
    assert s.database_url == "postgresql://u:secret@h/db"
    assert src["database_url"] == "environment (PHANTOMLAB_DATABASE_URL)"
    assert s.io_timeout_sec == 7.0 and src["io_timeout_sec"] == f"workspace file ({path})"
    assert s.connect_timeout_sec == 3.0 and src["connect_timeout_sec"] == "default"
    # library defaults (open_state, AuditTrail, kernels) go through from_env: the same values
    assert Settings.from_env().redis_url == "sqlite:///ws.db"
    # an explicit mapping is self-contained: the cwd's workspace only when it names one
    assert Settings.from_env({}).redis_url == DEFAULT_REDIS_URL
    named = Settings.from_env({"PHANTOMLAB_WORKSPACE": str(cwd / ".phantomlab")})
    assert named.redis_url == "sqlite:///ws.db"


def test_workspace_file_is_merged_replaced_atomically_and_checked(cwd):
    write_workspace({"state_url": "sqlite:///one.db"})  # an alias of redis_url
    write_workspace({"database_url": "sqlite:///two.db"})
    assert read_workspace(config_path()) == {
        "redis_url": "sqlite:///one.db",
        "database_url": "sqlite:///two.db",
    }
    write_workspace({"redis_url": None})
    assert read_workspace(config_path()) == {"database_url": "sqlite:///two.db"}
    assert [p.name for p in config_path().parent.iterdir()] == ["config.toml"]  # no temp left
    with pytest.raises(ValueError, match="unknown setting 'signing_key'.*Fix:"):
        write_workspace({"signing_key": "the key itself"})
    config_path().write_text("redis_url = [1\n")
    with pytest.raises(ValueError, match="not valid TOML.*Fix:"):
        Settings.from_env()
    config_path().write_text('password = "x"\n')
    with pytest.raises(ValueError, match="not a known setting.*Fix:"):
        Settings.from_env()


# ---------------------------------------------------------------------------- signing key
def test_signing_key_falls_back_to_the_workspace_key_file(cwd, monkeypatch):
    with pytest.raises(ModelIntegrityError, match="no signing key.*Fix:"):
        signing_key()
    key = _key_file(cwd)
    write_workspace({"signing_key_file": str(key)})
    assert signing_key() == b"k" * 40
    monkeypatch.setenv(KEY_ENV, "e" * 20)  # the environment wins
    assert signing_key() == b"e" * 20
    monkeypatch.delenv(KEY_ENV)
    key.chmod(0o644)
    with pytest.raises(ModelIntegrityError, match="readable or writable by others.*chmod 600"):
        signing_key()
    key.unlink()
    with pytest.raises(ModelIntegrityError, match="cannot be read.*Fix:"):
        signing_key()


def test_signing_key_file_of_another_user_is_refused(cwd):
    if os.getuid() != 0:
        pytest.skip("chown to another user needs root")
    key = _key_file(cwd)
    os.chown(key, 12345, -1)
    write_workspace({"signing_key_file": str(key)})
    with pytest.raises(ModelIntegrityError, match="belongs to uid 12345.*Fix:"):
        signing_key()


# ---------------------------------------------------------------------------- phantomlab config
def test_config_shows_values_masked_and_their_sources(cwd, monkeypatch):
    write_workspace({"redis_url": "sqlite:///ws.db"})
    monkeypatch.setenv("PHANTOMLAB_DATABASE_URL", "postgresql://u:secret@h/db")
    result = CliRunner().invoke(main, ["config", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    rows = {r["name"]: r for r in out["settings"]}
    assert out["workspace_file"] == ".phantomlab/config.toml" and out["workspace_exists"]
    assert rows["redis_url"]["source"] == "workspace file (.phantomlab/config.toml)"
    assert rows["database_url"]["value"] == "postgresql://u:***@h/db"
    assert rows["database_url"]["source"] == "environment (PHANTOMLAB_DATABASE_URL)"
    assert rows["journal_path"]["source"] == "default"
    text = CliRunner().invoke(main, ["config", "--state-url", "redis://:pw@h:6379/1"])
    assert text.exit_code == 0 and "secret" not in text.output and "pw@" not in text.output
    assert re.search(r"redis_url\s+redis://:\*\*\*@h:6379/1\s+\[flag\]", text.output)


def test_config_set_and_unset_edit_the_workspace_file(cwd):
    runner = CliRunner()
    assert runner.invoke(main, ["config", "set", "state_url", "sqlite:///x.db"]).exit_code == 0
    assert Settings.from_env().redis_url == "sqlite:///x.db"
    bad = runner.invoke(main, ["config", "set", "io_timeout_sec", "soon"])
    assert bad.exit_code == 2 and "not a number of seconds" in bad.output
    unknown = runner.invoke(main, ["config", "set", "nope", "1"])
    assert unknown.exit_code == 2 and "Fix:" in unknown.output
    loose = _key_file(cwd, 0o644)
    refused = runner.invoke(main, ["config", "set", "signing_key_file", str(loose)])
    assert refused.exit_code == 2 and "chmod 600" in refused.output
    assert runner.invoke(main, ["config", "unset", "state_url"]).exit_code == 0
    assert Settings.from_env().redis_url == DEFAULT_REDIS_URL


def test_demo_workspace_keeps_environment_values_out_of_the_file(cwd, monkeypatch):
    from research.demo import DemoResult, save_workspace

    monkeypatch.setenv("PHANTOMLAB_REDIS_URL", "redis://:pw@127.0.0.1:6379/0")
    result = DemoResult(
        study=None,
        replay=None,
        state_url="redis://:pw@127.0.0.1:6379/0",
        database_url="sqlite:////tmp/audit.db",
        published={},
        key_path=Path(".phantomlab/signing_key"),
    )
    path = save_workspace(result)
    text = path.read_text()
    assert "pw" not in text and "redis_url" not in text
    assert read_workspace(path) == {
        "database_url": "sqlite:////tmp/audit.db",
        "signing_key_file": str(cwd / ".phantomlab/signing_key"),
    }


# ---------------------------------------------------------------------------- done when
def _readme_commands() -> list[list[str]]:
    """The commands the README prints after `make demo`, between its after-demo markers."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- after-demo -->\s*```bash\n(.*?)```\s*<!-- /after-demo -->", text, re.S)
    assert block, "README.md lost its <!-- after-demo --> block"
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    commands = [c for c in commands if c]
    assert commands and all(c[0] == ".venv/bin/phantomlab" for c in commands)
    return [[str(PHANTOMLAB), *c[1:]] for c in commands]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHANTOMLAB_")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _warning_lines(done: subprocess.CompletedProcess) -> list[str]:
    """Lines of a command's output that carry a warning (Python's, or a logged WARNING)."""
    lines = (done.stdout + done.stderr).splitlines()
    return [line for line in lines if "Warning" in line or "WARNING" in line]


def _models(cwd: Path) -> dict[int, dict]:
    listed = _run([str(PHANTOMLAB), "models", "list", "--strategy", "scalp", "--json"], cwd)
    assert listed.returncode == 0, listed.stderr
    return {r["version"]: r for r in json.loads(listed.stdout)}


def test_readme_commands_after_the_demo_run_with_nothing_exported(tmp_path):
    demo = _run(
        [str(PHANTOMLAB), "demo", "--bars", "4000", "--retrain-every", "200", "--no-report"],
        tmp_path,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    assert not _warning_lines(demo), _warning_lines(demo)
    workspace = tmp_path / ".phantomlab" / "config.toml"
    assert workspace.stat().st_mode & 0o777 == 0o600
    stored = read_workspace(workspace)
    key = (tmp_path / ".phantomlab" / "signing_key").read_text().strip()
    assert key not in workspace.read_text()
    assert stored["redis_url"] == f"sqlite:///{tmp_path / 'reports/demo/state.db'}"
    assert stored["database_url"] == f"sqlite:///{tmp_path / 'reports/demo/audit.db'}"
    assert stored["signing_key_file"] == str(tmp_path / ".phantomlab/signing_key")
    assert stored["replay_dir"] == str(tmp_path / "reports/demo/replay")
    for command in _readme_commands():
        done = _run(command, tmp_path)
        shown = " ".join(command[1:])
        assert done.returncode == 0, f"{shown}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        assert not _warning_lines(done), f"{shown}: {_warning_lines(done)}"
        if command[1:3] == ["models", "rollback"]:
            versions = _models(tmp_path)
            assert len(versions) >= 2, "the README rolls back after a second publish"
            assert [v for v, r in versions.items() if r["champion"]] == [int(command[4])]
        if command[1] == "config":
            assert "[workspace file (.phantomlab/config.toml)]" in done.stdout
    # the pipelines read and wrote the demo's stores, not an empty ./phantomlab.db
    assert not (tmp_path / "phantomlab.db").exists()
    runs = sorted((tmp_path / "reports").glob("*/*/manifest.json"))
    assert {p.parts[-3] for p in runs} == {"retrain_publish", "report"}
    assert all(json.loads(p.read_text())["status"] == "ok" for p in runs)
    # the report found the demo's replay through the workspace: its verdict is the replay's
    report = next(json.loads(p.read_text()) for p in runs if p.parts[-3] == "report")
    assert report["results"]["verdict"]["label"] != "no_replay", report["results"]
