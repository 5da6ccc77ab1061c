"""Lets Airflow 3.3's own *Test* row action work for ``jira_cloud`` connections.

The UI builds the test request from the connections list with ``Number(connection.port)``: a
connection without a port (``jira_cloud`` hides the field, so none has one) is sent as
``"port": 0``, and ``POST /api/v2/connections/test`` then refuses it because 0 differs from the
stored null ("The host or port to test differs from the stored connection"). Port 0 is no port
anyone can mean, so for ``jira_cloud`` requests this middleware drops it before Airflow reads the
body. Nothing else is changed, and other connection types pass through untouched.
"""

from __future__ import annotations

import json
from typing import Any

TEST_PATH = "/api/v2/connections/test"
MAX_BODY = 1 << 20  # the test body is a small JSON document; anything larger passes untouched


def without_port_zero(body: bytes) -> bytes:
    """``body`` without ``"port": 0`` if it tests a ``jira_cloud`` connection; else ``body`` as is."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or data.get("conn_type") != "jira_cloud" or data.get("port") != 0:
        return body
    del data["port"]
    return json.dumps(data).encode()


class JiraTestPortMiddleware:
    """ASGI middleware for the api-server's root app (``fastapi_root_middlewares``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or not scope.get("path", "").endswith(TEST_PATH):
            await self.app(scope, receive, send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message.get("type") != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body") or size > MAX_BODY:
                break
        complete = messages[-1].get("type") == "http.request" and not messages[-1].get("more_body") and size <= MAX_BODY
        if complete:
            body = without_port_zero(b"".join(m.get("body", b"") for m in messages))
            messages = [{"type": "http.request", "body": body, "more_body": False}]
            headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}

        async def replay() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)
