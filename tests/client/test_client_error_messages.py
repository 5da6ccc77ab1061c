"""What the error classes tell a person: one line each, what went wrong, and never a secret."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy.exc

from airflow_provider_jira_auth.client.bulk import BulkCreateErrorItem, BulkCreateResult
from airflow_provider_jira_auth.client.errors import (
    JiraBulkError,
    JiraConfigError,
    JiraError,
    JiraHTTPError,
    JiraResponseError,
    JiraTransportError,
    JiraTriggerError,
    describe_error,
    scrub,
)

SECRET = "s3cr3t-client-secret"
REFRESH = "rt-0123456789abcdef"


class _DriverError(Exception):
    """Stands in for a database driver's exception (psycopg2.OperationalError and the like)."""


def test_a_database_error_is_described_without_its_statement_or_parameters() -> None:
    orig = _DriverError("connection to server lost\nDETAIL: the server closed the connection")
    exc = sqlalchemy.exc.OperationalError(
        "UPDATE connection SET extra=%(extra)s", {"extra": f'{{"client_secret": "{SECRET}", "refresh_token": "{REFRESH}"}}'}, orig
    )
    assert SECRET in str(exc)  # what describe_error exists to avoid

    described = describe_error(exc)

    assert described == f"OperationalError ({__name__}._DriverError: connection to server lost)"
    assert SECRET not in described and REFRESH not in described and "UPDATE" not in described


def test_an_error_with_only_a_statement_or_only_an_orig_is_treated_as_a_database_error() -> None:
    class StatementOnly(Exception):
        statement = "SELECT secret"

    class OrigOnly(Exception):
        def __init__(self) -> None:
            super().__init__(f"INSERT ... {SECRET}")
            self.orig = _DriverError("disk full")

    assert describe_error(StatementOnly(f"SELECT {SECRET}")) == "StatementOnly"
    assert describe_error(OrigOnly()) == f"OrigOnly ({__name__}._DriverError: disk full)"


def test_any_other_error_is_its_class_and_the_first_line_of_its_message_at_most_300_characters() -> None:
    assert describe_error(ValueError("  first line\nsecond line  ")) == "ValueError: first line"
    assert describe_error(RuntimeError()) == "RuntimeError: "
    assert describe_error(OSError("x" * 400)) == "OSError: " + "x" * 300


def test_scrub_replaces_the_longest_secret_first_and_leaves_short_values() -> None:
    token = "abcdef123456"
    header = f"Bearer {token}"

    assert scrub(f"sent {header}", [token, header]) == "sent [redacted]"
    assert scrub(f"sent {header}", [header, token]) == "sent [redacted]"
    # Values shorter than 6 characters would redact ordinary words; 6 is enough for a secret.
    assert scrub("id 12345 and 123456", ["12345", "123456", None, ""]) == "id 12345 and [redacted]"


def test_a_transport_error_names_the_request_the_peer_and_the_cause() -> None:
    error = JiraTransportError("GET", "/rest/api/3/myself", requests.ConnectTimeout("timed out"))

    assert (error.method, error.path) == ("GET", "/rest/api/3/myself")
    assert str(error) == "GET /rest/api/3/myself: no answer from Jira (ConnectTimeout: timed out)"
    other = JiraTransportError("POST", "/oauth/token", OSError("refused"), peer="Atlassian", hint=": check the proxy")
    assert str(other) == "POST /oauth/token: no answer from Atlassian (OSError: refused): check the proxy"


def test_an_http_error_says_what_jira_said_or_else_the_start_of_the_body() -> None:
    said = JiraHTTPError("POST", "search/jql", 400, error_messages=["Bad JQL."], errors={"jql": "bad."})
    assert str(said) == "POST search/jql -> HTTP 400. Jira says: Bad JQL.; jql: bad"

    body = JiraHTTPError("GET", "myself", 502, body="b" * 400, hint="Try later")
    assert str(body) == "GET myself -> HTTP 502. body: " + "b" * 300 + ". Try later"
    assert body.body == "b" * 400

    bare = JiraHTTPError("GET", "myself", 500)
    assert str(bare) == "GET myself -> HTTP 500"
    assert bare.body == ""


def test_a_response_error_keeps_the_request_and_shows_the_start_of_the_body() -> None:
    error = JiraResponseError("GET", "myself", 200, "", "<html>" + "x" * 300)

    assert (error.method, error.path, error.status, error.content_type) == ("GET", "myself", 200, "")
    assert "HTTP 200 with a non-JSON body (no content type): " in str(error)
    assert repr(("<html>" + "x" * 300)[:200]) + ". A proxy" in str(error)
    assert "check the connection's host (site URL) and api_url" in str(error)


def _bulk_result(failed: int, created: int) -> BulkCreateResult:
    return BulkCreateResult(
        created=[{"id": str(i), "key": f"ENG-{i}", "self": "", "index": i} for i in range(created)],
        errors=[BulkCreateErrorItem(index=created + i, status=400, message=f"bad {i}") for i in range(failed)],
    )


def test_a_bulk_error_lists_the_first_ten_failures_and_counts_the_rest() -> None:
    error = JiraBulkError(_bulk_result(failed=12, created=3))

    assert str(error).startswith("12 of 15 issues were not created: #3: bad 0; #4: bad 1; ")
    assert "#12: bad 9 (and 2 more)" in str(error)
    assert "bad 10" not in str(error)


def test_a_bulk_error_with_ten_failures_lists_them_all() -> None:
    error = JiraBulkError(_bulk_result(failed=10, created=0))

    assert str(error).endswith("#9: bad 9")
    assert "more" not in str(error)


def test_a_bulk_error_with_eleven_failures_lists_ten_and_counts_the_eleventh() -> None:
    result = _bulk_result(failed=11, created=2)
    error = JiraBulkError(result)

    listed = "; ".join(f"#{2 + i}: bad {i}" for i in range(10))
    assert str(error) == f"11 of 13 issues were not created: {listed} (and 1 more)"
    assert error.result is result


def test_a_trigger_error_names_the_original_error_class_and_is_a_jira_error() -> None:
    error = JiraTriggerError("JiraRateLimitError", "POST search/jql -> HTTP 429")

    assert str(error) == "JiraRateLimitError: POST search/jql -> HTTP 429"
    assert error.error_type == "JiraRateLimitError"
    with pytest.raises(JiraError, match="^JiraRateLimitError: POST search/jql"):
        raise error


def test_a_config_error_names_the_field_by_its_label_and_key() -> None:
    assert str(JiraConfigError("extra", "not JSON")) == "Jira connection field 'Extra' (extra): not JSON"
    assert str(JiraConfigError("extra.unknown_field", "bad")) == "Jira connection field 'extra.unknown_field': bad"
