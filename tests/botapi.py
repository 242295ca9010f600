"""A local HTTP server that speaks the Telegram Bot API, for notification tests (no mocks)."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "123456:ABC-secret-token"


@dataclass
class Reply:
    """One scripted answer: status + Bot API JSON, after ``delay`` seconds, or a dropped socket."""

    status: int = 200
    body: dict[str, Any] | bytes | None = None  # None = a Bot API success for the request
    delay: float = 0.0
    close: bool = False


class BotAPIServer:
    """Records every request and answers from a queue (success once the queue is empty)."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[Reply] = deque()
        self.stop_event = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # A client that timed out leaves a broken pipe behind: expected, not worth a traceback.
        self._httpd.handle_error = lambda request, address: None
        # A short poll interval keeps shutdown() (and so each test's teardown) near-instant.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()  # wakes handlers that are "too slow" on purpose
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.path != f"/bot{server.token}/sendMessage":
                    return self._answer(
                        404, {"ok": False, "error_code": 404, "description": "Not Found"}
                    )
                reply = server.replies.popleft() if server.replies else Reply()
                if reply.delay:
                    server.stop_event.wait(reply.delay)
                if reply.close:
                    self.close_connection = True
                    return None
                payload = reply.body
                if payload is None:
                    message = {"message_id": len(server.requests), "chat": {"id": body["chat_id"]}}
                    payload = {"ok": True, "result": {**message, "text": body["text"]}}
                return self._answer(reply.status, payload)

            def _answer(self, status: int, payload: dict[str, Any] | bytes) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
