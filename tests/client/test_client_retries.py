"""The retry policy as seen over real HTTP: what is repeated, and how long the client waits."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_jira_auth.client import (
    JiraClient,
    JiraRateLimitError,
    JiraServerError,
    JiraTransportError,
    RetryPolicy,
)

from client_scripted_server import Reply, ScriptedServer

OK = Reply(200, {"accountId": "abc"})
CREATED = Reply(201, {"id": "10001", "key": "ENG-1", "self": "https://example.atlassian.net/rest/api/3/issue/10001"})
SEARCH_PAGE = Reply(200, {"issues": [{"id": "1"}], "isLast": True})


def rate_limited(retry_after: str | None = None) -> Reply:
    headers = {"RateLimit-Reason": "jira-burst-based"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Reply(429, {"errorMessages": ["Rate limit exceeded."]}, headers=headers)


def test_retry_after_is_honored_as_a_minimum_wait(
    client: JiraClient, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.queue(rate_limited("3"), OK)

    assert client.myself() == {"accountId": "abc"}
    assert len(server.requests) == 2
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 3.0 * 1.3


def test_retry_after_given_as_http_date_is_honored(
    client: JiraClient, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.queue(rate_limited("Wed, 21 Oct 2099 07:28:00 GMT"), OK)
    policy = RetryPolicy(sleep=sleeps.append, max_retry_after=10**12)

    with JiraClient(server.rest_url, None, retry=policy) as jira:
        jira.myself()

    assert sleeps[0] > 10**8


def test_retry_after_zero_is_raised_to_the_floor(server: ScriptedServer, sleeps: list[float]) -> None:
    server.queue(rate_limited("0"), rate_limited("0"), OK)
    policy = RetryPolicy(retry_after_floor=0.5, sleep=sleeps.append)

    with JiraClient(server.rest_url, None, retry=policy) as jira:
        jira.myself()

    assert len(sleeps) == 2 and all(wait >= 0.5 for wait in sleeps)


def test_rate_limit_without_retry_after_backs_off_exponentially(server: ScriptedServer, sleeps: list[float]) -> None:
    server.queue(rate_limited(), rate_limited(), rate_limited(), OK)
    policy = RetryPolicy(backoff_initial=1.0, jitter=(1.0, 1.0), sleep=sleeps.append)

    with JiraClient(server.rest_url, None, retry=policy) as jira:
        jira.myself()

    assert sleeps == [1.0, 2.0, 4.0]


def test_backoff_is_capped(server: ScriptedServer, sleeps: list[float]) -> None:
    server.queue(*[rate_limited()] * 4, OK)
    policy = RetryPolicy(backoff_initial=2.0, backoff_cap=5.0, jitter=(1.0, 1.0), sleep=sleeps.append)

    with JiraClient(server.rest_url, None, retry=policy) as jira:
        jira.myself()

    assert sleeps == [2.0, 4.0, 5.0, 5.0]


def test_backoff_is_jittered_within_the_policy_range(server: ScriptedServer, sleeps: list[float]) -> None:
    server.queue(*[Reply(503)] * 4, OK)
    policy = RetryPolicy(backoff_initial=10.0, backoff_cap=10.0, jitter=(0.7, 1.3), sleep=sleeps.append)

    with JiraClient(server.rest_url, None, retry=policy) as jira:
        jira.myself()

    assert all(7.0 <= wait <= 13.0 for wait in sleeps)


def test_503_is_retried_on_get(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(503, {"errorMessages": ["Service unavailable"]}), OK)

    assert client.myself() == {"accountId": "abc"}
    assert len(server.requests) == 2


def test_503_retry_after_is_honored(client: JiraClient, server: ScriptedServer, sleeps: list[float]) -> None:
    server.queue(Reply(503, headers={"Retry-After": "7"}), OK)

    client.myself()

    assert sleeps and sleeps[0] >= 7


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_are_retried_on_read_only_post(client: JiraClient, server: ScriptedServer, status: int) -> None:
    server.queue(Reply(status), SEARCH_PAGE)

    assert list(client.search_issues("project = ENG")) == [{"id": "1"}]
    assert len(server.requests) == 2


def test_503_is_not_retried_on_create(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(503, {"errorMessages": ["Service unavailable"]}), CREATED)

    with pytest.raises(JiraServerError):
        client.create_issue({"project": {"key": "ENG"}, "summary": "x", "issuetype": {"name": "Task"}})
    assert len(server.requests) == 1


def test_500_is_not_retried(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(500, {"errorMessages": ["NullPointerException"]}), OK)

    with pytest.raises(JiraServerError):
        client.myself()
    assert len(server.requests) == 1


def test_429_is_retried_on_create(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(rate_limited("1"), CREATED)

    assert client.create_issue({"summary": "x"})["key"] == "ENG-1"
    assert len(server.requests) == 2


def test_dropped_connection_is_retried_on_get(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(drop=True), OK)

    assert client.myself() == {"accountId": "abc"}
    assert len(server.requests) == 2


def test_dropped_connection_is_retried_on_search_post(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(drop=True), SEARCH_PAGE)

    assert list(client.search_issues("project = ENG")) == [{"id": "1"}]
    assert len(server.requests) == 2


def test_dropped_connection_is_not_retried_on_create(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(drop=True), CREATED)

    with pytest.raises(JiraTransportError) as caught:
        client.create_issue({"summary": "x"})
    assert len(server.requests) == 1
    assert "POST issue" in str(caught.value)


def test_refused_connection_is_retried_on_create(policy: RetryPolicy, sleeps: list[float]) -> None:
    # Port 9 on loopback: nothing listens, so nothing was sent and a create may be repeated.
    with JiraClient("http://127.0.0.1:9/rest/api/3", None, retry=policy) as jira:
        with pytest.raises(JiraTransportError):
            jira.create_issue({"summary": "x"})

    assert len(sleeps) == policy.max_attempts - 1


def test_retry_after_above_maximum_raises_at_once(
    client: JiraClient, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.queue(rate_limited("3600"), OK)

    with pytest.raises(JiraRateLimitError) as caught:
        client.myself()

    assert len(server.requests) == 1
    assert sleeps == []
    assert caught.value.retry_after == 3600
    assert caught.value.reason == "jira-burst-based"


def test_persistent_rate_limit_raises_after_max_attempts(server: ScriptedServer, sleeps: list[float]) -> None:
    server.queue(*[rate_limited("1")] * 3)
    policy = RetryPolicy(max_attempts=3, retry_after_floor=0.01, sleep=sleeps.append)

    with JiraClient(server.rest_url, None, retry=policy) as jira, pytest.raises(JiraRateLimitError) as caught:
        jira.myself()

    assert len(server.requests) == 3
    assert len(sleeps) == 2
    assert caught.value.retry_after == 1.0
    assert "jira-burst-based" in str(caught.value)


def test_persistent_transport_error_raises_transport_error(
    client: JiraClient, server: ScriptedServer, policy: RetryPolicy
) -> None:
    server.queue(*[Reply(drop=True)] * policy.max_attempts)

    with pytest.raises(JiraTransportError):
        client.myself()
    assert len(server.requests) == policy.max_attempts


def test_retries_are_logged_at_warning_without_credentials(
    client: JiraClient, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.queue(rate_limited("2"), OK)

    with caplog.at_level(logging.DEBUG, logger="airflow_provider_jira_auth"):
        client.myself()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "GET myself" in message and "HTTP 429" in message and "retry 1 of 4" in message
    assert "Basic" not in caplog.text and "secret" not in caplog.text


def test_successful_requests_log_nothing_above_debug(
    client: JiraClient, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.queue(OK)

    with caplog.at_level(logging.DEBUG, logger="airflow_provider_jira_auth"):
        client.myself()

    assert all(record.levelno <= logging.DEBUG for record in caplog.records)
