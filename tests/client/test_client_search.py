"""``search_issues`` and ``approximate_count``: ``search/jql`` with ``nextPageToken`` paging."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client import JiraClient, JiraError

from client_scripted_server import Reply, ScriptedServer


def page(ids: list[int], token: str | None = None, is_last: bool | None = None) -> Reply:
    body: dict = {"issues": [{"id": str(i), "key": f"ENG-{i}"} for i in ids]}
    if token is not None:
        body["nextPageToken"] = token
    if is_last is not None:
        body["isLast"] = is_last
    return Reply(200, body)


def test_pages_are_followed_by_next_page_token(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(page([1, 2], "t2", False), page([3, 4], "t3", False), page([5], is_last=True))

    keys = [issue["key"] for issue in client.search_issues("project = ENG", fields=["summary", "status"], page_size=2)]

    assert keys == ["ENG-1", "ENG-2", "ENG-3", "ENG-4", "ENG-5"]
    bodies = [r.json for r in server.requests]
    assert [r.method + " " + r.rest_path for r in server.requests] == ["POST search/jql"] * 3
    assert bodies[0] == {"jql": "project = ENG", "maxResults": 2, "fields": ["summary", "status"]}
    assert [b.get("nextPageToken") for b in bodies] == [None, "t2", "t3"]


def test_second_page_is_not_requested_before_the_first_is_consumed(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(page([1, 2], "t2", False), page([3], is_last=True))

    issues = client.search_issues("project = ENG")
    assert server.requests == []

    next(issues)
    next(issues)
    assert len(server.requests) == 1

    next(issues)
    assert len(server.requests) == 2


def test_paging_stops_at_is_last_even_with_a_token(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(page([1], "t2", True), page([2]))

    assert len(list(client.search_issues("project = ENG"))) == 1
    assert len(server.requests) == 1


def test_paging_stops_when_next_page_token_is_missing(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(page([1, 2]), page([3]))

    assert len(list(client.search_issues("project = ENG"))) == 2
    assert len(server.requests) == 1


def test_empty_result_yields_nothing(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200, {"issues": [], "isLast": True}))

    assert list(client.search_issues("project = EMPTY")) == []


def test_max_results_limits_issues_and_page_sizes(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(page([1, 2, 3], "t2", False), page([4, 5, 6], "t3", False))

    issues = list(client.search_issues("project = ENG", page_size=3, max_results=5))

    assert [i["id"] for i in issues] == ["1", "2", "3", "4", "5"]
    assert [r.json["maxResults"] for r in server.requests] == [3, 2]


def test_expand_and_comma_separated_fields_are_sent(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(page([1], is_last=True))

    list(client.search_issues("project = ENG", fields="summary, status", expand=["changelog", "names"]))

    assert server.requests[0].json["fields"] == ["summary", "status"]
    assert server.requests[0].json["expand"] == "changelog,names"


@pytest.mark.parametrize("jql", ["", "   "])
def test_empty_jql_is_rejected_before_any_call(client: JiraClient, server: ScriptedServer, jql: str) -> None:
    with pytest.raises(ValueError, match="JQL"):
        client.search_issues(jql)
    assert server.requests == []


@pytest.mark.parametrize("page_size", [0, 5001])
def test_page_size_out_of_range_is_rejected(client: JiraClient, page_size: int) -> None:
    with pytest.raises(ValueError, match="page_size"):
        client.search_issues("project = ENG", page_size=page_size)


def test_repeated_page_token_stops_instead_of_looping(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(page([1], "same", False), page([2], "same", False))

    with pytest.raises(JiraError, match="same nextPageToken"):
        list(client.search_issues("project = ENG"))


def test_approximate_count_returns_the_count(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200, {"count": 1234}))

    assert client.approximate_count("project = ENG") == 1234
    assert server.requests[0].rest_path == "search/approximate-count"
    assert server.requests[0].json == {"jql": "project = ENG"}


def test_approximate_count_rejects_empty_jql(client: JiraClient) -> None:
    with pytest.raises(ValueError, match="JQL"):
        client.approximate_count("")
