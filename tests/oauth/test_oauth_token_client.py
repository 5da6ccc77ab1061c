"""``OAuthTokenClient`` against the emulator's token endpoint: rotation, consent, error mapping, retries."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oauth_support import CONN_ID, token_calls

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient, RefreshingTokenProvider
from airflow_provider_jira_auth.auth.stores.file import FileTokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import (
    JiraClientSecretError,
    JiraGrantRevokedError,
    JiraOAuthError,
    JiraTransportError,
)
from airflow_provider_jira_auth.client.retry import RetryPolicy
from airflow_provider_jira_auth.testing import JiraCloudEmulator

CONSENT_COMMAND = f"airflow-jira-auth authorize --conn-id {CONN_ID}"


def test_refresh_rotates_and_persists_the_new_refresh_token(
    emu: JiraCloudEmulator, file_store: FileTokenStore, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    provider = RefreshingTokenProvider(file_store, token_client, margin=60)

    state = provider.get_token(60)

    stored = file_store.load()
    assert stored == state
    assert stored.refresh_token != initial.refresh_token
    assert stored.access_token and stored.rotated_at is not None
    # The emulator accepts the stored token as a current one, not as a reuse of a retired one.
    token_client.refresh(stored)
    assert emu.stats.reuse_within_leeway == 0
    assert emu.stats.rejected_refreshes == 0


def test_refresh_sends_a_json_body_with_the_client_credentials(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    token_client.refresh(initial)

    (call,) = token_calls(emu)
    assert call.headers["Content-Type"] == "application/json"
    assert call.body == {
        "grant_type": "refresh_token",
        "refresh_token": initial.refresh_token,
        "client_id": emu.default_app.client_id,
        "client_secret": emu.default_app.client_secret,
    }


def test_refresh_sets_expiry_and_scopes_from_the_answer(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    emu.oauth.access_token_ttl = 120
    before = time.time()

    state = token_client.refresh(initial)

    assert before + 120 <= state.expires_at <= time.time() + 120
    assert set(state.scopes) == {"read:jira-work", "write:jira-work", "read:jira-user", "offline_access"}


def test_answer_without_refresh_token_keeps_the_old_one(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    emu.oauth.omit_refresh_token_every = 1
    before = initial.with_changes(rotated_at=1_000.0)

    state = token_client.refresh(before)

    assert state.refresh_token == initial.refresh_token
    assert state.rotated_at == 1_000.0
    assert state.access_token
    # ... and the kept one is still the current one.
    assert token_client.refresh(state).access_token != state.access_token
    assert emu.stats.rejected_refreshes == 0


def test_revoked_grant_raises_grant_revoked_with_the_consent_command_and_no_retry(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState, sleeps: list[float]
) -> None:
    emu.revoke_grant(initial.refresh_token)

    with pytest.raises(JiraGrantRevokedError) as caught:
        token_client.refresh(initial)

    message = str(caught.value)
    assert f"the grant of connection {CONN_ID!r} is no longer valid" in message
    assert "Unknown or invalid refresh token" in message
    assert message.endswith(f"a person must consent again: {CONSENT_COMMAND}")
    assert len(token_calls(emu)) == 1 and sleeps == []


def test_rotated_out_refresh_token_raises_grant_revoked(emu: JiraCloudEmulator, token_client: OAuthTokenClient) -> None:
    with pytest.raises(JiraGrantRevokedError, match="unauthorized_client: refresh_token is invalid"):
        token_client.refresh(TokenState(refresh_token="rt-never-issued"))
    assert len(token_calls(emu)) == 1


def test_wrong_client_secret_raises_client_secret_error_without_retry(
    emu: JiraCloudEmulator, initial: TokenState, policy: RetryPolicy, sleeps: list[float]
) -> None:
    client = OAuthTokenClient(emu.auth_url, emu.default_app.client_id, "not-the-secret", conn_id=CONN_ID, retry=policy)

    with pytest.raises(JiraClientSecretError) as caught:
        client.refresh(initial)

    assert "the client secret (or client id) is wrong: copy it again from the developer console" in str(caught.value)
    assert len(token_calls(emu)) == 1 and sleeps == []


def test_token_endpoint_503_is_retried_then_succeeds(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState, sleeps: list[float]
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", status=503, times=2)

    state = token_client.refresh(initial)

    assert state.access_token
    assert [call.status for call in token_calls(emu)] == [503, 503, 200]
    assert len(sleeps) == 2


def test_a_rate_limit_longer_than_the_token_endpoints_bound_is_given_up_at_once(
    emu: JiraCloudEmulator, initial: TokenState, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client's own (default) policy: a Retry-After up to its 30 s bound is waited out, a longer
    # one is not (the refresh is the caller's to retry later, well inside the reuse leeway). Its
    # waits are recorded instead of slept.
    app = emu.default_app
    client = OAuthTokenClient(emu.auth_url, app.client_id, app.client_secret, conn_id=CONN_ID, timeout=5)
    monkeypatch.setattr(client.retry._retrying, "sleep", sleeps.append)
    rate_limited = {"status": 429, "body": {"error": "rate_limited"}}

    emu.fail_next("POST", r"^/oauth/token$", headers={"Retry-After": "30"}, **rate_limited)
    state = client.refresh(initial)
    assert state.access_token and len(sleeps) == 1 and sleeps[0] >= 30

    emu.reset_requests()
    sleeps.clear()
    emu.fail_next("POST", r"^/oauth/token$", headers={"Retry-After": "31"}, times=5, **rate_limited)
    with pytest.raises(JiraOAuthError, match="HTTP 429"):
        client.refresh(state)

    assert [call.status for call in token_calls(emu)] == [429]
    assert sleeps == []


def test_dropped_connection_on_refresh_is_retried_and_the_retired_token_still_works(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", drop=True)

    state = token_client.refresh(initial)

    assert state.access_token
    assert emu.stats.rejected_refreshes == 0


def test_token_endpoint_failing_every_attempt_raises_oauth_error(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState, policy: RetryPolicy
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", status=500, times=policy.max_attempts)

    with pytest.raises(JiraOAuthError, match="kept failing .*HTTP 500") as caught:
        token_client.refresh(initial)

    assert type(caught.value) is JiraOAuthError
    assert len(token_calls(emu)) == policy.max_attempts


def test_unreachable_auth_server_raises_transport_error_after_retries(
    initial: TokenState, policy: RetryPolicy, sleeps: list[float]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OAuthTokenClient(f"http://127.0.0.1:{port}", "client", "secret-value", retry=policy, timeout=2)

    with pytest.raises(JiraTransportError, match="oauth/token"):
        client.refresh(initial)

    assert len(sleeps) == policy.max_attempts - 1


def test_proxy_page_instead_of_the_token_endpoint_says_so(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState
) -> None:
    emu.fail_next("POST", r"^/oauth/token$", status=403, body="<html>Access denied by proxy</html>")

    with pytest.raises(JiraOAuthError, match="non-JSON body.*check the connection's auth_url"):
        token_client.refresh(initial)


def test_code_exchange_after_consent_gives_a_first_state(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient
) -> None:
    redirect_uri = emu.default_app.redirect_uris[0]
    scopes = ["read:jira-work", "read:jira-user", "offline_access"]
    consent = requests.get(
        token_client.authorization_url(redirect_uri, scopes, state="s-123"), allow_redirects=False, timeout=5
    )
    back = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert back["state"] == ["s-123"]

    state = token_client.exchange_code(back["code"][0], redirect_uri)

    assert state.refresh_token and state.access_token and state.rotated_at is not None
    assert state.scopes == tuple(scopes)


def test_code_exchange_with_a_used_code_asks_for_consent_again(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient
) -> None:
    redirect_uri = emu.default_app.redirect_uris[0]
    consent = requests.get(
        token_client.authorization_url(redirect_uri, ["read:jira-work", "offline_access"], state="s"),
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    token_client.exchange_code(code, redirect_uri)

    with pytest.raises(JiraGrantRevokedError, match=f"authorization code .* {CONSENT_COMMAND}"):
        token_client.exchange_code(code, redirect_uri)


def test_consent_without_offline_access_is_refused_clearly(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient
) -> None:
    redirect_uri = emu.default_app.redirect_uris[0]
    consent = requests.get(
        token_client.authorization_url(redirect_uri, ["read:jira-work"], state="s"), allow_redirects=False, timeout=5
    )
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]

    with pytest.raises(JiraOAuthError, match="no refresh token: add the scope offline_access"):
        token_client.exchange_code(code, redirect_uri)


def test_secrets_never_appear_in_errors_or_logs(
    emu: JiraCloudEmulator, initial: TokenState, policy: RetryPolicy, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = emu.default_app
    client = OAuthTokenClient(emu.auth_url, app.client_id, app.client_secret, conn_id=CONN_ID, retry=policy)
    store = FileTokenStore(CONN_ID, tmp_path / "t.json")
    store.seed(initial)
    provider = RefreshingTokenProvider(store, client, margin=60)
    emu.fail_next("POST", r"^/oauth/token$", status=503)
    state = provider.get_token(60)
    emu.revoke_grant(state.refresh_token)
    errors = []
    for attempt in (
        lambda: provider.force_refresh(state.access_token),
        lambda: OAuthTokenClient(emu.auth_url, app.client_id, "wrong-secret-123", retry=policy).refresh(state),
        lambda: client.refresh(TokenState(refresh_token="rt-unknown-123456")),
    ):
        with pytest.raises(JiraOAuthError) as caught:
            attempt()
        errors.append(caught.value)

    secrets = {app.client_secret, "wrong-secret-123", initial.refresh_token, state.refresh_token, state.access_token}
    shown = [caplog.text, *map(str, errors), repr(client), repr(provider), repr(store), repr(state)]
    assert "Refreshed the OAuth 2.0 access token" in caplog.text
    for text in shown:
        for secret in secrets:
            assert secret not in text
