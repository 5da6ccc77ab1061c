"""The one error mapping: every status and body becomes a typed error that names the fix and no secret."""

from __future__ import annotations

from typing import Any

import pytest
from requests import PreparedRequest
from requests.auth import AuthBase, HTTPBasicAuth

from airflow_provider_jira_auth.client import (
    JiraAuthenticationError,
    JiraClient,
    JiraError,
    JiraGoneError,
    JiraHTTPError,
    JiraNotFoundError,
    JiraPermissionError,
    JiraRateLimitError,
    JiraResponseError,
    JiraScopeError,
    JiraServerError,
    JiraTransportError,
    JiraValidationError,
    RetryPolicy,
)

from client_scripted_server import BASIC_HEADER_VALUE, EMAIL, TOKEN, Reply, ScriptedServer

HTML = "<html><body><h1>Please sign in to the corporate proxy</h1></body></html>"
JQL_ERROR = {"errorMessages": ["Error in the JQL Query: 'ORDER' is a reserved word."], "errors": {}}

ERROR_TABLE: list[tuple[Reply, type[JiraError], list[str]]] = [
    (Reply(400, JQL_ERROR), JiraValidationError, ["HTTP 400", "'ORDER' is a reserved word"]),
    (
        Reply(400, {"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}}),
        JiraValidationError,
        ["summary: You must specify a summary"],
    ),
    (Reply(401, {"errorMessages": ["You are not authenticated."]}), JiraAuthenticationError, ["HTTP 401", "API token"]),
    (Reply(401), JiraAuthenticationError, ["HTTP 401", "API token"]),
    (
        Reply(401, {"code": 401, "message": "Unauthorized; scope does not match"}),
        JiraScopeError,
        ["scope does not match", "read:jira-work"],
    ),
    (
        Reply(403, {"errorMessages": ["You do not have permission to see this."]}),
        JiraPermissionError,
        ["HTTP 403", "permission"],
    ),
    (
        Reply(404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}),
        JiraNotFoundError,
        ["HTTP 404", "Issue does not exist"],
    ),
    (
        Reply(410, {"errorMessages": ["The requested API has been removed."]}),
        JiraGoneError,
        ["HTTP 410", "search_issues()"],
    ),
    (
        Reply(
            429,
            {"errorMessages": ["Rate limit exceeded."]},
            headers={
                "Retry-After": "600",
                "RateLimit-Reason": "jira-quota-tenant-based",
                "X-RateLimit-Reset": "2026-01-01T10:00Z",
            },
        ),
        JiraRateLimitError,
        ["HTTP 429", "jira-quota-tenant-based", "2026-01-01T10:00Z"],
    ),
    (Reply(500, {"errorMessages": ["Internal server error"]}), JiraServerError, ["HTTP 500", "transient"]),
    (Reply(502, body="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}), JiraServerError, ["HTTP 502"]),
    (Reply(409, {"errorMessages": ["Conflict"]}), JiraHTTPError, ["HTTP 409", "Conflict"]),
    (
        Reply(404, body=HTML, headers={"Content-Type": "text/html"}),
        JiraResponseError,
        ["non-JSON", "text/html", "proxy"],
    ),
    (
        Reply(200, body=HTML, headers={"Content-Type": "text/html"}),
        JiraResponseError,
        ["HTTP 200", "non-JSON", "corporate proxy"],
    ),
]


@pytest.fixture
def no_retry(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(max_attempts=1, sleep=sleeps.append)


@pytest.mark.parametrize(("reply", "expected", "fragments"), ERROR_TABLE)
def test_status_and_body_map_to_typed_error(
    server: ScriptedServer, auth: AuthBase, no_retry: RetryPolicy, reply: Reply, expected: type, fragments: list[str]
) -> None:
    server.queue(reply)

    with JiraClient(server.rest_url, auth, retry=no_retry) as jira, pytest.raises(JiraError) as caught:
        jira.request("GET", "search/jql", params={"jql": "project = ENG"})

    assert type(caught.value) is expected
    assert "GET search/jql" in str(caught.value)
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize(("reply", "expected", "fragments"), ERROR_TABLE)
def test_no_error_message_contains_the_credentials(
    server: ScriptedServer, no_retry: RetryPolicy, reply: Reply, expected: type, fragments: list[str]
) -> None:
    server.queue(reply)

    with JiraClient(server.rest_url, HTTPBasicAuth(EMAIL, TOKEN), retry=no_retry) as jira:
        with pytest.raises(JiraError) as caught:
            jira.myself()

    assert_no_secret(caught.value)


def test_credentials_echoed_in_an_error_body_are_redacted(
    server: ScriptedServer, auth: AuthBase, no_retry: RetryPolicy
) -> None:
    def echo(request: Any) -> Reply:
        return Reply(400, {"errorMessages": [f"bad header: {request.headers['Authorization']}"]})

    server.queue(echo)

    with JiraClient(server.rest_url, auth, retry=no_retry) as jira, pytest.raises(JiraValidationError) as caught:
        jira.myself()

    assert "[redacted]" in str(caught.value)
    assert_no_secret(caught.value)


def test_credentials_echoed_in_a_non_json_body_are_redacted(
    server: ScriptedServer, auth: AuthBase, no_retry: RetryPolicy
) -> None:
    server.queue(lambda request: Reply(403, body=f"<pre>{request.headers['Authorization']}</pre>"))

    with JiraClient(server.rest_url, auth, retry=no_retry) as jira, pytest.raises(JiraResponseError) as caught:
        jira.myself()

    assert_no_secret(caught.value)


def test_secret_values_of_the_auth_are_redacted(server: ScriptedServer, no_retry: RetryPolicy) -> None:
    class BearerAuth(AuthBase):
        secret_values = ("access-token-0123456789",)

        def __call__(self, request: PreparedRequest) -> PreparedRequest:
            request.headers["Authorization"] = "Bearer access-token-0123456789"
            return request

    server.queue(Reply(400, {"errorMessages": ["token access-token-0123456789 was refused"]}))

    with (
        JiraClient(server.rest_url, BearerAuth(), retry=no_retry) as jira,
        pytest.raises(JiraValidationError) as caught,
    ):
        jira.myself()

    assert "access-token-0123456789" not in str(caught.value)


def test_transport_error_contains_no_credentials(auth: AuthBase, policy: RetryPolicy) -> None:
    with JiraClient("http://127.0.0.1:9/rest/api/3", auth, retry=policy) as jira:
        with pytest.raises(JiraTransportError) as caught:
            jira.myself()

    assert_no_secret(caught.value)


def test_error_headers_keep_rate_limit_details_but_not_cookies(
    server: ScriptedServer, auth: AuthBase, no_retry: RetryPolicy
) -> None:
    server.queue(
        Reply(403, {"errorMessages": ["no"]}, headers={"Set-Cookie": "atl.xsrf.token=abc", "X-AREQUESTID": "r1"})
    )

    with JiraClient(server.rest_url, auth, retry=no_retry) as jira, pytest.raises(JiraPermissionError) as caught:
        jira.myself()

    assert caught.value.headers.get("X-AREQUESTID") == "r1"
    assert "Set-Cookie" not in caught.value.headers


def test_validation_error_keeps_what_jira_said(server: ScriptedServer, client: JiraClient) -> None:
    server.queue(Reply(400, {"errorMessages": ["one"], "errors": {"summary": "required"}}))

    with pytest.raises(JiraValidationError) as caught:
        client.create_issue({"summary": ""})

    assert caught.value.error_messages == ["one"]
    assert caught.value.errors == {"summary": "required"}
    assert caught.value.status == 400


def test_unauthorized_hint_of_the_auth_is_appended(server: ScriptedServer, no_retry: RetryPolicy) -> None:
    class ScopedTokenAuth(AuthBase):
        unauthorized_hint = "a scoped API token works only through the gateway: set cloud_id"

        def __call__(self, request: PreparedRequest) -> PreparedRequest:
            return request

    server.queue(Reply(401))

    with JiraClient(server.rest_url, ScopedTokenAuth(), retry=no_retry) as jira:
        with pytest.raises(JiraAuthenticationError) as caught:
            jira.myself()

    assert str(caught.value).endswith("a scoped API token works only through the gateway: set cloud_id")


def test_scope_error_names_the_missing_scope(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(401, {"code": 401, "message": "Unauthorized; scope does not match"}))

    with pytest.raises(JiraScopeError) as caught:
        client.create_issue({"summary": "x"})

    assert caught.value.scope == "write:jira-work"


def test_refused_login_answered_anonymously_is_an_authentication_error(
    client: JiraClient, server: ScriptedServer
) -> None:
    server.queue(Reply(200, {"issues": [], "isLast": True}, headers={"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"}))

    with pytest.raises(JiraAuthenticationError) as caught:
        list(client.search_issues("project = ENG"))

    assert "anonymous" in str(caught.value)


def assert_no_secret(exc: BaseException) -> None:
    """Neither the token nor the encoded header appears anywhere in the exception or its chain."""
    seen: BaseException | None = exc
    while seen is not None:
        for text in (str(seen), repr(seen), repr(getattr(seen, "__dict__", {}))):
            assert TOKEN not in text
            assert BASIC_HEADER_VALUE not in text
        seen = seen.__cause__ or seen.__context__
