"""After a lost answer, create_issue(s)_once looks again while Jira's search index catches up.

A narrow unit test with a stand-in client that counts searches and waits exactly;
tests/operators/test_create_once.py covers the same against the emulator's lagging index over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from airflow_provider_jira_auth.client.errors import JiraServerError
from airflow_provider_jira_auth.client.idempotency import create_issue_once, create_issues_once, marker_label


BOT = "712020:bot"


class LaggingIndex:
    """Every create is made but answered with a 504; what it made shows in search on the Nth search."""

    def __init__(self, visible_on_search: int) -> None:
        self.visible_on_search = visible_on_search
        self.searches = 0
        self.sends = 0
        self.made: list[str] = []  # marker labels of the issues Jira holds

    def _made(self, updates: list[dict[str, Any]]) -> None:
        self.sends += 1
        self.made += [label for u in updates for label in u["fields"]["labels"] if label.startswith("airflow-once-")]

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None) -> Any:
        self._made([json])
        raise JiraServerError(method, path, 504)

    def bulk_create_chunk(self, chunk: list[dict[str, Any]]) -> Any:
        self._made(chunk)
        raise JiraServerError("POST", "issue/bulk", 504)

    def search_issues(self, jql: str, *, fields: Any = None, page_size: int = 100) -> Iterator[dict[str, Any]]:
        self.searches += 1
        if self.searches < self.visible_on_search:
            return
        for n, label in enumerate(self.made, 1):
            if label in jql:
                fields = {"labels": [label], "creator": {"accountId": BOT}, "project": {"id": "10000", "key": "ENG"}}
                yield {"id": str(n), "key": f"ENG-{n}", "self": "", "fields": fields}

    def myself(self) -> dict[str, Any]:
        return {"accountId": BOT}


def issue(summary: str) -> dict[str, Any]:
    return {"fields": {"project": {"key": "ENG"}, "summary": summary, "issuetype": {"name": "Task"}}}


def test_an_issue_the_index_shows_late_after_a_lost_answer_is_found_not_created_again() -> None:
    jira = LaggingIndex(visible_on_search=3)  # before sending: none; right after the 504: none; then there
    waits: list[float] = []

    created = create_issue_once(jira, issue("a"), "k", sleep=waits.append)

    assert created["key"] == "ENG-1" and jira.sends == 1
    assert waits == [0.5]  # one settling wait, then found
    assert jira.made == [marker_label("k")]


def test_a_bulk_create_the_index_shows_late_after_a_lost_answer_is_not_sent_again() -> None:
    jira = LaggingIndex(visible_on_search=3)
    waits: list[float] = []

    result = create_issues_once(jira, [issue("a"), issue("b")], ["k1", "k2"], sleep=waits.append)

    assert [i["key"] for i in result.created] == ["ENG-1", "ENG-2"] and not result.errors
    assert jira.sends == 1 and waits == [0.5]
