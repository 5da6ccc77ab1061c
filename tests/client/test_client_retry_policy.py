"""``RetryPolicy``'s decisions in isolation: what is safe to repeat, and the waits."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_jira_auth.client.retry import RetryPolicy, is_safe_to_repeat, parse_retry_after


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
def test_idempotent_methods_are_safe_to_repeat(method: str) -> None:
    assert is_safe_to_repeat(method, "issue/ENG-1")


@pytest.mark.parametrize(
    "path", ["search/jql", "search/approximate-count", "issue/bulkfetch", "changelog/bulkfetch", "jql/parse", "jql/match"]
)
def test_posts_that_only_read_are_safe_to_repeat(path: str) -> None:
    assert is_safe_to_repeat("POST", path)


@pytest.mark.parametrize("path", ["issue", "issue/bulk", "issue/ENG-1/comment", "issue/ENG-1/transitions"])
def test_writing_posts_are_not_safe_to_repeat(path: str) -> None:
    assert not is_safe_to_repeat("POST", path)


def test_429_is_retried_for_every_method() -> None:
    assert RetryPolicy().should_retry_status("POST", "issue", 429)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_only_when_safe(status: int) -> None:
    policy = RetryPolicy()

    assert policy.should_retry_status("GET", "myself", status)
    assert not policy.should_retry_status("POST", "issue", status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_other_errors_are_not_retried(status: int) -> None:
    assert not RetryPolicy().should_retry_status("GET", "myself", status)


def test_connect_timeout_is_retried_for_every_method() -> None:
    assert RetryPolicy().should_retry_error("POST", "issue", requests.exceptions.ConnectTimeout())


def test_refused_connection_is_retried_for_every_method() -> None:
    refused = requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))  # type: ignore[arg-type]

    assert RetryPolicy().should_retry_error("POST", "issue", refused)


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ReadTimeout(),
        requests.ConnectionError("Connection aborted"),
        requests.exceptions.ChunkedEncodingError(),
    ],
)
def test_errors_after_sending_are_retried_only_when_safe(error: Exception) -> None:
    policy = RetryPolicy()

    assert policy.should_retry_error("POST", "search/jql", error)
    assert not policy.should_retry_error("POST", "issue", error)


def test_tls_errors_are_not_retried() -> None:
    assert not RetryPolicy().should_retry_error("GET", "myself", requests.exceptions.SSLError("bad certificate"))


@pytest.mark.parametrize(
    ("value", "expected"), [("5", 5.0), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0), (None, None), ("soon", None)]
)
def test_retry_after_seconds_are_parsed(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_is_parsed() -> None:
    now = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)

    assert parse_retry_after("Thu, 01 Jan 2026 10:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 09:00:00 GMT", now=now) == 0.0


def test_retry_after_http_date_without_a_known_zone_is_read_as_utc() -> None:
    """RFC 5322's ``-0000`` (zone unknown) parses to a naive time; it is taken as UTC."""
    now = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)

    assert parse_retry_after("Thu, 01 Jan 2026 10:00:30 -0000", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:30 +0100", now=now) == 30.0


def test_default_policy_waits_as_atlassian_advises() -> None:
    """From ~2 s doubling, jitter x0.7-1.3, capped near 30 s; Retry-After: 0 still waits 1 s."""
    policy = RetryPolicy()
    for _ in range(200):
        waits = [policy.backoff(n) for n in range(1, 7)]
        for wait, base in zip(waits, (2, 4, 8, 16, 30, 30), strict=True):
            assert 0.7 * base <= wait <= 1.3 * base
        assert 1.0 <= policy.wait_for_retry_after(0) <= 1.3
        assert 7.0 <= policy.wait_for_retry_after(7) <= 9.1


def test_default_policy_retries_about_four_times_then_hands_back_the_last_answer() -> None:
    waits: list[float] = []
    sent: list[requests.Response] = []

    def send() -> requests.Response:
        response = requests.Response()
        response.status_code = 503
        sent.append(response)
        return response

    answer = RetryPolicy(sleep=waits.append).call("GET", "myself", send)

    assert len(sent) == 5 and len(waits) == 4
    assert answer is sent[-1]


def test_wait_after_retry_after_is_never_below_it_or_the_floor() -> None:
    policy = RetryPolicy(retry_after_floor=1.0)

    assert all(policy.wait_for_retry_after(0) >= 1.0 for _ in range(100))
    assert all(5.0 <= policy.wait_for_retry_after(5) <= 6.5 for _ in range(100))


def test_invalid_policy_is_rejected() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=(1.3, 0.7))


def test_a_jitter_that_could_reach_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=(0.0, 1.0))
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=(1.2, 1.0))
    RetryPolicy(jitter=(1.0, 1.0))


def _answer(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return response


def test_a_retry_after_of_exactly_the_longest_worth_waiting_is_waited_for() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_retry_after=30.0, jitter=(1.0, 1.0), sleep=waits.append)
    answers = [_answer(429, {"Retry-After": "30"}), _answer(200)]

    assert policy.call("GET", "myself", lambda: answers.pop(0)).status_code == 200
    assert waits == [30.0]

    too_long = RetryPolicy(max_retry_after=30.0, sleep=waits.append)
    assert too_long.call("GET", "myself", lambda: _answer(429, {"Retry-After": "31"})).status_code == 429
    assert waits == [30.0]


def test_a_retried_transport_error_is_logged_with_its_request(caplog: pytest.LogCaptureFixture) -> None:
    policy = RetryPolicy(max_attempts=2, jitter=(1.0, 1.0), sleep=lambda _: None)
    answers: list[requests.Response | Exception] = [requests.exceptions.ConnectTimeout("slow"), _answer(200)]

    def send() -> requests.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with caplog.at_level(logging.WARNING, logger="airflow_provider_jira_auth"):
        assert policy.call("POST", "issue", send).status_code == 200

    (message,) = [r.getMessage() for r in caplog.records]
    assert message == "Jira POST issue -> ConnectTimeout; retry 1 of 1 in 2.0 s"


def test_no_retry_is_made_when_its_wait_alone_would_pass_the_total_limit() -> None:
    waits: list[float] = []
    sent: list[requests.Response] = []
    policy = RetryPolicy(backoff_initial=5.0, jitter=(1.0, 1.0), max_total_wait=1.0, sleep=waits.append)

    def send() -> requests.Response:
        sent.append(_answer(503))
        return sent[-1]

    assert policy.call("GET", "myself", send) is sent[0]
    assert waits == [] and len(sent) == 1

    limited = [_answer(429, {"Retry-After": "5"}), _answer(200)]
    assert policy.call("POST", "issue", lambda: limited.pop(0)).status_code == 429
    assert waits == []


def test_retries_stop_before_the_time_spent_waiting_would_pass_the_total_limit() -> None:
    waits: list[float] = []
    policy = RetryPolicy(
        max_attempts=20, backoff_initial=0.2, backoff_cap=0.2, jitter=(1.0, 1.0), max_total_wait=0.7,
        # Recorded, and slept for real: max_total_wait counts real time since the first attempt.
        sleep=lambda seconds: (waits.append(seconds), time.sleep(seconds)),
    )
    sent: list[float] = []

    def send() -> requests.Response:
        sent.append(time.monotonic())
        return _answer(503)

    assert policy.call("GET", "myself", send).status_code == 503

    # Three waits of 0.2 s fit (fewer when the machine is slow); a fourth would end past 0.7 s.
    assert 1 <= len(waits) <= 3 and len(sent) == len(waits) + 1
    assert sum(waits) < 0.7
