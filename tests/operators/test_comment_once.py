"""Comments are added at most once under an idempotency key: lost answers and task retries
duplicate nothing. Against the emulator over real HTTP, with faults that strike after Jira added
the comment (the answer is lost) as well as before."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client import idempotency
from airflow_provider_jira_auth.client.errors import JiraError, JiraScopeError
from airflow_provider_jira_auth.client.idempotency import COMMENT_PROPERTY, marker_label
from airflow_provider_jira_auth.operators.jira_cloud import JiraCommentOperator
from tests.operators.conftest import Jira

KEY = "ENG-1"


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch):
    """The looks after a lost answer wait for Jira to finish saving (``SETTLE_WAITS``, about 7 s in
    all); shortened here, the logic that uses them unchanged."""
    monkeypatch.setattr(idempotency, "SETTLE_WAITS", (0.05, 0.1))
    monkeypatch.setattr(idempotency, "INDEX_LAG", 0.15)
COMMENTS = r"/rest/api/3/issue/ENG-1/comment$"


def client(jira: Jira):
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    return JiraCloudHook(jira.conn_id).get_conn()


def texts(jira: Jira) -> list[str]:
    return [c["body"]["content"][0]["content"][0]["text"] for c in client(jira).issue_comments(KEY)]


def comment_posts(jira: Jira) -> int:
    return sum(1 for call in jira.api_calls() if call == ("POST", "/rest/api/3/issue/ENG-1/comment"))


def test_a_comment_whose_answer_is_lost_after_jira_acted_is_found_not_repeated(jira: Jira) -> None:
    jira.emu.fail_next("POST", COMMENTS, status=503, after_work=True)

    added = client(jira).add_comment(KEY, "seen once", idempotency_key="c-lost-after")

    assert texts(jira).count("seen once") == 1 and comment_posts(jira) == 1
    marked = client(jira).comments_by_id([added["id"]], expand="properties")[0]
    assert {"key": COMMENT_PROPERTY, "value": {"marker": marker_label("c-lost-after")}} in marked["properties"]


def test_a_comment_dropped_before_jira_acted_is_sent_again(jira: Jira) -> None:
    jira.emu.fail_next("POST", COMMENTS, drop=True)

    client(jira).add_comment(KEY, "sent twice, added once", idempotency_key="c-lost-before")

    assert texts(jira).count("sent twice, added once") == 1 and comment_posts(jira) == 2


def test_without_a_key_a_lost_answer_is_raised_and_never_resent(jira: Jira) -> None:
    jira.emu.fail_next("POST", COMMENTS, status=503, after_work=True)

    with pytest.raises(JiraError, match="503"):
        client(jira).add_comment(KEY, "plain")
    assert comment_posts(jira) == 1


def test_a_task_retry_finds_the_first_tries_comment_and_another_run_comments_anew(jira: Jira, context) -> None:
    op = JiraCommentOperator(task_id="ack", jira_conn_id=jira.conn_id, issue_key=KEY, body="ack", comment_once=True)
    first = op.execute(context)
    jira.emu.add_comments(KEY, 150)  # newer comments push it far down the lookup's pages...
    jira.emu.default_site.comment_page_limit = 30  # ...which hold fewer than asked for, as Jira may send
    context["ti"].try_number = 2

    assert op.execute(context) == first
    assert texts(jira).count("ack") == 1

    context["ti"].run_id = "scheduled__2026-01-02T00:00:00+00:00"
    assert op.execute(context) != first
    assert texts(jira).count("ack") == 2


def test_comment_once_needs_read_access_and_says_so_before_sending(oauth_connect, context) -> None:
    jira = oauth_connect(("write:jira-work", "offline_access"))
    op = JiraCommentOperator(task_id="ack", jira_conn_id=jira.conn_id, issue_key=KEY, body="ack", comment_once=True)

    with pytest.raises(JiraScopeError, match="read:jira-work"):
        op.execute(context)
    assert comment_posts(jira) == 0
