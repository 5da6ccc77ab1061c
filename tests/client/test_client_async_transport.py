"""The async client (used by triggers) over real HTTP: its TLS setting, and whose connection pool it closes."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from airflow_provider_jira_auth.client.async_http import AsyncJiraClient
from airflow_provider_jira_auth.client.errors import JiraTransportError
from airflow_provider_jira_auth.client.retry import RetryPolicy
from tests.tls_front import TlsFront

from client_scripted_server import Reply, ScriptedServer


@pytest.fixture
def tls_front(server: ScriptedServer, tmp_path: Path) -> Iterator[TlsFront]:
    with TlsFront(urlsplit(server.url).port or 0, tmp_path) as front:
        yield front


def _myself(rest_url: str, **kwargs: Any) -> Any:
    async def call() -> Any:
        async with AsyncJiraClient(rest_url, None, **kwargs) as client:
            return await client.request("GET", "myself")

    return asyncio.run(call())


def test_an_async_client_trusting_the_servers_ca_talks_to_it_over_tls(
    server: ScriptedServer, tls_front: TlsFront, policy: RetryPolicy
) -> None:
    server.queue(Reply(200, {"accountId": "a-1"}))

    with warnings.catch_warnings():
        # httpx deprecates a CA bundle path for verify: the client hands it an SSL context.
        warnings.simplefilter("error", DeprecationWarning)
        answer = _myself(f"{tls_front.url}/rest/api/3", retry=policy, verify=str(tls_front.ca_file))
    assert answer == {"accountId": "a-1"}
    assert [r.path for r in server.requests] == ["/rest/api/3/myself"]


def test_an_async_client_refuses_a_certificate_its_tls_setting_does_not_trust(
    server: ScriptedServer, tls_front: TlsFront, policy: RetryPolicy, sleeps: list[float]
) -> None:
    with pytest.raises(JiraTransportError, match="CERTIFICATE_VERIFY_FAILED"):
        _myself(f"{tls_front.url}/rest/api/3", retry=policy)

    assert server.requests == [] and sleeps == []


def test_an_async_client_with_verification_off_accepts_any_certificate(
    server: ScriptedServer, tls_front: TlsFront, policy: RetryPolicy
) -> None:
    server.queue(Reply(200, {}))

    _myself(f"{tls_front.url}/rest/api/3", retry=policy, verify=False)

    assert len(server.requests) == 1


def test_an_http_client_passed_in_is_used_and_left_open(server: ScriptedServer, policy: RetryPolicy) -> None:
    server.queue(Reply(200, {}), Reply(200, {}))

    async def scenario() -> int:
        async with httpx.AsyncClient(timeout=5) as http:
            async with AsyncJiraClient(server.rest_url, None, retry=policy, http=http) as client:
                await client.request("GET", "myself")
            assert not http.is_closed
            return (await http.get(f"{server.rest_url}/myself")).status_code

    assert asyncio.run(scenario()) == 200
    assert len(server.requests) == 2


def test_the_async_clients_own_http_client_is_closed_with_it(server: ScriptedServer, policy: RetryPolicy) -> None:
    server.queue(Reply(200, {}))

    async def scenario() -> tuple[bool, bool]:
        async with AsyncJiraClient(server.rest_url, None, retry=policy) as client:
            await client.request("GET", "myself")
            open_while_used = not client.http.is_closed
        return open_while_used, client.http.is_closed

    assert asyncio.run(scenario()) == (True, True)
