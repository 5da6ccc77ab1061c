"""The async client (used by triggers) never quotes a credential its transport refused."""

from __future__ import annotations

import asyncio

import pytest
from requests.auth import AuthBase

from airflow_provider_jira_auth.client.async_http import AsyncJiraClient
from airflow_provider_jira_auth.client.errors import JiraConfigError
from airflow_provider_jira_auth.testing import JiraCloudEmulator


class PastedWithANewline(AuthBase):
    def __call__(self, request):
        request.headers["Authorization"] = "Bearer SECRET-TOKEN-123\nx"
        return request


def test_a_refused_credential_header_is_reported_without_its_value():
    async def call(url):
        client = AsyncJiraClient(f"{url}/rest/api/3", PastedWithANewline())
        try:
            await client.request("GET", "myself")
        finally:
            await client.aclose()

    with JiraCloudEmulator() as emu, pytest.raises(JiraConfigError) as caught:
        asyncio.run(call(emu.url))
    assert "SECRET-TOKEN-123" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
