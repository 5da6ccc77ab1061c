"""A store that cannot keep a rotated refresh token: the new tokens are never used, and someone is told."""

from __future__ import annotations

import logging

import pytest
from oauth_support import CONN_ID

from airflow_provider_jira_auth.auth.oauth2 import JiraOAuth2Auth, OAuthTokenClient, RefreshingTokenProvider
from airflow_provider_jira_auth.auth.stores.memory import MemoryTokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraTokenStoreError
from airflow_provider_jira_auth.client.http import JiraClient
from airflow_provider_jira_auth.client.retry import RetryPolicy
from airflow_provider_jira_auth.client.urls import gateway_rest_url
from airflow_provider_jira_auth.testing import JiraCloudEmulator


class StoreThatCannotKeepANewToken(MemoryTokenStore):
    """Refuses its next ``failures`` writes of a rotated refresh token (other writes succeed)."""

    def __init__(self, initial: TokenState, failures: int) -> None:
        super().__init__(CONN_ID, initial)
        self.failures = failures

    def save(self, new: TokenState, previous: TokenState | None) -> None:
        stored = self.load()
        if self.failures and stored is not None and new.refresh_token != stored.refresh_token:
            self.failures -= 1
            raise OSError("No space left on device")
        super().save(new, previous)


def jira_client(emu: JiraCloudEmulator, store: MemoryTokenStore, token_client: OAuthTokenClient, policy: RetryPolicy):
    auth = JiraOAuth2Auth(RefreshingTokenProvider(store, token_client, margin=60), margin=60)
    return JiraClient(gateway_rest_url(emu.api_url, emu.cloud_id), auth, retry=policy, timeout=5)


def jira_calls(emu: JiraCloudEmulator) -> list[str]:
    return [r.path for r in emu.requests if r.via == "gateway"]


def test_a_rotated_token_that_cannot_be_saved_is_never_used(
    emu: JiraCloudEmulator, initial: TokenState, token_client: OAuthTokenClient, policy: RetryPolicy
) -> None:
    store = StoreThatCannotKeepANewToken(initial, failures=1_000)

    with jira_client(emu, store, token_client, policy) as jira, pytest.raises(JiraTokenStoreError):
        jira.myself()

    assert emu.stats.token_refreshes == 1  # Atlassian rotated ...
    assert jira_calls(emu) == []  # ... but its new access token never reached Jira
    assert store.load().refresh_token == initial.refresh_token  # the retired one, usable within the leeway


def test_a_rotated_token_that_cannot_be_saved_is_reported_critically_without_secrets(
    emu: JiraCloudEmulator,
    initial: TokenState,
    token_client: OAuthTokenClient,
    policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_provider_jira_auth")
    store = StoreThatCannotKeepANewToken(initial, failures=1_000)

    with jira_client(emu, store, token_client, policy) as jira, pytest.raises(JiraTokenStoreError):
        jira.myself()

    (critical,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    message = critical.getMessage()
    assert CONN_ID in message and "10 minutes" in message and "OSError" in message
    assert initial.refresh_token not in message


def test_a_rotated_token_is_kept_when_the_store_fails_three_times_then_recovers(
    emu: JiraCloudEmulator, initial: TokenState, token_client: OAuthTokenClient, policy: RetryPolicy
) -> None:
    store = StoreThatCannotKeepANewToken(initial, failures=3)

    with jira_client(emu, store, token_client, policy) as jira:
        jira.myself()

    kept = store.load()
    assert kept.refresh_token != initial.refresh_token and kept.access_token
    assert [r.headers["Authorization"] for r in emu.requests if r.via == "gateway"] == [f"Bearer {kept.access_token}"]
