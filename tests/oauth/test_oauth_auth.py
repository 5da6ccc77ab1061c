"""``JiraOAuth2Auth`` on ``JiraClient`` through the emulator's gateway: caching, expiry, 401s."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from oauth_support import CONN_ID

from airflow_provider_jira_auth.auth.oauth2 import JiraOAuth2Auth, OAuthTokenClient, RefreshingTokenProvider
from airflow_provider_jira_auth.auth.stores.memory import MemoryTokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraAuthenticationError, JiraGrantRevokedError, JiraScopeError
from airflow_provider_jira_auth.client.http import JiraClient
from airflow_provider_jira_auth.client.retry import RetryPolicy
from airflow_provider_jira_auth.client.urls import gateway_rest_url
from airflow_provider_jira_auth.testing import JiraCloudEmulator


class CountingMemoryStore(MemoryTokenStore):
    loads = 0

    def load(self) -> TokenState | None:
        self.loads += 1
        return super().load()


@pytest.fixture
def store(initial: TokenState) -> CountingMemoryStore:
    return CountingMemoryStore(CONN_ID, initial)


@pytest.fixture
def provider(store: CountingMemoryStore, token_client: OAuthTokenClient) -> RefreshingTokenProvider:
    return RefreshingTokenProvider(store, token_client, margin=0.5)


@pytest.fixture
def auth(provider: RefreshingTokenProvider) -> JiraOAuth2Auth:
    return JiraOAuth2Auth(provider, margin=0.5)


@pytest.fixture
def jira(emu: JiraCloudEmulator, auth: JiraOAuth2Auth, policy: RetryPolicy) -> Iterator[JiraClient]:
    with JiraClient(gateway_rest_url(emu.api_url, emu.cloud_id), auth, retry=policy, timeout=5) as client:
        yield client


def bearer_tokens(emu: JiraCloudEmulator) -> list[str]:
    return [r.headers["Authorization"].split(" ", 1)[1] for r in emu.requests if r.via == "gateway"]


def test_requests_carry_the_access_token_and_make_no_store_reads_while_it_is_fresh(
    emu: JiraCloudEmulator, jira: JiraClient, store: CountingMemoryStore
) -> None:
    jira.myself()
    loads = store.loads

    for _ in range(5):
        assert jira.myself()["emailAddress"] == emu.default_user.email

    assert store.loads == loads
    assert set(bearer_tokens(emu)) == {store.load().access_token}


def test_one_refresh_per_expiry_window_across_several_expiries(
    emu: JiraCloudEmulator, store: CountingMemoryStore, policy: RetryPolicy
) -> None:
    # Client, provider and emulator share one clock, stopped and moved by the test: 2 s tokens, a
    # request every 0.1 s of that clock, for 5 s.
    stopped = time.time()
    emu.clock = lambda: stopped
    emu.oauth.access_token_ttl = 2
    app = emu.default_app
    with OAuthTokenClient(
        emu.auth_url, app.client_id, app.client_secret, conn_id=CONN_ID, timeout=5, retry=policy, clock=emu.clock
    ) as token_client:
        auth = JiraOAuth2Auth(RefreshingTokenProvider(store, token_client, margin=0.5), margin=0.5)
        with JiraClient(gateway_rest_url(emu.api_url, emu.cloud_id), auth, retry=policy, timeout=5) as jira:
            for _ in range(50):
                jira.myself()
                emu.advance(0.1)

    used = bearer_tokens(emu)
    # A token lives 2 s and is replaced 0.5 s before it dies: one refresh every 1.5 s of the clock.
    assert emu.stats.token_refreshes == len(set(used)) == 4
    assert emu.stats.auth_failures == 0
    # Each token was used in one run of requests, never again after its successor appeared.
    runs = [token for n, token in enumerate(used) if n == 0 or used[n - 1] != token]
    assert len(runs) == len(set(runs))
    assert [len([t for t in used if t == token]) for token in runs] == [15, 15, 15, 5]


def test_401_for_an_access_token_that_died_early_refreshes_once_and_the_request_succeeds(
    emu: JiraCloudEmulator, jira: JiraClient, provider: RefreshingTokenProvider
) -> None:
    jira.myself()
    emu.advance(3600 + 1)  # the token dies on the server while this process still thinks it fresh

    assert jira.myself()["emailAddress"] == emu.default_user.email
    assert [r.status for r in emu.requests if r.via == "gateway"] == [200, 401, 200]
    assert emu.stats.token_refreshes == 2


def test_401_after_another_process_refreshed_uses_its_token_without_refreshing(
    emu: JiraCloudEmulator, jira: JiraClient, store: CountingMemoryStore, token_client: OAuthTokenClient
) -> None:
    emu.oauth.companion_ttl = 0  # an access token dies as soon as its refresh token is exchanged
    jira.myself()
    other = RefreshingTokenProvider(store, token_client, margin=0.5)
    other.force_refresh(store.load().access_token)

    assert jira.myself()["emailAddress"] == emu.default_user.email
    assert [r.status for r in emu.requests if r.via == "gateway"] == [200, 401, 200]
    assert emu.stats.token_refreshes == 2  # this auth's first token and the other's forced refresh: no third


def test_401_that_persists_after_a_refresh_does_not_refresh_on_every_request(
    emu: JiraCloudEmulator, jira: JiraClient, provider: RefreshingTokenProvider
) -> None:
    jira.myself()
    emu.fail_next("GET", r"/myself$", status=401, times=6, body={"code": 401, "message": "Unauthorized"})

    for _ in range(3):
        with pytest.raises(JiraAuthenticationError, match="OAuth 2.0 \\(3LO\\): the access token was refused"):
            jira.myself()

    assert emu.stats.token_refreshes == 2  # the first token, and one forced refresh after the first 401
    assert [r.status for r in emu.requests if r.via == "gateway"] == [200, 401, 401, 401, 401]


def test_401_for_a_missing_scope_does_not_refresh(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, policy: RetryPolicy
) -> None:
    grant = emu.issue_grant(emu.default_app.client_id, scopes=("read:jira-work", "offline_access"))
    provider = RefreshingTokenProvider(MemoryTokenStore(CONN_ID, TokenState(grant["refresh_token"])), token_client)
    rest_url = gateway_rest_url(emu.api_url, emu.cloud_id)
    with JiraClient(rest_url, JiraOAuth2Auth(provider), retry=policy) as jira, pytest.raises(JiraScopeError) as caught:
        jira.myself()

    assert "read:jira-user" in str(caught.value)

    assert emu.stats.token_refreshes == 1  # the first token only


def test_threads_sharing_one_auth_refresh_once(
    emu: JiraCloudEmulator, jira: JiraClient, provider: RefreshingTokenProvider
) -> None:
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        for _ in range(5):
            jira.myself()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert emu.stats.token_refreshes == 1
    assert len([r for r in emu.requests if r.via == "gateway" and r.status == 200]) == 40


def test_on_token_sees_every_new_access_and_refresh_token(
    emu: JiraCloudEmulator, provider: RefreshingTokenProvider, store: CountingMemoryStore, policy: RetryPolicy
) -> None:
    seen: list[str] = []
    auth = JiraOAuth2Auth(provider, margin=0.5, on_token=seen.append)
    with JiraClient(gateway_rest_url(emu.api_url, emu.cloud_id), auth, retry=policy) as jira:
        jira.myself()
        first = store.load()
        jira.myself()
        emu.advance(3601)
        jira.myself()
    second = store.load()

    assert seen == [first.access_token, first.refresh_token, second.access_token, second.refresh_token]


def test_revoked_grant_during_a_call_raises_grant_revoked_without_tokens_in_the_message(
    emu: JiraCloudEmulator, jira: JiraClient, auth: JiraOAuth2Auth, store: CountingMemoryStore
) -> None:
    jira.myself()
    state = store.load()
    emu.revoke_grant(state.refresh_token)

    with pytest.raises(JiraGrantRevokedError) as caught:
        jira.myself()

    for text in (repr(auth), str(caught.value), repr(jira)):
        assert state.access_token not in text and state.refresh_token not in text
    assert "airflow-jira-auth authorize" in str(caught.value)


def test_on_token_gets_only_the_access_token_from_a_provider_that_keeps_the_refresh_token_elsewhere() -> None:
    class BrokerLike:
        """Like the token broker: access tokens only, the refresh token stays on the api-server."""

        def get_token(self, min_valid: float) -> TokenState:
            return TokenState(refresh_token="", access_token="at-from-broker", expires_at=time.time() + 3600)

        def force_refresh(self, rejected_access_token: str) -> TokenState:
            return self.get_token(0)

        def describe(self) -> str:
            return "a broker"

    seen: list[str] = []
    auth = JiraOAuth2Auth(BrokerLike(), on_token=seen.append)

    assert auth.access_token() == "at-from-broker"
    assert seen == ["at-from-broker"]  # no empty refresh token passed on
