"""The token client's reading of answers the emulator does not give: refusals by status alone,
rate limits, odd bodies, and the sites endpoint failing. A recording session stands in for HTTP."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient, pick_site
from airflow_provider_jira_auth.auth.token_endpoint import token_endpoint_error
from airflow_provider_jira_auth.client.errors import (
    JiraClientSecretError,
    JiraConfigError,
    JiraGrantRevokedError,
    JiraOAuthError,
    JiraTransportError,
)
from airflow_provider_jira_auth.client.retry import RetryPolicy

SECRET = "client-secret-value"
ACCESS = "access-token-value"
API = "https://api.atlassian.com"


def _response(status: int, body: Any = None, *, text: str | None = None, content_type: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    raw = text if text is not None else ("" if body is None else json.dumps(body))
    response._content = raw.encode()
    if content_type is not None:
        response.headers["Content-Type"] = content_type
    elif body is not None:
        response.headers["Content-Type"] = "application/json"
    return response


class RecordingSession:
    """Answers from a script, one per request; keeps what was sent."""

    def __init__(self, *answers: requests.Response | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def _next(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        self.calls.append((method, url, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._next("GET", url, kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._next("POST", url, kwargs)


def _client(session: RecordingSession, conn_id: str | None = "jira_oauth") -> OAuthTokenClient:
    return OAuthTokenClient(
        "https://auth.atlassian.com",
        "client-id",
        SECRET,
        conn_id=conn_id,
        timeout=7,
        verify="/etc/ca.pem",
        retry=RetryPolicy(max_attempts=2, sleep=lambda _: None),
        session=session,  # type: ignore[arg-type]
    )


# -- token_endpoint_error -------------------------------------------------------------------------


def test_a_401_without_an_error_code_means_the_client_credentials() -> None:
    error = token_endpoint_error(_response(401), conn_id="c", grant_type="refresh_token")

    assert isinstance(error, JiraClientSecretError)
    assert "(HTTP 401)" in str(error)


def test_a_400_without_an_error_code_is_a_plain_refusal_naming_the_grant_type() -> None:
    error = token_endpoint_error(_response(400, {"message": "nope"}), conn_id="c", grant_type="refresh_token")

    assert type(error) is JiraOAuthError
    assert str(error) == "the token endpoint refused the refresh_token request of connection 'c' (HTTP 400)"


def test_an_error_code_and_description_are_quoted_and_an_empty_description_leaves_no_colon() -> None:
    described = token_endpoint_error(
        _response(400, {"error": "invalid_request", "error_description": "missing field"}), conn_id="c", grant_type="refresh_token"
    )
    bare = token_endpoint_error(_response(403, {"error": "invalid_scope"}), conn_id=None, grant_type="authorization_code")

    assert "(HTTP 400 invalid_request: missing field)" in str(described)
    assert str(bare) == "the token endpoint refused the authorization_code request of this connection (HTTP 403 invalid_scope)"


def test_a_rate_limit_that_outlasted_the_retries_says_a_later_retry_gets_through() -> None:
    error = token_endpoint_error(_response(429, {"error": "rate_limited"}), conn_id="c", grant_type="refresh_token")
    refusal = token_endpoint_error(_response(404, {}), conn_id="c", grant_type="refresh_token")

    assert "kept failing (HTTP 429 rate_limited) after the retries" in str(error)
    assert "kept failing" not in str(refusal)


def test_a_non_json_refusal_names_its_content_type_and_quotes_its_start() -> None:
    page = "<html>" + "p" * 300
    with_type = token_endpoint_error(_response(403, text=page, content_type="text/html"), conn_id="c", grant_type="x")
    without_type = token_endpoint_error(_response(403, text=page), conn_id="c", grant_type="x")

    assert "HTTP 403 with a non-JSON body (text/html): " + repr(page[:200]) + ". A proxy" in str(with_type)
    assert "(no content type)" in str(without_type)


def test_an_empty_refusal_is_not_taken_for_a_non_json_body() -> None:
    error = token_endpoint_error(_response(400, text="   "), conn_id="c", grant_type="refresh_token")

    assert "non-JSON" not in str(error)
    assert str(error).endswith("(HTTP 400)")


def test_a_refused_code_explains_how_codes_work() -> None:
    error = token_endpoint_error(_response(400, {"error": "invalid_grant"}), conn_id="c", grant_type="authorization_code")

    assert isinstance(error, JiraGrantRevokedError)
    assert "codes work once and for 10 minutes, with the redirect_uri of the consent" in str(error)


# -- the code exchange and the consent URL ----------------------------------------------------------


def test_a_code_exchange_is_sent_once_even_when_the_endpoint_fails() -> None:
    session = RecordingSession(_response(503, {"error": "unavailable"}), _response(200, {"access_token": "a"}))

    with pytest.raises(JiraOAuthError):
        _client(session).exchange_code("the-code", "https://example.com/cb")

    assert len(session.calls) == 1  # a code works once: a second try could only get invalid_grant


def test_a_consent_without_refresh_token_names_the_connection_in_the_command() -> None:
    session = RecordingSession(_response(200, {"access_token": "a", "expires_in": 3600}))

    with pytest.raises(JiraOAuthError, match="consent of connection 'jira_oauth' gave no refresh token") as caught:
        _client(session).exchange_code("the-code", "https://example.com/cb")

    assert str(caught.value).endswith("airflow-jira-auth authorize --conn-id jira_oauth")


def test_the_consent_url_always_shows_the_consent_screen() -> None:
    url = _client(RecordingSession()).authorization_url("https://example.com/cb", ["read:jira-work"], "st")

    assert parse_qs(urlsplit(url).query)["prompt"] == ["consent"]


# -- accessible-resources -----------------------------------------------------------------------------


def test_the_sites_request_carries_the_token_timeout_and_tls_setting() -> None:
    session = RecordingSession(_response(200, [{"id": "1", "url": "https://a.atlassian.net"}, "junk"]))

    sites = _client(session).accessible_resources(ACCESS, API)

    assert sites == [{"id": "1", "url": "https://a.atlassian.net"}]
    ((method, url, kwargs),) = session.calls
    assert (method, url) == ("GET", "https://api.atlassian.com/oauth/token/accessible-resources")
    assert kwargs["headers"]["Authorization"] == f"Bearer {ACCESS}"
    assert kwargs["timeout"] == 7
    assert kwargs["verify"] == "/etc/ca.pem"


def test_a_sites_request_is_retried_after_a_server_error() -> None:
    session = RecordingSession(_response(503, {}), _response(200, []))

    assert _client(session).accessible_resources(ACCESS, API) == []
    assert len(session.calls) == 2


def test_an_unreachable_gateway_raises_a_transport_error_naming_the_sites_url() -> None:
    session = RecordingSession(requests.ConnectionError("refused"), requests.ConnectionError("refused"))

    with pytest.raises(JiraTransportError) as caught:
        _client(session).accessible_resources(ACCESS, API)

    assert caught.value.method == "GET"
    assert caught.value.path == "https://api.atlassian.com/oauth/token/accessible-resources"
    assert str(caught.value).startswith(
        "GET https://api.atlassian.com/oauth/token/accessible-resources: no answer from Jira (ConnectionError: refused)"
    )


@pytest.mark.parametrize(
    "answer",
    [_response(200, {"sites": []}), _response(404, []), _response(500, text="down " + ACCESS + " " + "d" * 300)],
    ids=["not-a-list", "not-200", "not-json"],
)
def test_a_failed_sites_listing_says_which_connection_and_never_the_token(answer: requests.Response) -> None:
    session = RecordingSession(answer, answer)

    with pytest.raises(JiraOAuthError) as caught:
        _client(session).accessible_resources(ACCESS, API)

    message = str(caught.value)
    assert message.startswith("listing the sites of connection 'jira_oauth' failed: GET https://api.atlassian.com/")
    assert f"HTTP {answer.status_code}: " in message
    assert ACCESS not in message
    assert repr(answer.text.replace(ACCESS, "[redacted]")[:200]) in message


def test_a_refused_token_on_the_sites_endpoint_names_the_consent_command() -> None:
    session = RecordingSession(_response(401, {}))

    with pytest.raises(JiraOAuthError) as caught:
        _client(session, conn_id="other").accessible_resources(ACCESS, API)

    assert "access token of connection 'other'" in str(caught.value)
    assert str(caught.value).endswith("airflow-jira-auth authorize --conn-id other")


def test_a_bad_api_url_is_reported_as_the_api_url_field() -> None:
    with pytest.raises(JiraConfigError) as caught:
        _client(RecordingSession()).accessible_resources(ACCESS, "ftp://api.atlassian.com")

    assert caught.value.field == "extra.api_url"


# -- pick_site ------------------------------------------------------------------------------------------


def test_pick_site_accepts_a_host_without_scheme_and_matches_any_case() -> None:
    resources = [{"id": "j1", "name": "acme", "url": "https://Acme.atlassian.net", "scopes": ["read:jira-work"]}]

    assert pick_site(resources, "ACME.atlassian.net/")["id"] == "j1"
    assert pick_site(resources, "http://acme.atlassian.net")["id"] == "j1"


def test_pick_site_lists_every_covered_site_marking_those_without_jira() -> None:
    resources = [
        {"id": "c1", "name": "wiki", "url": "https://wiki.atlassian.net", "scopes": ["read:confluence-content.all"]},
        {"id": "j1", "name": "acme", "url": "https://acme.atlassian.net", "scopes": ["read:jira-work"]},
        {"id": "x", "name": "nourl", "scopes": ["read:jira-work"]},
    ]

    with pytest.raises(JiraOAuthError) as caught:
        pick_site(resources, "https://other.atlassian.net")

    assert str(caught.value).endswith(
        "Sites the grant covers: wiki (https://wiki.atlassian.net, cloud id c1, not Jira); "
        "acme (https://acme.atlassian.net, cloud id j1, Jira); nourl (None, cloud id x, Jira)"
    )


def test_pick_site_of_an_empty_grant_says_none_are_covered() -> None:
    with pytest.raises(JiraOAuthError) as caught:
        pick_site([], "https://acme.atlassian.net")

    assert str(caught.value).endswith("Sites the grant covers: none")
