"""Secrets stay secret (issue 13, item 5): URL passwords are masked wherever they are shown
(stdout, logs, notifications, executed notebooks, HTML, manifests), pipeline parameters never
ride on a command line, and the demo's signing key is created 0600, outside ``reports/``.

Real servers: a throwaway Redis that requires a password (started here), the PostgreSQL
server (trust auth: it accepts any password, so one can be put in the URL), a local Telegram
Bot API; real subprocesses for the CLI, whose executor's ``/proc/<pid>/cmdline`` is read while
it runs."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botapi import BotAPIServer
from support import closed_scalp_trades, fresh_pg_database

from research.urls import mask_url

EXE = Path(sys.executable).with_name("phantomlab")
REDIS_PW = f"rEdis-pw-{secrets.token_hex(6)}"
PG_PW = f"pG-pw-{secrets.token_hex(6)}"
TOKEN, CHAT = "123456:secrets-test-token", "-100123"


# --------------------------------------------------------------------------------------------
# mask_url: one function, every URL form
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:pw@h/0", "rediss://user:***@h/0"),
        ("unix://:pw@/tmp/redis.sock", "unix://:***@/tmp/redis.sock"),
        ("unix:///tmp/redis.sock?db=0&password=pw", "unix:///tmp/redis.sock?db=0&password=***"),
        ("postgresql+psycopg://u:p%40ss@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        ("redis://:p@ss@h/0", "redis://:***@h/0"),  # a raw "@" in the password
        ("redis://u:pw@h:notaport/0", "redis://u:***@h:notaport/0"),  # SQLAlchemy refuses it
        ("redis://u:pw@[::1:6379/0", "redis://u:***@[::1:6379/0"),  # urllib refuses it
        # no password: exactly as given
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user@h/0", "redis://user@h/0"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
        ("sqlite:////abs/state.db", "sqlite:////abs/state.db"),
        ("redis://h:6379/0?client_name=a@b", "redis://h:6379/0?client_name=a@b"),
        ("not a url @ all", "not a url @ all"),
        ("", ""),
    ],
)
def test_mask_url_hides_the_password_of_every_url_form(url, masked):
    assert mask_url(url) == masked
    assert mask_url(masked) == masked, "idempotent"


def test_mask_url_accepts_an_sqlalchemy_url_object():
    from sqlalchemy.engine import make_url

    assert mask_url(make_url("postgresql://u:pw@h/db")) == "postgresql://u:***@h/db"


# --------------------------------------------------------------------------------------------
# notifications: the log and Telegram get masked text
# --------------------------------------------------------------------------------------------
def test_notifications_never_carry_a_url_password(caplog, monkeypatch):
    from research.notify import LogNotifier, TelegramConfig, TelegramNotifier

    text = f"published to redis://:{REDIS_PW}@10.0.0.5:6379/0"
    context = {"audit": f"postgresql://bot:{PG_PW}@db/prod"}
    with caplog.at_level(logging.INFO, logger="research.notify"):
        assert LogNotifier().send(text, **context)
    assert "redis://:***@10.0.0.5:6379/0" in caplog.text and "bot:***@db" in caplog.text
    server = BotAPIServer(token=TOKEN)
    server.start()
    try:
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        config = TelegramConfig(token=TOKEN, chat_id=CHAT, base_url=server.url)
        assert TelegramNotifier(config).send(text, **context)
    finally:
        server.stop()
    sent = server.requests[0]["body"]["text"]
    assert "redis://:***@10.0.0.5:6379/0" in sent
    for secret in (REDIS_PW, PG_PW):
        assert secret not in caplog.text and secret not in sent


# --------------------------------------------------------------------------------------------
# real servers with passwords
# --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url():
    """A throwaway redis-server that requires REDIS_PW; its URL (password included)."""
    exe = shutil.which("redis-server")
    assert exe, "redis-server is needed. Fix: apt-get install redis-server"
    port = _free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            REDIS_PW,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{REDIS_PW}@127.0.0.1:{port}/0"
    try:
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with pytest.raises(redis.AuthenticationError):  # the password is really needed
            redis.Redis.from_url(f"redis://:wrong@127.0.0.1:{port}/0").ping()
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def trades():
    return closed_scalp_trades(n_bars=4000, seed=1)


@pytest.fixture
def pg_url(trades):
    """A fresh PostgreSQL audit trail holding closed scalp trades; its URL with PG_PW in it."""
    from research.stores.audit import AuditTrail

    trades, features = trades
    with fresh_pg_database() as url:
        with_pw = url.replace("postgres@", f"postgres:{PG_PW}@", 1)
        assert PG_PW in with_pw, url
        with AuditTrail(with_pw) as audit:  # trust auth: the password is accepted, unused
            audit.record_trades(trades, features=features)
        yield with_pw


@pytest.fixture
def bot_api():
    server = BotAPIServer(token=TOKEN)
    server.start()
    yield server
    server.stop()


def _env(tmp_path: Path, bot_api: BotAPIServer, **extra: str) -> dict:
    env = os.environ | {
        "OMP_NUM_THREADS": "1",
        "PHANTOMLAB_REPORTS_DIR": str(tmp_path / "reports"),
        "PHANTOMLAB_TELEGRAM_TOKEN": TOKEN,
        "PHANTOMLAB_TELEGRAM_CHAT_ID": CHAT,
        "PHANTOMLAB_TELEGRAM_BASE_URL": bot_api.url,
        "no_proxy": "127.0.0.1,localhost",
    }
    for name in (
        "PHANTOMLAB_REDIS_URL",
        "PHANTOMLAB_DATABASE_URL",
        "PHANTOMLAB_SIGNING_KEY",
        "PHANTOMLAB_NAMESPACE",
        "PHANTOMLAB_WORKSPACE",
    ):
        env.pop(name, None)
    return env | extra


def _watch_cmdlines(proc: subprocess.Popen) -> list[str]:
    """Every command line of ``proc``'s descendants (executor, kernel) until it exits."""
    import psutil

    seen: dict[int, str] = {}
    while proc.poll() is None:
        try:
            kids = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            break
        for kid in kids:
            try:  # what `ps` shows any local user: /proc/<pid>/cmdline
                text = Path(f"/proc/{kid.pid}/cmdline").read_bytes().decode()
            except OSError:
                continue
            if text:  # empty once the process has exited
                seen[kid.pid] = text.replace("\0", " ")
        time.sleep(0.05)
    return list(seen.values())


def _assert_nowhere(secrets_: tuple[str, ...], texts: dict[str, str], folder: Path) -> None:
    """None of ``secrets_`` in any text, nor in any file under ``folder``."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        texts[str(path.relative_to(folder))] = path.read_bytes().decode("utf-8", "replace")
    assert len(texts) > 3
    for secret in secrets_:
        leaks = [name for name, text in texts.items() if secret in text]
        assert not leaks, f"the password {secret[:6]}... leaked into {leaks}"


@pytest.mark.parametrize("redis_via", ["environment", "parameter"])
def test_retrain_publish_shows_no_password_anywhere(
    tmp_path, redis_url, pg_url, bot_api, redis_via
):
    args = [
        str(EXE),
        "-v",
        "pipeline",
        "run",
        "retrain_publish",
        "--run-id",
        "s",
        "-p",
        f"database_url={pg_url}",
        "-p",
        "min_trades=100",
        "-p",
        "min_window=20",
        "-p",
        "n_estimators=20",
        "-p",
        "gb_max_iter=20",
    ]
    extra = {"PHANTOMLAB_SIGNING_KEY": "secrets-test-signing-key-0123456789"}
    redis_url = redis_url.replace("/0", "/2" if redis_via == "environment" else "/3")
    if redis_via == "environment":
        extra["PHANTOMLAB_REDIS_URL"] = redis_url
    else:
        args += ["-p", f"state_url={redis_url}"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path, bot_api, **extra),
        cwd=tmp_path,
    )
    try:
        cmdlines = _watch_cmdlines(proc)
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert any("nbrunner.executor" in c for c in cmdlines), cmdlines
    assert any("ipykernel_launcher" in c for c in cmdlines), cmdlines
    run_dir = tmp_path / "reports" / "retrain_publish" / "s"
    notebook = (run_dir / "retrain_publish.ipynb").read_text(encoding="utf-8")
    texts = {
        "stdout": out,
        "stderr (INFO logs)": err,
        "notifications": "\n".join(r["body"]["text"] for r in bot_api.requests),
        **{f"cmdline {i}": c for i, c in enumerate(cmdlines)},
    }
    assert bot_api.requests, "the run notified"
    _assert_nowhere((REDIS_PW, PG_PW), texts, tmp_path / "reports")
    # the run really used both servers (so the kernel had the real passwords) ...
    import redis

    assert redis.Redis.from_url(redis_url).dbsize() > 0, "nothing published to the Redis"
    # ... and showed them masked
    assert mask_url(redis_url) in notebook and "postgres:***@" in notebook


def test_password_parameters_stay_off_argv_and_out_of_the_run_yet_reach_the_kernel(
    tmp_path, bot_api
):
    import hashlib

    import nbformat

    secret = f"pArAm-pw-{secrets.token_hex(6)}"
    state = f"unix:///run/redis.sock?db=0&password={secret}"
    urls = [f"postgresql://u:{secret}@127.0.0.1:1/x", "plain text"]
    cells = [
        nbformat.v4.new_markdown_cell("# Secret parameters"),
        nbformat.v4.new_code_cell(
            'state_url: str = "sqlite://"  # a URL\nurls: list[str] = []  # more URLs',
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell(  # proves the kernel got the real values, shows no secret
            "import hashlib, time\n"
            "print('state', hashlib.sha256(state_url.encode()).hexdigest())\n"
            "print('urls', hashlib.sha256(repr(urls).encode()).hexdigest())\n"
            "time.sleep(2)"
        ),
    ]
    folder = tmp_path / "pipelines"
    folder.mkdir()
    meta = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    nbformat.write(
        nbformat.v4.new_notebook(cells=cells, metadata=meta), folder / "secret_params.ipynb"
    )
    proc = subprocess.Popen(
        [
            str(EXE),
            "-v",
            "pipeline",
            "run",
            "secret_params",
            "--pipelines-dir",
            str(folder),
            "--run-id",
            "p",
            "-p",
            f"state_url={state}",
            "-p",
            f"urls=[{urls[0]}, {urls[1]}]",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path, bot_api),
        cwd=tmp_path,
    )
    try:
        cmdlines = _watch_cmdlines(proc)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert any("nbrunner.executor" in c for c in cmdlines), cmdlines
    texts = {"stdout": out, "stderr": err, **{f"cmdline {i}": c for i, c in enumerate(cmdlines)}}
    _assert_nowhere((secret,), texts, tmp_path / "reports")
    notebook = (tmp_path / "reports" / "secret_params" / "p" / "secret_params.ipynb").read_text()
    assert hashlib.sha256(state.encode()).hexdigest() in notebook
    assert hashlib.sha256(repr(urls).encode()).hexdigest() in notebook
    assert "password=***" in notebook and "u:***@127.0.0.1:1/x" in notebook


# --------------------------------------------------------------------------------------------
# the demo: masked URLs, a private key outside reports/
# --------------------------------------------------------------------------------------------
def test_demo_shows_no_password_and_keeps_its_key_private_outside_reports(
    tmp_path, redis_url, bot_api
):
    workspace, work = tmp_path / "workspace", tmp_path / "reports" / "demo"
    with fresh_pg_database() as db:
        db = db.replace("postgres@", f"postgres:{PG_PW}@", 1)
        env = _env(
            tmp_path,
            bot_api,
            PHANTOMLAB_REDIS_URL=redis_url.replace("/0", "/1"),
            PHANTOMLAB_DATABASE_URL=db,
            PHANTOMLAB_WORKSPACE=str(workspace),
        )
        old_umask = os.umask(0)  # the key must be 0600 by itself, not thanks to the umask
        try:
            done = subprocess.run(
                [
                    str(EXE),
                    "-v",
                    "demo",
                    "--bars",
                    "3000",
                    "--retrain-every",
                    "200",
                    "--workdir",
                    str(work),
                ],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=900,
            )
        finally:
            os.umask(old_umask)
    assert done.returncode == 0, done.stdout + done.stderr
    texts = {
        "stdout": done.stdout,
        "stderr (INFO logs)": done.stderr,
        "notifications": "\n".join(r["body"]["text"] for r in bot_api.requests),
    }
    _assert_nowhere((REDIS_PW, PG_PW), texts, tmp_path / "reports")
    assert "redis://:***@127.0.0.1" in done.stdout and "postgres:***@" in done.stdout
    key = workspace / "signing_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700
    assert str(key) in done.stdout, "the demo says where its key is"
    reports = tmp_path / "reports"
    assert not [p for p in reports.rglob("*") if "signing_key" in p.name], "no key in reports/"
    config = workspace / "config.toml"  # the demo's workspace file: the key's path, no URL
    assert sorted(workspace.iterdir()) == [config, key], "no temporary file left behind"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert REDIS_PW not in config.read_text() and PG_PW not in config.read_text()
    assert key.read_text().strip() not in config.read_text()
    assert "published to redis://:***@" in texts["notifications"]
    _assert_nowhere((key.read_text(),), texts, reports)


def test_key_file_is_created_once_0600_and_never_inside_reports(tmp_path, monkeypatch):
    from research.demo import demo_signing_key, write_secret_file

    monkeypatch.delenv("PHANTOMLAB_SIGNING_KEY", raising=False)
    monkeypatch.delenv("PHANTOMLAB_WORKSPACE", raising=False)
    monkeypatch.setenv("PHANTOMLAB_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.chdir(tmp_path)
    old_umask = os.umask(0)
    try:
        key = demo_signing_key()  # default: ./.phantomlab/signing_key
    finally:
        os.umask(old_umask)
    path = tmp_path / ".phantomlab" / "signing_key"
    assert path.read_text() == key and len(key) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_signing_key() == key, "created once, then read"
    assert write_secret_file(path, "other") is False and path.read_text() == key, "never replaced"
    with pytest.raises(ValueError, match="inside the reports folder.*Fix:"):
        demo_signing_key(tmp_path / "reports" / "demo" / "key")
    # a key an older version left in the demo's workdir (inside reports/) moves out
    legacy = tmp_path / "reports" / "demo" / ".signing_key"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("legacy-key-0123456789")
    moved = tmp_path / "ws" / "signing_key"
    assert demo_signing_key(moved, legacy=legacy) == "legacy-key-0123456789"
    assert not legacy.exists() and stat.S_IMODE(moved.stat().st_mode) == 0o600


def test_concurrent_demos_share_one_key(tmp_path):
    """Four processes creating the key at once all end up with the same one."""
    code = (
        "import sys; from pathlib import Path; from research.demo import demo_signing_key; "
        "print(demo_signing_key(Path(sys.argv[1])))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PHANTOMLAB_SIGNING_KEY"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "k" / "signing_key")],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    keys = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(keys) == 1 and len(next(iter(keys))) == 64
    key = tmp_path / "k" / "signing_key"
    assert [p.name for p in key.parent.iterdir()] == ["signing_key"], "no temporary left"
    assert key.is_file() and key.read_text() in keys and stat.S_IMODE(key.stat().st_mode) == 0o600
