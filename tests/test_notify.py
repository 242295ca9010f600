"""Notifications: a real local HTTP server that speaks the Telegram Bot API (no urllib mocks)."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
from botapi import TOKEN, BotAPIServer, Reply

from research.notify import (
    MAX_MESSAGE_LENGTH,
    LogNotifier,
    Notifier,
    TelegramConfig,
    TelegramNotifier,
    notifier_from_env,
    split_message,
)

CHAT = "-1001234"


def error(code: int, description: str, **parameters: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply(status=code, body=body)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A CI proxy must not intercept requests to the local server.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def bot_api():
    server = BotAPIServer()
    server.start()
    yield server
    server.stop()


class Sleeps(list):
    """Fake ``sleep``: records the requested durations (seconds) instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(server: BotAPIServer, sleeps: Sleeps | None = None, **overrides: Any) -> TelegramNotifier:
    settings = {"token": TOKEN, "chat_id": CHAT, "base_url": server.url, "timeout": 2.0}
    config = TelegramConfig(**(settings | overrides))
    return TelegramNotifier(config, sleep=Sleeps() if sleeps is None else sleeps)


def no_token_logged(caplog) -> None:
    assert caplog.records, "expected log records to check"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in caplog.text


def test_success_posts_bot_api_request(bot_api):
    sleeps = Sleeps()
    assert make(bot_api, sleeps).send("retrain done") is True
    (request,) = bot_api.requests
    assert request["path"] == f"/bot{TOKEN}/sendMessage"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {
        "chat_id": CHAT,
        "text": "retrain done",
        "disable_web_page_preview": True,
    }
    assert sleeps == []


def test_parse_mode_and_context_lines(bot_api):
    assert make(bot_api, parse_mode="HTML").send("<b>done</b>", run_id="r1", auc=0.61) is True
    body = bot_api.requests[0]["body"]
    assert body["parse_mode"] == "HTML"
    assert body["text"] == "<b>done</b>\n\nrun_id: r1\nauc: 0.61"


def test_429_honours_retry_after(bot_api, caplog):
    bot_api.script(error(429, "Too Many Requests: retry after 3", retry_after=3))
    sleeps = Sleeps()
    with caplog.at_level(logging.WARNING, logger="research.notify"):
        assert make(bot_api, sleeps, backoff=0.25).send("hello") is True
    assert len(bot_api.requests) == 2
    assert sleeps == [3.0]
    assert "Too Many Requests" in caplog.text


def test_429_retry_after_is_capped(bot_api):
    bot_api.script(error(429, "Too Many Requests: retry after 600", retry_after=600))
    sleeps = Sleeps()
    assert make(bot_api, sleeps, max_retry_after=30.0).send("hello") is True
    assert sleeps == [30.0]


def test_5xx_twice_then_success_backoff_doubles(bot_api):
    bot_api.script(error(502, "Bad Gateway"), error(500, "Internal Server Error"))
    sleeps = Sleeps()
    assert make(bot_api, sleeps, backoff=0.5).send("hello") is True
    assert len(bot_api.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_jitter_adds_a_random_fraction_of_the_backoff(bot_api):
    bot_api.script(error(503, "Service Unavailable"))
    sleeps = Sleeps()
    config = TelegramConfig(token=TOKEN, chat_id=CHAT, base_url=bot_api.url, jitter=0.2)
    assert TelegramNotifier(config, sleep=sleeps, rand=lambda: 0.5).send("hello") is True
    assert sleeps == [pytest.approx(1.1)]


def test_non_json_5xx_is_retried(bot_api):
    bot_api.script(Reply(status=502, body=b"<html>502 Bad Gateway</html>"))
    assert make(bot_api).send("hello") is True
    assert len(bot_api.requests) == 2


def test_persistent_5xx_gives_up(bot_api, caplog):
    bot_api.script(*[error(500, "Internal Server Error")] * 5)
    sleeps = Sleeps()
    with caplog.at_level(logging.WARNING, logger="research.notify"):
        assert make(bot_api, sleeps, max_attempts=3, backoff=0.5).send("hello") is False
    assert len(bot_api.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert any(
        r.levelno == logging.ERROR and "after 3 attempts" in r.getMessage() for r in caplog.records
    )
    no_token_logged(caplog)


@pytest.mark.parametrize(
    ("code", "description", "hint"),
    [
        (400, "Bad Request: chat not found", "PHANTOMLAB_TELEGRAM_CHAT_ID"),
        (401, "Unauthorized", "check PHANTOMLAB_TELEGRAM_TOKEN"),
        (403, "Forbidden: bot was blocked by the user", "blocked"),
    ],
)
def test_client_errors_are_not_retried(bot_api, caplog, code, description, hint):
    bot_api.script(error(code, description))
    sleeps = Sleeps()
    with caplog.at_level(logging.DEBUG, logger="research.notify"):
        assert make(bot_api, sleeps).send("hello") is False
    assert len(bot_api.requests) == 1
    assert sleeps == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(code) in errors[0] and description in errors[0] and hint in errors[0]
    no_token_logged(caplog)


def test_supergroup_migration_hint_names_new_chat_id(bot_api, caplog):
    bot_api.script(error(400, "Bad Request: group chat was upgraded", migrate_to_chat_id=-100999))
    with caplog.at_level(logging.ERROR, logger="research.notify"):
        assert make(bot_api).send("hello") is False
    assert "PHANTOMLAB_TELEGRAM_CHAT_ID=-100999" in caplog.text


def test_token_echoed_by_server_is_masked(bot_api, caplog):
    bot_api.script(error(500, f"upstream failed for /bot{TOKEN}/sendMessage"))
    with caplog.at_level(logging.DEBUG, logger="research.notify"):
        assert make(bot_api, max_attempts=2).send("hello") is True
    assert "<token>" in caplog.text
    no_token_logged(caplog)


def test_wrong_token_path_gets_404_with_hint(bot_api, caplog):
    notifier = make(bot_api, token="999:other-token")
    with caplog.at_level(logging.ERROR, logger="research.notify"):
        assert notifier.send("hello") is False
    assert bot_api.requests[0]["path"] == "/bot999:other-token/sendMessage"
    assert "PHANTOMLAB_TELEGRAM_TOKEN" in caplog.text and "999:other-token" not in caplog.text


def test_slow_server_times_out_without_raising(bot_api, caplog):
    bot_api.script(Reply(delay=3.0), Reply(delay=3.0))
    sleeps = Sleeps()
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="research.notify"):
        assert make(bot_api, sleeps, timeout=0.2, max_attempts=2).send("hello") is False
    assert time.monotonic() - start < 2.0
    assert len(bot_api.requests) == 2
    assert sleeps == [1.0]
    assert "timed out" in caplog.text
    no_token_logged(caplog)


def test_dropped_connection_is_retried(bot_api):
    bot_api.script(Reply(close=True))
    sleeps = Sleeps()
    assert make(bot_api, sleeps).send("hello") is True
    assert len(bot_api.requests) == 2
    assert sleeps == [1.0]


def test_closed_port_returns_false(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = TelegramConfig(token=TOKEN, chat_id=CHAT, base_url=f"http://127.0.0.1:{port}")
    sleeps = Sleeps()
    with caplog.at_level(logging.WARNING, logger="research.notify"):
        assert TelegramNotifier(config, sleep=sleeps).send("hello") is False
    assert sleeps == [1.0, 2.0, 4.0]  # default max_attempts=4, backoff=1 s doubled
    no_token_logged(caplog)


def test_unexpected_failure_never_raises(bot_api, caplog):
    def broken_sleep(seconds: float) -> None:
        raise RuntimeError(f"sleep broke near /bot{TOKEN}/")

    bot_api.script(error(500, "Internal Server Error"))
    config = TelegramConfig(token=TOKEN, chat_id=CHAT, base_url=bot_api.url)
    with caplog.at_level(logging.ERROR, logger="research.notify"):
        assert TelegramNotifier(config, sleep=broken_sleep).send("hello") is False
    assert "sleep broke" in caplog.text
    no_token_logged(caplog)


def test_long_text_is_split_on_line_breaks(bot_api):
    lines = [c * 3000 for c in "abc"]
    text = "\n".join(lines)
    assert make(bot_api).send(text) is True
    assert [r["body"]["text"] for r in bot_api.requests] == lines


def test_failed_part_stops_the_rest(bot_api):
    bot_api.script(Reply(), error(400, "Bad Request: message is too long"))
    assert make(bot_api).send("x" * (2 * MAX_MESSAGE_LENGTH + 10)) is False
    assert len(bot_api.requests) == 2


def test_split_message_limits():
    assert split_message("short") == ["short"]
    parts = split_message("x" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]
    # Emoji outside the BMP count as two UTF-16 units for Telegram.
    emoji = split_message("\N{GRINNING FACE}" * 3000)
    assert [len(p.encode("utf-16-le")) // 2 for p in emoji] == [4096, 1904]
    assert "".join(emoji) == "\N{GRINNING FACE}" * 3000
    mixed = split_message("a" + "\N{GRINNING FACE}" * 2048)  # 4097 units: the last emoji moves
    assert [len(p) for p in mixed] == [2048, 1]


def test_config_validation_and_repr_hides_token():
    config = TelegramConfig(token=TOKEN, chat_id=CHAT)
    assert TOKEN not in repr(config) and TOKEN not in repr(TelegramNotifier(config))
    with pytest.raises(ValueError, match="PHANTOMLAB_TELEGRAM_TOKEN"):
        TelegramConfig.from_env({"PHANTOMLAB_TELEGRAM_CHAT_ID": CHAT})
    with pytest.raises(ValueError, match="max_attempts"):
        TelegramConfig(token=TOKEN, chat_id=CHAT, max_attempts=0)


def test_notifier_from_env_picks_telegram(caplog):
    env = {
        "PHANTOMLAB_TELEGRAM_TOKEN": TOKEN,
        "PHANTOMLAB_TELEGRAM_CHAT_ID": CHAT,
        "PHANTOMLAB_TELEGRAM_BASE_URL": "http://127.0.0.1:8081",
    }
    with caplog.at_level(logging.WARNING, logger="research.notify"):
        notifier = notifier_from_env(env)
    assert isinstance(notifier, TelegramNotifier)
    assert notifier.config == TelegramConfig(
        token=TOKEN, chat_id=CHAT, base_url="http://127.0.0.1:8081"
    )
    assert caplog.records == []


def test_from_env_defaults_to_the_public_api():
    env = {"PHANTOMLAB_TELEGRAM_TOKEN": f" {TOKEN}\n", "PHANTOMLAB_TELEGRAM_CHAT_ID": CHAT}
    config = TelegramConfig.from_env(env)
    assert config.base_url == "https://api.telegram.org"
    assert (config.token, config.chat_id) == (TOKEN, CHAT)


def test_notifier_from_env_defaults_to_logging(caplog):
    with caplog.at_level(logging.WARNING, logger="research.notify"):
        notifier = notifier_from_env({"PHANTOMLAB_TELEGRAM_TOKEN": "  "})
    assert isinstance(notifier, LogNotifier)
    assert caplog.records == []


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"PHANTOMLAB_TELEGRAM_TOKEN": TOKEN}, "PHANTOMLAB_TELEGRAM_CHAT_ID"),
        ({"PHANTOMLAB_TELEGRAM_CHAT_ID": CHAT}, "PHANTOMLAB_TELEGRAM_TOKEN"),
    ],
)
def test_notifier_from_env_warns_on_half_config(caplog, env, missing):
    with caplog.at_level(logging.WARNING, logger="research.notify"):
        notifier = notifier_from_env(env)
    assert isinstance(notifier, LogNotifier)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"{missing} is not set" in record.getMessage()
    assert TOKEN not in caplog.text


def test_log_notifier_logs_at_info(caplog):
    notifier = LogNotifier()
    assert isinstance(notifier, Notifier)
    with caplog.at_level(logging.INFO, logger="research.notify"):
        assert notifier.send("retrain done", symbol="BTCUSDT") is True
    (record,) = caplog.records
    assert record.name == "research.notify" and record.levelno == logging.INFO
    assert "retrain done" in record.getMessage() and "symbol: BTCUSDT" in record.getMessage()
