"""Fixtures: the real client over real HTTP against a scripted server; waits go to a list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from requests.auth import HTTPBasicAuth

from airflow_provider_jira_auth.client import JiraClient, RetryPolicy

from client_scripted_server import EMAIL, TOKEN, ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer().start()
    yield scripted
    scripted.stop()


@pytest.fixture
def auth() -> HTTPBasicAuth:
    return HTTPBasicAuth(EMAIL, TOKEN)


@pytest.fixture
def client(server: ScriptedServer, auth: HTTPBasicAuth, policy: RetryPolicy) -> Iterator[JiraClient]:
    with JiraClient(server.rest_url, auth, retry=policy, timeout=5) as jira:
        yield jira
