"""What the token client puts on the wire, and where it sends it: over real HTTP to the emulator,
through a TLS front with a certificate of its own where verification matters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from oauth_support import CONN_ID, token_calls

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraConfigError, JiraOAuthError, JiraTransportError
from airflow_provider_jira_auth.client.retry import RetryPolicy
from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.tls_front import TlsFront


@pytest.fixture
def elsewhere() -> Iterator[JiraCloudEmulator]:
    """Another server, where a redirect from the token endpoint points."""
    with JiraCloudEmulator() as other:
        yield other


@pytest.fixture
def front(emu: JiraCloudEmulator, tmp_path: Path) -> Iterator[TlsFront]:
    with TlsFront(urlsplit(emu.url).port or 0, tmp_path) as tls:
        yield tls


def _client(emu: JiraCloudEmulator, policy: RetryPolicy, **kwargs: Any) -> OAuthTokenClient:
    app = emu.default_app
    kwargs.setdefault("auth_url", emu.auth_url)
    return OAuthTokenClient(
        client_id=app.client_id, client_secret=app.client_secret, conn_id=CONN_ID, timeout=5, retry=policy, **kwargs
    )


# -- redirects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307, 308])
def test_a_redirected_refresh_is_not_followed_and_its_secrets_stay_home(
    emu: JiraCloudEmulator,
    elsewhere: JiraCloudEmulator,
    token_client: OAuthTokenClient,
    initial: TokenState,
    status: int,
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", status=status, headers={"Location": f"{elsewhere.auth_url}/oauth/token"})

    with pytest.raises(JiraOAuthError, match=f"HTTP {status}"):
        token_client.refresh(initial)

    assert elsewhere.requests == []
    assert [call.status for call in token_calls(emu)] == [status]


def test_a_redirected_code_exchange_is_not_followed(
    emu: JiraCloudEmulator, elsewhere: JiraCloudEmulator, token_client: OAuthTokenClient
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", status=307, headers={"Location": f"{elsewhere.auth_url}/oauth/token"})

    with pytest.raises(JiraOAuthError, match="HTTP 307"):
        token_client.exchange_code("code-from-the-consent", emu.default_app.redirect_uris[0])

    assert elsewhere.requests == []


# -- headers --------------------------------------------------------------------------------------


def test_a_token_request_asks_for_json_and_names_the_provider(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    token_client.refresh(initial)

    (call,) = token_calls(emu)
    assert call.headers["Accept"] == "application/json"
    assert call.headers["User-Agent"].startswith("airflow-provider-jira-auth/")


# -- TLS verification -----------------------------------------------------------------------------


def test_a_client_trusting_the_servers_ca_refreshes_and_lists_sites_over_tls(
    emu: JiraCloudEmulator, front: TlsFront, initial: TokenState, policy: RetryPolicy
) -> None:
    with _client(emu, policy, auth_url=front.url, verify=str(front.ca_file)) as client:
        state = client.refresh(initial)
        sites = client.accessible_resources(state.access_token or "", front.url)

    assert state.access_token and state.refresh_token != initial.refresh_token
    assert emu.cloud_id in [site["id"] for site in sites]


def test_a_certificate_the_tls_setting_does_not_trust_is_refused_without_retrying(
    emu: JiraCloudEmulator, front: TlsFront, initial: TokenState, policy: RetryPolicy, sleeps: list[float]
) -> None:
    # By default the system's CA bundle is used, which does not hold the front's CA.
    with _client(emu, policy, auth_url=front.url) as client:
        with pytest.raises(JiraTransportError) as caught:
            client.refresh(initial)

    # The TLS error itself, not requests' "Max retries exceeded" wrapper around it.
    assert str(caught.value).startswith(f"POST {front.url}/oauth/token: no answer from Jira (SSLError: ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value) and "Max retries" not in str(caught.value)
    assert token_calls(emu) == []
    assert sleeps == []


def test_verification_turned_off_accepts_any_certificate(
    emu: JiraCloudEmulator, front: TlsFront, initial: TokenState, policy: RetryPolicy
) -> None:
    with pytest.warns(Warning, match="Unverified HTTPS request"):
        with _client(emu, policy, auth_url=front.url, verify=False) as client:
            state = client.refresh(initial)

    assert state.access_token
    assert len(token_calls(emu)) == 1


# -- the session ----------------------------------------------------------------------------------


class SpySession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_a_session_passed_in_is_used_and_left_open(
    emu: JiraCloudEmulator, initial: TokenState, policy: RetryPolicy
) -> None:
    session = SpySession()

    with _client(emu, policy, session=session) as client:
        client.refresh(initial)

    assert session.closed == 0
    assert len(token_calls(emu)) == 1
    assert session.post(f"{emu.auth_url}/oauth/token", json={}, timeout=5).status_code != 200  # still usable


def test_the_clients_own_session_is_closed_with_it(
    emu: JiraCloudEmulator, initial: TokenState, policy: RetryPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[bool] = []
    monkeypatch.setattr(requests.Session, "close", lambda self: closed.append(True))

    with _client(emu, policy) as client:
        client.refresh(initial)
        assert closed == []

    assert closed == [True]


# -- reading the answer ---------------------------------------------------------------------------


def test_an_answer_without_scope_keeps_the_granted_scopes_and_records_the_lifetime(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    before = initial.with_changes(scopes=("read:jira-work", "offline_access"), rotated_at=1_000.0)
    emu.fail_next("POST", r"^/oauth/token$", status=200, body={"access_token": "at-without-scope", "expires_in": 90})
    sent = time.time()

    state = token_client.refresh(before)

    assert state.access_token == "at-without-scope"
    assert state.scopes == ("read:jira-work", "offline_access")
    assert state.lifetime == 90.0
    assert sent + 90 <= state.expires_at <= time.time() + 90
    assert (state.refresh_token, state.rotated_at) == (initial.refresh_token, 1_000.0)


def test_an_answer_with_scope_and_lifetime_replaces_both(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    emu.oauth.access_token_ttl = 120
    before = initial.with_changes(scopes=("old:scope",), lifetime=3600.0)

    state = token_client.refresh(before)

    assert state.lifetime == 120.0
    assert set(state.scopes) == {"read:jira-work", "write:jira-work", "read:jira-user", "offline_access"}


def test_an_answer_without_expires_in_is_taken_as_atlassians_hour(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", status=200, body={"access_token": "at-no-expiry", "scope": "read:me"})
    sent = time.time()

    state = token_client.refresh(initial)

    assert state.lifetime == 3600.0
    assert sent + 3600 <= state.expires_at <= time.time() + 3600
    assert state.scopes == ("read:me",)


def test_an_expires_in_that_is_not_a_number_is_refused_naming_the_connection(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", status=200, body={"access_token": "at-odd", "expires_in": "soon"})

    says = f"token endpoint of connection '{CONN_ID}' sent an expires_in that is not a number"
    with pytest.raises(JiraOAuthError, match=says):
        token_client.refresh(initial)


@pytest.mark.parametrize("answer", [{"token_type": "Bearer", "expires_in": 3600}, ["access_token"]])
def test_a_200_without_an_access_token_points_at_the_auth_url(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState, answer: Any
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", status=200, body=answer)

    with pytest.raises(JiraOAuthError) as caught:
        token_client.refresh(initial)

    assert str(caught.value) == (
        f"the token endpoint of connection '{CONN_ID}' answered HTTP 200 without an access token: a proxy may be "
        "answering instead of Atlassian; check the connection's auth_url"
    )


def test_a_code_exchange_answered_without_scope_has_no_scopes(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient
) -> None:
    answer = {"access_token": "at-first-123", "refresh_token": "rt-first-123", "expires_in": 3600}
    emu.fail_next("POST", r"^/oauth/token$", status=200, body=answer)

    state = token_client.exchange_code("code-from-the-consent", emu.default_app.redirect_uris[0])

    assert (state.refresh_token, state.access_token, state.scopes) == ("rt-first-123", "at-first-123", ())


def test_a_bad_auth_url_is_reported_as_the_auth_url_field() -> None:
    with pytest.raises(JiraConfigError) as caught:
        OAuthTokenClient("http://auth.example.com", "client-id", "client-secret")

    assert caught.value.field == "extra.auth_url"
    assert str(caught.value).startswith("Jira connection field ")
    assert "(extra.auth_url): http:// is only allowed for loopback hosts" in str(caught.value)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "proxy-page"])
def test_a_refusal_that_echoes_the_request_never_shows_its_secrets(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState, as_json: bool
) -> None:
    secret = emu.default_app.client_secret
    echoed = f"refresh_token={initial.refresh_token}&client_secret={secret}"
    body = {"error": "invalid_request", "error_description": echoed} if as_json else f"<html>{echoed}</html>"
    emu.fail_next("POST", r"^/oauth/token$", status=400, body=body)

    with pytest.raises(JiraOAuthError) as caught:
        token_client.refresh(initial)

    assert "refresh_token=[redacted]&client_secret=[redacted]" in str(caught.value)
    assert initial.refresh_token not in str(caught.value) and secret not in str(caught.value)
