"""``RefreshingTokenProvider``: refresh through the store's lock, and only when still needed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from oauth_support import CONN_ID

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient, RefreshingTokenProvider, TokenProvider
from airflow_provider_jira_auth.auth.stores.file import FileTokenStore
from airflow_provider_jira_auth.auth.stores.memory import MemoryTokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraGrantRevokedError, JiraTokenStoreError
from airflow_provider_jira_auth.testing import JiraCloudEmulator


class SignallingFileStore(FileTokenStore):
    """Tells the test when a provider has read a stale state and now waits for the lock."""

    def __init__(self, conn_id: str, path: Path) -> None:
        super().__init__(conn_id, path)
        self.waiting = threading.Event()

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.waiting.set()
        with super().lock():
            yield


def test_provider_implements_the_protocol(file_store: FileTokenStore, token_client: OAuthTokenClient) -> None:
    assert isinstance(RefreshingTokenProvider(file_store, token_client), TokenProvider)


def test_fresh_stored_token_is_returned_without_refreshing(
    emu: JiraCloudEmulator, file_store: FileTokenStore, token_client: OAuthTokenClient
) -> None:
    provider = RefreshingTokenProvider(file_store, token_client, margin=60)
    first = provider.get_token(60)

    assert provider.get_token(60) == first
    assert emu.stats.token_refreshes == 1


def test_second_provider_on_the_same_file_uses_the_first_ones_token(
    emu: JiraCloudEmulator, store_path: Path, file_store: FileTokenStore, token_client: OAuthTokenClient
) -> None:
    first = RefreshingTokenProvider(file_store, token_client, margin=60)
    second = RefreshingTokenProvider(FileTokenStore(CONN_ID, store_path), token_client, margin=60)

    token = first.get_token(60)

    assert second.get_token(60) == token
    assert emu.stats.token_refreshes == 1  # the first one's; the second read it


def test_provider_rechecks_the_state_under_the_lock_and_skips_a_refresh_done_meanwhile(
    emu: JiraCloudEmulator, store_path: Path, file_store: FileTokenStore, token_client: OAuthTokenClient
) -> None:
    waiter_store = SignallingFileStore(CONN_ID, store_path)
    waiter = RefreshingTokenProvider(waiter_store, token_client, margin=60)
    got: list[TokenState] = []

    with file_store.lock():  # "another process" holds the lock while refreshing
        thread = threading.Thread(target=lambda: got.append(waiter.get_token(60)))
        thread.start()
        assert waiter_store.waiting.wait(5)  # the waiter saw no fresh token and queued for the lock
        refreshed = token_client.refresh(file_store.load())
        file_store.save(refreshed, None)
    thread.join(5)

    assert got == [refreshed]
    assert emu.stats.token_refreshes == 1  # the other process's only


def test_threads_sharing_a_memory_store_refresh_once(
    emu: JiraCloudEmulator, initial: TokenState, token_client: OAuthTokenClient
) -> None:
    store = MemoryTokenStore(CONN_ID, initial)
    providers = [RefreshingTokenProvider(store, token_client, margin=60) for _ in range(8)]
    barrier = threading.Barrier(len(providers))
    tokens: list[str | None] = []

    def run(provider: RefreshingTokenProvider) -> None:
        barrier.wait()
        tokens.append(provider.get_token(60).access_token)

    threads = [threading.Thread(target=run, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(set(tokens)) == 1 and len(tokens) == len(providers)
    assert emu.stats.token_refreshes == 1


def test_force_refresh_with_a_stale_rejected_token_does_not_refresh(
    emu: JiraCloudEmulator, file_store: FileTokenStore, token_client: OAuthTokenClient
) -> None:
    provider = RefreshingTokenProvider(file_store, token_client, margin=60)
    old = provider.get_token(60)
    current = RefreshingTokenProvider(file_store, token_client, margin=60).force_refresh(old.access_token)

    assert provider.force_refresh(old.access_token) == current
    assert emu.stats.token_refreshes == 2  # the first token and the other provider's forced refresh


def test_force_refresh_with_the_stored_token_refreshes(
    emu: JiraCloudEmulator, file_store: FileTokenStore, token_client: OAuthTokenClient
) -> None:
    provider = RefreshingTokenProvider(file_store, token_client, margin=60)
    old = provider.get_token(60)

    new = provider.force_refresh(old.access_token)

    assert new.access_token != old.access_token
    assert file_store.load() == new
    assert emu.stats.token_refreshes == 2


def test_revoked_grant_leaves_the_store_unchanged(
    emu: JiraCloudEmulator, file_store: FileTokenStore, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    emu.revoke_grant(initial.refresh_token)
    provider = RefreshingTokenProvider(file_store, token_client, margin=60)

    with pytest.raises(JiraGrantRevokedError):
        provider.get_token(60)

    assert file_store.load() == initial and emu.stats.token_refreshes == 0


def test_empty_store_asks_for_consent(tmp_path: Path, token_client: OAuthTokenClient) -> None:
    provider = RefreshingTokenProvider(FileTokenStore(CONN_ID, tmp_path / "none.json"), token_client)

    with pytest.raises(JiraTokenStoreError, match=f"airflow-jira-auth authorize --conn-id {CONN_ID}"):
        provider.get_token(60)


def test_each_refresh_is_logged_once_at_info_without_secrets(
    file_store: FileTokenStore, token_client: OAuthTokenClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="airflow_provider_jira_auth")
    provider = RefreshingTokenProvider(file_store, token_client, margin=60)

    state = provider.get_token(60)
    provider.get_token(60)

    (record,) = [r for r in caplog.records if "Refreshed" in r.getMessage()]
    message = record.getMessage()
    assert record.levelname == "INFO"
    assert CONN_ID in message and str(file_store.path) in message and "new refresh token saved" in message
    assert state.refresh_token not in message and state.access_token not in message


def test_a_refresh_that_died_midway_is_redone_at_once_though_the_access_token_looks_fresh(
    emu: JiraCloudEmulator, file_store: FileTokenStore, token_client: OAuthTokenClient
) -> None:
    provider = RefreshingTokenProvider(file_store, token_client, margin=60)
    fresh = provider.get_token(60)
    # A process marked a refresh as started, sent it (Atlassian rotated), and died before saving.
    token_client.refresh(fresh)
    file_store.save(fresh.with_changes(refresh_started_at=time.time() - 5), None)

    state = provider.get_token(60)

    assert state.access_token != fresh.access_token and state.refresh_started_at is None
    assert emu.stats.reuse_within_leeway == 1  # the stored, retired token, still inside the leeway
    assert emu.stats.family_revocations == 0


def test_the_margin_is_capped_by_the_lifetime_atlassian_granted():
    from airflow_provider_jira_auth.auth.token_state import TokenState

    now = 1000.0
    short = TokenState("rt", access_token="at", expires_at=now + 1.0, lifetime=2.0)
    hour = TokenState("rt", access_token="at", expires_at=now + 301.0, lifetime=3600.0)
    unknown = TokenState("rt", access_token="at", expires_at=now + 1.0)
    # Half of a 2 s token left: fresh, although the default margin is 300 s.
    assert short.is_fresh(300.0, now=now)
    assert not short.with_changes(expires_at=now + 0.3).is_fresh(300.0, now=now)
    # An hour-long token keeps the full margin; with no lifetime known, the margin stands.
    assert hour.is_fresh(300.0, now=now) and not hour.is_fresh(302.0, now=now)
    assert not unknown.is_fresh(300.0, now=now)
