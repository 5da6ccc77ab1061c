"""A scripted HTTP server on loopback: queued canned replies, every request recorded."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_jira_auth.client.pacing import forget_pacers

EMAIL = "robot@example.com"
TOKEN = "ATATT3xFfGF0-super-secret-token-1234567890"
BASIC_HEADER_VALUE = "cm9ib3RAZXhhbXBsZS5jb206QVRBVFQzeEZmR0YwLXN1cGVyLXNlY3JldC10b2tlbi0xMjM0NTY3ODkw"


@dataclass
class Reply:
    """One canned answer. ``drop`` closes the connection without answering."""

    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False

    def payload(self) -> tuple[bytes, str | None]:
        if self.body is not None:
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            return raw, None
        if self.json is not None:
            return json.dumps(self.json).encode(), "application/json"
        return b"", None


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_port: int = 0

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def rest_path(self) -> str:
        """The path relative to ``/rest/api/3``."""
        return self.path.removeprefix("/rest/api/3/")


Script = Reply | Callable[[Recorded], Reply]


class ScriptedServer:
    """Answers requests in order from a queue; unexpected requests get a loud 500."""

    def __init__(self) -> None:
        self._replies: deque[Script] = deque()
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.rest_url = f"{self.url}/rest/api/3"
        forget_pacers(self.url)  # what an earlier server on this port said of its limits is not ours
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def queue(self, *replies: Script) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        return len(self._replies)

    def _next_reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            script = self._replies.popleft() if self._replies else None
        if script is None:
            return Reply(
                500, {"errorMessages": [f"scripted server: no reply queued for {recorded.method} {recorded.path}"]}
            )
        return script(recorded) if callable(script) else script

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like Jira: the client's pool is exercised
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers), body, self.client_address[1]
                )
                reply = server._next_reply(recorded)
                if reply.drop:
                    self.close_connection = True
                    return
                raw, content_type = reply.payload()
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(raw)), **reply.headers}
                if content_type and "Content-Type" not in headers:
                    headers["Content-Type"] = content_type
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
