"""``JiraClient.request``: paths, bodies, headers, empty answers and the one 401 re-send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from requests import PreparedRequest
from requests.auth import AuthBase

from airflow_provider_jira_auth.client.auth_flow import JiraAuth
from airflow_provider_jira_auth.client import (
    JiraAuthenticationError,
    JiraClient,
    JiraConfigError,
    JiraTransportError,
    RetryPolicy,
)
from tests.tls_front import TlsFront

from client_scripted_server import BASIC_HEADER_VALUE, Reply, ScriptedServer


@pytest.mark.parametrize("path", ["myself", "/myself", "rest/api/3/myself", "/rest/api/3/myself"])
def test_path_is_relative_to_the_rest_root(client: JiraClient, server: ScriptedServer, path: str) -> None:
    server.queue(Reply(200, {}))

    client.request("GET", path)

    assert server.requests[0].path == "/rest/api/3/myself"


@pytest.mark.parametrize("path", ["https://evil.example.com/rest/api/3/myself", "//evil.example.com/myself"])
def test_absolute_url_is_rejected(client: JiraClient, server: ScriptedServer, path: str) -> None:
    with pytest.raises(ValueError, match="absolute URL"):
        client.request("GET", path)
    assert server.requests == []


def test_another_rest_api_is_rejected(client: JiraClient) -> None:
    with pytest.raises(ValueError, match="REST API v3"):
        client.request("GET", "rest/api/2/search")


def test_method_is_case_insensitive(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200, {}))

    client.request("get", "myself")

    assert server.requests[0].method == "GET"


def test_json_body_and_params_are_sent(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200, {"ok": True}))

    assert client.request("POST", "jql/parse", params={"validation": "strict"}, json={"queries": ["a = b"]}) == {
        "ok": True
    }

    sent = server.requests[0]
    assert sent.query == {"validation": ["strict"]}
    assert sent.json == {"queries": ["a = b"]}
    assert sent.headers["Content-Type"] == "application/json"


def test_204_returns_none(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(204))

    assert client.request("PUT", "issue/ENG-1", json={"fields": {"summary": "x"}}) is None


def test_empty_200_body_returns_none(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200))

    assert client.request("DELETE", "issue/ENG-1") is None


def test_every_request_carries_auth_accept_and_user_agent(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200, {}))

    client.myself()

    headers = server.requests[0].headers
    assert headers["Authorization"] == f"Basic {BASIC_HEADER_VALUE}"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("airflow-provider-jira-auth/")


def test_custom_user_agent_is_sent(server: ScriptedServer, policy: RetryPolicy) -> None:
    server.queue(Reply(200, {}))

    with JiraClient(server.rest_url, None, retry=policy, user_agent="my-dag/1.0") as jira:
        jira.server_info()

    assert server.requests[0].headers["User-Agent"] == "my-dag/1.0"
    assert "Authorization" not in server.requests[0].headers


def test_connections_are_pooled_and_reused(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200, {}), Reply(204), Reply(200, {}))

    client.myself()
    client.update_issue("ENG-1", fields={"summary": "x"})
    client.myself()

    assert len({r.client_port for r in server.requests}) == 1


def test_given_session_is_used_and_not_closed(server: ScriptedServer, policy: RetryPolicy) -> None:
    session = requests.Session()
    closed = []
    session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    server.queue(Reply(200, {}))

    with JiraClient(server.rest_url, None, retry=policy, session=session) as jira:
        jira.myself()

    assert jira.session is session
    assert closed == []


def test_the_clients_own_session_is_closed_with_it(
    server: ScriptedServer, policy: RetryPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[bool] = []
    monkeypatch.setattr(requests.Session, "close", lambda self: closed.append(True))
    server.queue(Reply(200, {}))

    with JiraClient(server.rest_url, None, retry=policy) as jira:
        jira.myself()
        assert closed == []

    assert closed == [True]


@pytest.fixture
def tls_front(server: ScriptedServer, tmp_path: Path) -> Iterator[TlsFront]:
    with TlsFront(urlsplit(server.url).port or 0, tmp_path) as front:
        yield front


def test_a_client_trusting_the_servers_ca_talks_to_it_over_tls(
    server: ScriptedServer, tls_front: TlsFront, policy: RetryPolicy
) -> None:
    server.queue(Reply(200, {"accountId": "a-1"}))

    with JiraClient(f"{tls_front.url}/rest/api/3", None, retry=policy, verify=str(tls_front.ca_file)) as jira:
        assert jira.myself() == {"accountId": "a-1"}

    assert [r.path for r in server.requests] == ["/rest/api/3/myself"]


def test_a_certificate_the_tls_setting_does_not_trust_is_refused_without_retrying(
    server: ScriptedServer, tls_front: TlsFront, policy: RetryPolicy, sleeps: list[float]
) -> None:
    # verify=True: the system's CA bundle, which does not hold the server's CA.
    with JiraClient(f"{tls_front.url}/rest/api/3", None, retry=policy) as jira:
        with pytest.raises(JiraTransportError, match="GET myself: no answer from Jira .*CERTIFICATE_VERIFY_FAILED"):
            jira.myself()

    assert server.requests == [] and sleeps == []


def test_verification_turned_off_accepts_any_certificate(
    server: ScriptedServer, tls_front: TlsFront, policy: RetryPolicy
) -> None:
    server.queue(Reply(200, {}))

    with pytest.warns(Warning, match="Unverified HTTPS request"):
        with JiraClient(f"{tls_front.url}/rest/api/3", None, retry=policy, verify=False) as jira:
            jira.myself()

    assert len(server.requests) == 1


def test_insecure_rest_url_is_rejected() -> None:
    with pytest.raises(JiraConfigError, match="loopback"):
        JiraClient("http://example.atlassian.net/rest/api/3", None)


class RefreshingAuth(JiraAuth):
    """A 3LO-like auth: a 401 makes it fetch a fresh token (once)."""

    def __init__(self, refresh_succeeds: bool = True) -> None:
        self.token = "old-access-token-000"
        self.refresh_succeeds = refresh_succeeds
        self.calls: list[int] = []

    def auth_flow(self, request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            self.calls.append(response.status_code)
            if self.refresh_succeeds:
                self.token = "new-access-token-111"
                request.headers["Authorization"] = f"Bearer {self.token}"
                yield request


class LegacyRefreshingAuth(AuthBase):
    """An auth written for earlier releases: ``handle_unauthorized`` instead of a flow."""

    def __init__(self) -> None:
        self.token = "old-access-token-000"
        self.calls: list[int] = []

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request

    def handle_unauthorized(self, response: requests.Response) -> bool:
        self.calls.append(response.status_code)
        self.token = "new-access-token-111"
        return True


def test_an_auth_with_the_old_handle_unauthorized_still_gets_its_one_resend(
    server: ScriptedServer, policy: RetryPolicy
) -> None:
    auth = LegacyRefreshingAuth()
    server.queue(Reply(401), Reply(200, {"accountId": "a"}))

    with pytest.warns(DeprecationWarning, match="handle_unauthorized is deprecated"):
        jira = JiraClient(server.rest_url, auth, retry=policy)
    with jira:
        assert jira.myself() == {"accountId": "a"}

    assert auth.calls == [401]
    assert [r.headers["Authorization"] for r in server.requests] == [
        "Bearer old-access-token-000",
        "Bearer new-access-token-111",
    ]


def test_unauthorized_is_handed_to_the_auth_and_resent_once_with_fresh_auth(
    server: ScriptedServer, policy: RetryPolicy
) -> None:
    auth = RefreshingAuth()
    server.queue(Reply(401), Reply(201, {"id": "1", "key": "ENG-1", "self": "x"}))

    with JiraClient(server.rest_url, auth, retry=policy) as jira:
        assert jira.create_issue({"summary": "x"})["key"] == "ENG-1"

    assert auth.calls == [401]
    assert [r.headers["Authorization"] for r in server.requests] == [
        "Bearer old-access-token-000",
        "Bearer new-access-token-111",
    ]


def test_second_unauthorized_after_refresh_raises(server: ScriptedServer, policy: RetryPolicy) -> None:
    auth = RefreshingAuth()
    server.queue(Reply(401), Reply(401), Reply(200, {}))

    with JiraClient(server.rest_url, auth, retry=policy) as jira, pytest.raises(JiraAuthenticationError):
        jira.myself()

    assert auth.calls == [401]
    assert len(server.requests) == 2


def test_unauthorized_is_not_resent_when_the_auth_declines(server: ScriptedServer, policy: RetryPolicy) -> None:
    auth = RefreshingAuth(refresh_succeeds=False)
    server.queue(Reply(401), Reply(200, {}))

    with JiraClient(server.rest_url, auth, retry=policy) as jira, pytest.raises(JiraAuthenticationError):
        jira.myself()

    assert len(server.requests) == 1


@pytest.mark.parametrize("header", ["Bearer pasted-token-123\n", "Bearer pasted-token-123\u2019"])
def test_unsendable_credential_header_is_a_config_error_without_the_value(
    server: ScriptedServer, policy: RetryPolicy, header: str
) -> None:
    class PastedTokenAuth(AuthBase):
        def __call__(self, request: PreparedRequest) -> PreparedRequest:
            request.headers["Authorization"] = header
            return request

    with JiraClient(server.rest_url, PastedTokenAuth(), retry=policy) as jira:
        with pytest.raises(JiraConfigError) as caught:
            jira.myself()

    assert "pasted-token-123" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert server.requests == []


def test_timeout_and_verify_are_passed_on_every_request(server: ScriptedServer, policy: RetryPolicy) -> None:
    class RecordingSession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.sent: list[dict] = []

        def send(self, request: PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
            self.sent.append(kwargs)
            return super().send(request, **kwargs)

    session = RecordingSession()
    server.queue(Reply(503), Reply(200, {}))

    with JiraClient(
        server.rest_url, None, retry=policy, session=session, timeout=(3.0, 20.0), verify="/etc/ca.pem"
    ) as jira:
        jira.myself()

    assert [(kwargs["timeout"], kwargs["verify"]) for kwargs in session.sent] == [((3.0, 20.0), "/etc/ca.pem")] * 2
