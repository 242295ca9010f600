"""Operator notifications ("the bot notifies Telegram") that can never break the caller.

A :class:`Notifier` has one method, ``send(text, **context) -> bool``. It returns ``True`` when
the message was delivered and ``False`` otherwise; it never raises, because a lost notification
must not abort a retrain, a pipeline or the bot itself.

* :class:`LogNotifier` (the default) writes the message to the ``research.notify`` logger.
* :class:`TelegramNotifier` posts it through the Telegram Bot API (``sendMessage``), retrying
  with exponential backoff on 429 (honouring ``retry_after``), on 5xx and on network errors.
* :func:`notifier_from_env` picks Telegram when ``PHANTOMLAB_TELEGRAM_TOKEN`` and
  ``PHANTOMLAB_TELEGRAM_CHAT_ID`` are both set, else logging.

Every message goes through :func:`redact` first: a URL's password (``redis://:pw@host``)
never reaches the log or the chat.

Long messages are **split**, not truncated: an alert's tail (the stack trace, the metric that
moved) is usually the part that matters. Splits fall on line breaks when possible. With a
``parse_mode`` a split can cut through markup; keep formatted messages short.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger(__name__)

#: Telegram's limit on one message, in UTF-16 code units (what the Bot API counts).
MAX_MESSAGE_LENGTH = 4096

_ENV_TOKEN = "PHANTOMLAB_TELEGRAM_TOKEN"
_ENV_CHAT = "PHANTOMLAB_TELEGRAM_CHAT_ID"
_ENV_BASE_URL = "PHANTOMLAB_TELEGRAM_BASE_URL"
# A URL in a message: scheme://, then anything up to white space, a quote or a bracket.
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>`]+""")
# Module constant, not ``cls.base_url``: with ``slots=True`` that name is a slot descriptor.
_DEFAULT_BASE_URL = "https://api.telegram.org"

_HINTS = {
    400: f"check {_ENV_CHAT} (the bot must have been started in that chat) and parse_mode markup",
    401: f"check {_ENV_TOKEN} (copy it again from @BotFather)",
    403: f"the bot was blocked or removed from the chat; unblock/re-add it or check {_ENV_CHAT}",
    404: f"check {_ENV_TOKEN} and {_ENV_BASE_URL}",
}


@runtime_checkable
class Notifier(Protocol):
    """Anything that can deliver a short text to an operator."""

    def send(self, text: str, **context: Any) -> bool:
        """Deliver ``text`` (``context`` is appended as ``key: value`` lines); never raise."""
        ...


def redact(text: str) -> str:
    """``text`` with the password of every URL in it masked (``redis://:***@host:6379/0``).

    Every URL-looking token (``scheme://...`` up to white space or a quote) goes through
    :func:`research.urls.mask_url`; the rest of the text is unchanged.
    """
    if "://" not in text:
        return text
    from research.urls import mask_url

    return _URL.sub(lambda m: mask_url(m.group(0)), text)


def format_message(text: str, context: Mapping[str, Any]) -> str:
    """Append ``context`` to ``text`` as ``key: value`` lines, in the order given.

    URL passwords are masked (:func:`redact`): a message goes to a chat or a log, never a
    safe place for a ``redis://:password@...``.
    """
    if context:
        text = "\n".join([text, "", *(f"{key}: {value}" for key, value in context.items())])
    return redact(text)


def _utf16_len(text: str) -> int:
    # Characters outside the BMP (most emoji) count twice for Telegram.
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-16 code units, on line breaks if possible.

    ``limit`` is in UTF-16 code units (Telegram: 4096). Returns at least one part; the line
    break a part was cut at is dropped, so joining the parts with those breaks gives ``text``.
    """
    parts: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        # Largest prefix that fits; an emoji straddling the limit simply moves to the next part.
        end = min(len(rest), limit)
        while (excess := _utf16_len(rest[:end]) - limit) > 0:
            # Each character is 1 or 2 units, so dropping ceil(excess / 2) never overshoots.
            end -= (excess + 1) // 2
        newline = rest.rfind("\n", 0, end)
        if newline > 0:
            parts.append(rest[:newline])
            rest = rest[newline + 1 :]
        else:
            parts.append(rest[:end])
            rest = rest[end:]
    parts.append(rest)
    return parts


class LogNotifier:
    """Default notifier: logs the message at INFO on ``research.notify``; always delivered."""

    def send(self, text: str, **context: Any) -> bool:
        """Log ``text`` and its ``context``; return ``True``."""
        try:
            logger.info("notification: %s", format_message(text, context))
        except Exception:  # a broken log handler must not break the caller either
            return False
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class TelegramConfig:
    """Where and how to reach the Telegram Bot API.

    Attributes
    ----------
    token : str
        Bot token from @BotFather (``PHANTOMLAB_TELEGRAM_TOKEN``); hidden from ``repr``.
    chat_id : str or int
        Target chat: numeric id or ``@channelname`` (``PHANTOMLAB_TELEGRAM_CHAT_ID``).
    base_url : str
        Bot API server (``PHANTOMLAB_TELEGRAM_BASE_URL``), for a self-hosted server or tests.
    timeout : float
        Per-request timeout, seconds.
    max_attempts : int
        Requests per message part, first one included.
    backoff : float
        Wait before the first retry, seconds; doubled at each further retry.
    max_retry_after : float
        Cap on the wait a 429 response asks for (``parameters.retry_after``), seconds.
    jitter : float
        Random extra backoff, as a fraction of the backoff (0 = deterministic).
    parse_mode : str or None
        ``"HTML"``, ``"MarkdownV2"`` or ``None`` for plain text.
    """

    token: str = field(repr=False)
    chat_id: str | int
    base_url: str = _DEFAULT_BASE_URL
    timeout: float = 10.0
    max_attempts: int = 4
    backoff: float = 1.0
    max_retry_after: float = 30.0
    jitter: float = 0.0
    parse_mode: str | None = None

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError(f"Telegram token is empty: set {_ENV_TOKEN}")
        if self.chat_id in ("", None):
            raise ValueError(f"Telegram chat id is empty: set {_ENV_CHAT}")
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url must start with https:// (got {self.base_url!r})")
        if self.max_attempts < 1 or self.timeout <= 0:
            raise ValueError("max_attempts must be >= 1 and timeout > 0 seconds")
        if min(self.backoff, self.max_retry_after, self.jitter) < 0:
            raise ValueError("backoff, max_retry_after and jitter must be >= 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelegramConfig:
        """Read ``PHANTOMLAB_TELEGRAM_{TOKEN,CHAT_ID,BASE_URL}``; raise if token/chat id unset."""
        env = os.environ if environ is None else environ
        base_url = env.get(_ENV_BASE_URL, "").strip() or _DEFAULT_BASE_URL
        return cls(
            token=env.get(_ENV_TOKEN, "").strip(),
            chat_id=env.get(_ENV_CHAT, "").strip(),
            base_url=base_url,
        )


class TelegramNotifier:
    """Send messages with the Bot API ``sendMessage`` method, retrying transient failures.

    Parameters
    ----------
    config : TelegramConfig
        Token, chat and retry policy.
    sleep : callable
        ``sleep(seconds)`` used between retries; tests inject a recorder.
    rand : callable
        ``rand() -> float in [0, 1)`` for the jitter.
    """

    def __init__(
        self,
        config: TelegramConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._rand = rand
        self._url = f"{config.base_url.rstrip('/')}/bot{config.token}/sendMessage"

    def __repr__(self) -> str:
        return f"TelegramNotifier({self.config!r})"

    def _mask(self, text: object) -> str:
        return str(text).replace(self.config.token, "<token>")

    def send(self, text: str, **context: Any) -> bool:
        """Post ``text`` (plus ``context`` lines) in parts of <= 4096 characters.

        Returns ``True`` when every part was accepted; stops at the first part that fails.
        """
        try:
            parts = split_message(format_message(str(text), context))
            for index, part in enumerate(parts, start=1):
                if not self._send_part(part, f"part {index}/{len(parts)}"):
                    return False
            return True
        except Exception as exc:  # a notification must never break the caller
            logger.error("Telegram notification failed unexpectedly: %s", self._mask(repr(exc)))
            return False

    def _send_part(self, text: str, label: str) -> bool:
        cfg = self.config
        payload = {"chat_id": cfg.chat_id, "text": text, "disable_web_page_preview": True}
        if cfg.parse_mode:
            payload["parse_mode"] = cfg.parse_mode
        body = json.dumps(payload).encode("utf-8")
        for attempt in range(1, cfg.max_attempts + 1):
            status, reply, error = self._post(body)
            if status == 200 and reply.get("ok") is True:
                logger.debug("Telegram message %s delivered", label)
                return True
            params = reply.get("parameters") or {}
            what = self._mask(reply.get("description") or error or f"HTTP {status}")
            if status is not None and status != 429 and status < 500:
                # Bad chat, bad token, blocked bot: retrying cannot help, the operator must act.
                hint = _HINTS.get(status, "see https://core.telegram.org/bots/api")
                if (new_chat := params.get("migrate_to_chat_id")) is not None:
                    hint = f"the group became a supergroup: set {_ENV_CHAT}={new_chat}"
                logger.error(
                    "Telegram rejected message %s (HTTP %s: %s); %s", label, status, what, hint
                )
                return False
            if attempt == cfg.max_attempts:
                break
            delay = self._delay(attempt, params.get("retry_after") if status == 429 else None)
            logger.warning("Telegram attempt %d failed (%s); retry in %.1f s", attempt, what, delay)
            self._sleep(delay)
        logger.error(
            "Telegram message %s not delivered after %d attempts (last: %s); check access to %s",
            label,
            cfg.max_attempts,
            what,
            cfg.base_url,
        )
        return False

    def _delay(self, attempt: int, retry_after: object) -> float:
        """Seconds to wait after failed ``attempt`` (1-based)."""
        if isinstance(retry_after, int | float) and retry_after >= 0:
            # Telegram's retry_after is a floor: retrying sooner just earns another 429.
            return min(float(retry_after), self.config.max_retry_after)
        base = self.config.backoff * 2 ** (attempt - 1)
        return base * (1.0 + self.config.jitter * self._rand())

    def _post(self, body: bytes) -> tuple[int | None, dict[str, Any], str | None]:
        """One request: (HTTP status or None on network error, parsed reply, error text)."""
        request = urllib.request.Request(
            self._url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            # 4xx/5xx still carry the Bot API's JSON error body.
            status = exc.code
            try:
                raw = exc.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                exc.close()
        except (OSError, http.client.HTTPException) as exc:
            # URLError, timeouts, refused/reset connections, RemoteDisconnected, IncompleteRead.
            return None, {}, self._mask(f"network error: {exc!r}")
        try:
            reply = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            reply = None
        if not isinstance(reply, dict):
            # A proxy's HTML error page, say: keep the status so 5xx is still retried.
            return status, {}, f"HTTP {status} with a non-JSON body"
        return status, reply, None


def notifier_from_env(environ: Mapping[str, str] | None = None) -> Notifier:
    """Telegram when token and chat id are both set, else :class:`LogNotifier`.

    A half-configured environment (one of the two variables missing) logs a warning naming the
    missing variable and falls back to logging, so a typo never silences alerts unnoticed.
    """
    env = os.environ if environ is None else environ
    token = env.get(_ENV_TOKEN, "").strip()
    chat = env.get(_ENV_CHAT, "").strip()
    if token and chat:
        try:
            return TelegramNotifier(TelegramConfig.from_env(env))
        except ValueError as exc:
            logger.warning("Telegram disabled, notifications go to the log: %s", exc)
            return LogNotifier()
    if token or chat:
        missing = _ENV_CHAT if token else _ENV_TOKEN
        other = _ENV_TOKEN if token else _ENV_CHAT
        logger.warning(
            "Telegram half-configured: %s is not set (only %s is); logging instead", missing, other
        )
    return LogNotifier()
