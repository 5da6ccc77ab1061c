"""The plugin's middleware for Airflow's Test button: only jira_cloud's "port": 0 is dropped."""

from __future__ import annotations

import asyncio
import json
import threading

from airflow_provider_jira_auth.plugins.test_button import JiraTestPortMiddleware, without_port_zero


def test_port_zero_of_a_jira_cloud_test_is_dropped_and_nothing_else_changes():
    body = json.dumps({"connection_id": "j", "conn_type": "jira_cloud", "host": "https://x", "port": 0}).encode()
    assert json.loads(without_port_zero(body)) == {"connection_id": "j", "conn_type": "jira_cloud", "host": "https://x"}


def test_other_types_real_ports_and_bad_json_pass_untouched():
    for body in (
        json.dumps({"conn_type": "http", "port": 0}).encode(),
        json.dumps({"conn_type": "jira_cloud", "port": 443}).encode(),
        b"{not json",
        b"[]",
    ):
        assert without_port_zero(body) == body


def run(middleware_path: str, body: bytes, chunks: int = 1) -> tuple[bytes, dict]:
    seen: dict = {}

    async def app(scope, receive, send):
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen["body"], seen["headers"] = b"".join(parts), dict(scope["headers"])

    size = len(body) // chunks + 1
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    queue = [{"type": "http.request", "body": p, "more_body": n < len(pieces) - 1} for n, p in enumerate(pieces)]

    async def receive():
        return queue.pop(0)

    scope = {"type": "http", "method": "POST", "path": middleware_path, "headers": [(b"content-length", str(len(body)).encode())]}
    # In a thread of its own: another test of the session may leave an event loop running here.
    worker = threading.Thread(target=lambda: asyncio.run(JiraTestPortMiddleware(app)(scope, receive, None)))
    worker.start()
    worker.join(30)
    return seen["body"], seen["headers"]


def test_the_middleware_rewrites_a_chunked_body_and_its_length():
    body = json.dumps({"connection_id": "j", "conn_type": "jira_cloud", "port": 0}).encode()
    rewritten, headers = run("/api/v2/connections/test", body, chunks=3)
    assert "port" not in json.loads(rewritten)
    assert headers[b"content-length"] == str(len(rewritten)).encode()


def test_the_middleware_leaves_other_paths_alone():
    body = json.dumps({"conn_type": "jira_cloud", "port": 0}).encode()
    assert run("/api/v2/connections", body)[0] == body
