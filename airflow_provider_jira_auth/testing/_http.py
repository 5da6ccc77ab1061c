"""The HTTP transport: a threaded HTTP/1.1 keep-alive server handing parsed requests to a callable."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    method: str
    path: str  # without the query string, not percent-decoded
    query_all: dict[str, list[str]]
    headers: Message
    body: bytes

    def q(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query_all.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: issues in the answer, with fields and listed by id or key only: what answer delays charge for
    issues: int = 0
    ids: int = 0


class HttpError(Exception):
    """Raised deep inside a handler to answer with ``response`` at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, "application/json;charset=UTF-8", dict(headers or {}))


def jira_error(
    status: int,
    messages: list[str] | tuple[str, ...] = (),
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Jira's error body: ``{"errorMessages": [...], "errors": {field: message}}``."""
    return json_response(status, {"errorMessages": list(messages), "errors": dict(errors or {})}, headers)


App = Callable[[Request], Response | None]  # None: drop the connection without answering


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "JiraCloudEmulator/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after this many seconds
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        body = self._read_body()
        path, _, query = self.path.partition("?")
        request = Request(self.command, path, parse_qs(query, keep_blank_values=True), self.headers, body)
        try:
            response = self.server.app(request)
        except Exception:  # an emulator bug must show up in the test, not hang it
            response = jira_error(500, [f"Jira Cloud emulator error: {traceback.format_exc(limit=5)}"])
        if response is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up before the answer (a task killed while Jira was slow): as on
            # a real server, the work is done and the answer goes nowhere.
            self.close_connection = True
            return
        if self.server.verbose:
            self.log_request(response.status)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: Response) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
        ]
        if response.status not in (204, 304) and not (100 <= response.status < 200):
            lines.append(f"Content-Length: {len(response.body)}")
        if response.content_type and response.body:
            lines.append(f"Content-Type: {response.content_type}")
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = b"" if self.command == "HEAD" or response.status in (204, 304) else response.body
        self.wfile.write(head + payload)  # one write: no Nagle/delayed-ACK stall on keep-alive

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that can be stopped quickly, closing its keep-alive connections too."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops SYNs when many worker processes connect at once

    def __init__(self, host: str, port: int, app: App, *, verbose: bool = False) -> None:
        self.app = app
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.connections_accepted = 0  # TCP connections opened to this server so far
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(), a reverse DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._connections_lock:
            self._connections.add(conn)
            self.connections_accepted += 1
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, name=f"jira-emulator-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
