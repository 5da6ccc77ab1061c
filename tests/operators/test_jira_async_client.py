"""AsyncJiraClient (the triggers' client): the sync client's retry decisions and error mapping, on httpx."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.operators.conftest import Jira, connect

from airflow_provider_jira_auth.client.async_http import AsyncJiraClient
from airflow_provider_jira_auth.client.errors import (
    JiraGoneError,
    JiraNotFoundError,
    JiraResponseError,
    JiraServerError,
    JiraValidationError,
)
from airflow_provider_jira_auth.client.retry import RetryPolicy

FAST = RetryPolicy(backoff_initial=0.01, retry_after_floor=0.01, max_attempts=3)


def run(jira: Jira, call: Callable[[AsyncJiraClient], Awaitable[Any]]) -> Any:
    """Build the client as a trigger does (the hook's auth, in a thread) and run ``call`` with it."""
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    async def main() -> Any:
        client = await asyncio.to_thread(JiraCloudHook(jira.conn_id, retry_policy=FAST).get_async_conn)
        async with client:
            return await call(client)

    return asyncio.run(main())


def test_search_follows_next_page_tokens_up_to_max_results(jira: Jira) -> None:
    jira.emu.seed_issues(project="ENG", count=10)

    issues = run(
        jira, lambda c: c.search_issues("project = ENG ORDER BY key", fields=["summary"], max_results=12, page_size=5)
    )

    assert [i["key"] for i in issues] == [f"ENG-{n}" for n in range(1, 13)]
    assert [r.body["maxResults"] for r in jira.emu.requests if r.path.endswith("/search/jql")] == [5, 5, 2]


def test_get_issue_and_approximate_count(jira: Jira) -> None:
    issue = run(jira, lambda c: c.get_issue("ENG-2", fields="status"))
    count = run(jira, lambda c: c.approximate_count("project = ENG"))

    assert issue["key"] == "ENG-2" and set(issue["fields"]) == {"status"}
    assert count == 5


def test_a_429_is_waited_out_and_retried(jira: Jira) -> None:
    jira.emu.rate_limit("POST", r"/search/jql$", times=2, retry_after="0")

    assert len(run(jira, lambda c: c.search_issues("project = ENG"))) == 5
    assert jira.emu.stats.rate_limited == 2


@pytest.mark.parametrize("retry_after", [1, 2])
def test_a_429_waits_at_least_its_retry_after_even_when_backoff_would_be_shorter(
    jira_emulator, monkeypatch: pytest.MonkeyPatch, retry_after: int
) -> None:
    jira = connect(jira_emulator, "basic", monkeypatch)
    jira.emu.seed_issues(project="ENG", count=1)
    jira.emu.rate_limit("GET", r"/issue/ENG-1$", times=1, retry_after=str(retry_after))

    assert run(jira, lambda c: c.get_issue("ENG-1"))["key"] == "ENG-1"

    refused, answered = [r for r in jira.emu.requests if r.path.endswith("/issue/ENG-1")]
    assert (refused.status, answered.status) == (429, 200)
    # FAST backs off for ~0.01 s; the server asked for more, and gets it.
    assert answered.time - refused.time >= retry_after


def test_a_gateway_error_on_a_read_is_retried(jira: Jira) -> None:
    jira.emu.fail_next("GET", r"/issue/ENG-1$", status=503, times=1)

    assert run(jira, lambda c: c.get_issue("ENG-1"))["key"] == "ENG-1"


def test_a_dropped_connection_on_a_read_is_retried(jira: Jira) -> None:
    jira.emu.fail_next("GET", r"/issue/ENG-1$", drop=True, times=1)

    assert run(jira, lambda c: c.get_issue("ENG-1"))["key"] == "ENG-1"


def test_a_gateway_error_on_a_write_is_not_repeated(jira: Jira) -> None:
    jira.emu.fail_next("POST", r"/rest/api/3/issue$", status=503, times=1)
    body = {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "once"}}

    with pytest.raises(JiraServerError):
        run(jira, lambda c: c.request("POST", "issue", json=body))
    assert len([r for r in jira.emu.requests if r.method == "POST" and r.path.endswith("/rest/api/3/issue")]) == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.get_issue("ENG-404"), JiraNotFoundError),
        (lambda c: c.search_issues("project = = ENG"), JiraValidationError),
        (lambda c: c.request("GET", "search", params={"jql": "project = ENG"}), JiraGoneError),
    ],
    ids=["404", "400", "410"],
)
def test_errors_are_mapped_as_in_the_sync_client(jira: Jira, call, error) -> None:
    with pytest.raises(error):
        run(jira, call)


def test_a_body_that_is_not_json_says_something_else_answered(jira: Jira) -> None:
    jira.emu.fail_next("GET", r"/issue/ENG-1$", status=200, body="<html>login</html>")

    with pytest.raises(JiraResponseError, match="proxy or login page"):
        run(jira, lambda c: c.get_issue("ENG-1"))


def test_an_access_token_refused_by_jira_is_refreshed_once_and_the_call_repeated(oauth_connect) -> None:
    jira = oauth_connect(("read:jira-work", "offline_access"))
    run(jira, lambda c: c.get_issue("ENG-1"))  # the first token
    jira.emu.fail_next("GET", r"/issue/ENG-1$", status=401, times=1, body={"code": 401, "message": "Unauthorized"})

    assert run(jira, lambda c: c.get_issue("ENG-1"))["key"] == "ENG-1"
    assert jira.token_calls() == 2
