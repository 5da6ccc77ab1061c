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
def sleeps() -> list[float]:
    """The waits the retry policy asked for, in order (nothing actually sleeps)."""
    return []


@pytest.fixture
def policy(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(backoff_initial=0.01, retry_after_floor=0.01, sleep=sleeps.append)


@pytest.fixture
def auth() -> HTTPBasicAuth:
    return HTTPBasicAuth(EMAIL, TOKEN)


@pytest.fixture
def client(server: ScriptedServer, auth: HTTPBasicAuth, policy: RetryPolicy) -> Iterator[JiraClient]:
    with JiraClient(server.rest_url, auth, retry=policy, timeout=5) as jira:
        yield jira
