"""After a lost answer, add_comment_once looks again while Jira may still be saving the first send.

A narrow unit test with a stand-in client (a comment that shows up only on the second look
cannot be staged over HTTP); tests/operators/test_comment_once.py covers the rest against the
emulator.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_jira_auth.client.errors import JiraServerError
from airflow_provider_jira_auth.client.idempotency import COMMENT_PROPERTY, add_comment_once, marker_label


BOT = "712020:bot"


class SlowJira:
    """The first POST's answer is a 504; the comment it made becomes visible on the Nth look."""

    def __init__(self, visible_on_look: int) -> None:
        self.visible_on_look = visible_on_look
        self.looks = 0
        self.posts = 0
        self.marker: str | None = None

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None) -> Any:
        if method == "POST":
            self.posts += 1
            self.marker = json["properties"][0]["value"]["marker"]
            raise JiraServerError("POST", path, 504)
        self.looks += 1
        shown = self.marker is not None and self.looks >= self.visible_on_look
        return {"comments": [{"id": "7"}] if shown else [], "total": 1 if shown else 0}

    def comments_by_id(self, ids: Any, *, expand: Any = ()) -> list[dict[str, Any]]:
        return [
            {
                "id": "7",
                "author": {"accountId": BOT},
                "properties": [{"key": COMMENT_PROPERTY, "value": {"marker": self.marker}}],
            }
        ]

    def myself(self) -> dict[str, Any]:
        return {"accountId": BOT}


def test_a_comment_still_being_saved_when_the_answer_was_lost_is_found_not_sent_again() -> None:
    jira = SlowJira(visible_on_look=3)  # before sending: none; right after the 504: none; then there
    waits: list[float] = []

    comment = add_comment_once(jira, "ENG-1", {"type": "doc"}, "k", sleep=waits.append)

    assert comment["id"] == "7" and jira.posts == 1
    assert waits == [0.5]  # one settling wait, then found
    assert jira.marker == marker_label("k")
