"""``JiraOAuth2Auth`` against a scripted provider: when it asks for a token, what a 401 leads to."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_provider_jira_auth.auth.oauth2 import JiraOAuth2Auth
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraOAuthError


class ScriptedProvider:
    """Hands out ``at-1``, ``at-2``, ... ; records every call."""

    def __init__(self, *, lifetime: float = 3600.0, scopes: tuple[str, ...] = ("read:jira-work",)) -> None:
        self.lifetime = lifetime
        self.scopes = scopes
        self.issued = 0
        self.calls: list[tuple[str, object]] = []
        self.refresh_token = "rt-1"
        self.same_token_on_force = False

    def _state(self) -> TokenState:
        return TokenState(
            refresh_token=self.refresh_token,
            access_token=f"at-{self.issued}",
            expires_at=time.time() + self.lifetime,
            scopes=self.scopes,
            lifetime=self.lifetime,
        )

    def get_token(self, min_valid: float) -> TokenState:
        self.calls.append(("get_token", min_valid))
        self.issued += 1
        return self._state()

    def force_refresh(self, rejected_access_token: str) -> TokenState:
        self.calls.append(("force_refresh", rejected_access_token))
        if not self.same_token_on_force:
            self.issued += 1
        return self._state()

    def describe(self) -> str:
        return "a scripted provider"


def _refused(sent: str | bytes | None, text: str = '{"code":401,"message":"Unauthorized"}') -> requests.Response:
    request = requests.Request("GET", "https://api.atlassian.com/ex/jira/x/rest/api/3/myself").prepare()
    if sent is not None:
        request.headers["Authorization"] = sent
    response = requests.Response()
    response.status_code = 401
    response._content = text.encode()
    response.request = request
    return response


def test_the_provider_is_asked_with_the_auths_margin() -> None:
    provider = ScriptedProvider()
    auth = JiraOAuth2Auth(provider, margin=42.0)

    auth.access_token()

    assert provider.calls == [("get_token", 42.0)]


def test_the_scopes_come_with_the_first_token() -> None:
    auth = JiraOAuth2Auth(ScriptedProvider(scopes=("read:jira-work", "write:jira-work")))

    auth.access_token()

    assert auth.scopes == ("read:jira-work", "write:jira-work")


def test_a_short_lived_token_is_cached_with_a_margin_scaled_to_its_lifetime() -> None:
    """A 100 s token with the default 300 s margin would be refreshed on every request."""
    provider = ScriptedProvider(lifetime=100.0)
    auth = JiraOAuth2Auth(provider)

    assert auth.access_token() == auth.access_token() == "at-1"
    assert len(provider.calls) == 1


def test_an_empty_access_token_from_the_provider_is_an_error_naming_the_provider() -> None:
    class Empty(ScriptedProvider):
        def get_token(self, min_valid: float) -> TokenState:
            return TokenState(refresh_token="rt", access_token="", expires_at=time.time() + 3600)

    with pytest.raises(JiraOAuthError, match=r"the token provider \(a scripted provider\) returned no access token"):
        JiraOAuth2Auth(Empty()).access_token()


def test_on_token_hears_of_a_refresh_token_once_however_often_it_comes_back() -> None:
    provider = ScriptedProvider()
    seen: list[str] = []
    now = [time.time()]
    auth = JiraOAuth2Auth(provider, on_token=seen.append, clock=lambda: now[0])

    auth.access_token()
    auth.handle_unauthorized(_refused("Bearer at-1"))  # at-2, still rt-1
    provider.refresh_token = "rt-2"
    auth.handle_unauthorized(_refused("Bearer at-1"))  # at-2 is newer: nothing asked
    now[0] += 3600  # at-2 has expired
    auth.access_token()  # at-3 with rt-2

    assert seen == ["at-1", "rt-1", "at-2", "at-3", "rt-2"]


def test_a_401_for_a_missing_scope_or_without_a_bearer_token_is_not_retried() -> None:
    provider = ScriptedProvider()
    auth = JiraOAuth2Auth(provider)
    auth.access_token()

    assert auth.handle_unauthorized(_refused("Bearer at-1", '{"message":"Unauthorized; scope does not match"}')) is False
    assert auth.handle_unauthorized(_refused(None)) is False
    assert auth.handle_unauthorized(_refused("Basic dXNlcjp0b2tlbg==")) is False
    no_request = _refused("Bearer at-1")
    no_request.request = None
    assert auth.handle_unauthorized(no_request) is False
    assert [name for name, _ in provider.calls] == ["get_token"]


def test_a_401_header_given_as_bytes_is_read() -> None:
    provider = ScriptedProvider()
    auth = JiraOAuth2Auth(provider)
    auth.access_token()

    assert auth.handle_unauthorized(_refused(b"Bearer at-1")) is True
    assert provider.calls[-1] == ("force_refresh", "at-1")


def test_a_401_for_an_older_token_uses_the_newer_one_without_refreshing() -> None:
    provider = ScriptedProvider()
    auth = JiraOAuth2Auth(provider)
    auth.access_token()
    auth.handle_unauthorized(_refused("Bearer at-1"))  # now at-2

    assert auth.handle_unauthorized(_refused("Bearer at-1")) is True  # another thread's request
    assert [name for name, _ in provider.calls] == ["get_token", "force_refresh"]


def test_a_401_when_the_provider_has_no_other_token_is_final() -> None:
    provider = ScriptedProvider()
    provider.same_token_on_force = True
    auth = JiraOAuth2Auth(provider)
    auth.access_token()

    assert auth.handle_unauthorized(_refused("Bearer at-1")) is False


def test_a_token_from_a_forced_refresh_refused_again_is_not_refreshed_again() -> None:
    provider = ScriptedProvider()
    auth = JiraOAuth2Auth(provider)
    auth.access_token()

    assert auth.handle_unauthorized(_refused("Bearer at-1")) is True
    assert auth.handle_unauthorized(_refused("Bearer at-2")) is False
    assert [name for name, _ in provider.calls] == ["get_token", "force_refresh"]


def _answer(status: int, text: str = "{}") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = text.encode()
    return response


def _run_flow(auth: JiraOAuth2Auth, *statuses: int) -> list[str]:
    """Drive ``auth.auth_flow`` as a client does, answering with ``statuses``; the headers sent."""
    request = requests.Request("GET", "https://api.atlassian.com/ex/jira/x/rest/api/3/myself").prepare()
    flow = auth.auth_flow(request)
    sent = [next(flow).headers["Authorization"]]
    for status in statuses:
        try:
            sent.append(flow.send(_answer(status)).headers["Authorization"])
        except StopIteration:
            break
    return sent


def test_the_flow_sends_once_when_the_answer_is_not_a_401() -> None:
    provider = ScriptedProvider()

    assert _run_flow(JiraOAuth2Auth(provider), 200) == ["Bearer at-1"]
    assert [name for name, _ in provider.calls] == ["get_token"]


def test_the_flow_sends_again_once_with_a_refreshed_token_after_a_401() -> None:
    provider = ScriptedProvider()

    assert _run_flow(JiraOAuth2Auth(provider), 401, 401) == ["Bearer at-1", "Bearer at-2"]
    assert provider.calls[1:] == [("force_refresh", "at-1")]


def test_the_basic_flow_puts_its_header_on_and_sends_once() -> None:
    from airflow_provider_jira_auth.auth.basic import JiraBasicAuth

    auth = JiraBasicAuth("me@example.com", "api-token-123")
    request = requests.Request("GET", "https://example.atlassian.net/rest/api/3/myself").prepare()
    flow = auth.auth_flow(request)

    assert next(flow).headers["Authorization"] == "Basic bWVAZXhhbXBsZS5jb206YXBpLXRva2VuLTEyMw=="
    with pytest.raises(StopIteration):
        flow.send(_answer(401))
    assert auth(requests.Request("GET", "https://x").prepare()).headers["Authorization"].startswith("Basic ")
