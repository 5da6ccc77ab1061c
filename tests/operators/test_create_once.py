"""Issues are created at most once: lost answers, client retries and task retries duplicate nothing.

Against the emulator over real HTTP, with faults that strike *after* Jira created the issue (the
answer is lost) as well as before. The emulator's search is immediately consistent, so the wait
for Jira's index (``SETTLE_WAITS``) is shortened here; the logic that uses it is unchanged.
"""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client import idempotency
from airflow_provider_jira_auth.client.errors import JiraBulkError, JiraError
from airflow_provider_jira_auth.operators.jira_cloud import JiraCreateIssueOperator
from tests.operators.conftest import Jira


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch):
    monkeypatch.setattr(idempotency, "SETTLE_WAITS", (0.05, 0.1))
    monkeypatch.setattr(idempotency, "INDEX_LAG", 0.15)


def issues_with_summary(jira: Jira, summary: str) -> list[str]:
    return [key for key in jira.emu.issue_keys() if jira.emu.get_issue(key)["fields"]["summary"] == summary]


def creates_sent(jira: Jira, path: str = "/rest/api/3/issue") -> int:
    return sum(1 for call in jira.api_calls() if call == ("POST", path))


def client(jira: Jira):
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    return JiraCloudHook(jira.conn_id).get_conn()


FIELDS = {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}}


def test_a_create_whose_answer_is_lost_after_jira_acted_is_found_not_repeated(jira: Jira) -> None:
    jira.emu.fail_next("POST", r"/rest/api/3/issue$", status=503, after_work=True)

    created = client(jira).create_issue({**FIELDS, "summary": "once"}, idempotency_key="k-lost-after")

    assert issues_with_summary(jira, "once") == [created["key"]]
    assert creates_sent(jira) == 1


def test_a_create_dropped_before_jira_acted_is_sent_again(jira: Jira) -> None:
    jira.emu.fail_next("POST", r"/rest/api/3/issue$", drop=True)

    created = client(jira).create_issue({**FIELDS, "summary": "again"}, idempotency_key="k-lost-before")

    assert issues_with_summary(jira, "again") == [created["key"]]
    assert creates_sent(jira) == 2


def test_without_a_key_a_lost_answer_is_raised_and_never_resent(jira: Jira) -> None:
    jira.emu.fail_next("POST", r"/rest/api/3/issue$", status=503, after_work=True)

    with pytest.raises(JiraError, match="503"):
        client(jira).create_issue({**FIELDS, "summary": "plain"})
    assert creates_sent(jira) == 1


def test_the_same_key_twice_creates_one_issue(jira: Jira) -> None:
    first = client(jira).create_issue({**FIELDS, "summary": "dup?"}, idempotency_key="k-twice")
    second = client(jira).create_issue({**FIELDS, "summary": "dup?"}, idempotency_key="k-twice")

    assert first["key"] == second["key"] and issues_with_summary(jira, "dup?") == [first["key"]]


@pytest.mark.parametrize("jira", ["basic"], indirect=True)
def test_under_faults_and_a_rate_limit_twenty_creates_all_succeed_and_none_twice(jira: Jira) -> None:
    emu = jira.emu
    emu.inject_fault_mix(server_errors=0.10, dropped=0.05, after_work=0.5, seed=7)
    emu.limit_request_rate(8)
    api = client(jira)
    try:
        for n in range(20):
            api.create_issue({**FIELDS, "summary": f"chaos {n}"}, idempotency_key=f"chaos/{n}")
    finally:
        emu.clear_fault_mix()
        emu.limit_request_rate(None)

    for n in range(20):
        assert len(issues_with_summary(jira, f"chaos {n}")) == 1, f"chaos {n}"
    assert emu.stats.faults_injected > 0  # the mix did strike


def test_a_bulk_create_whose_answer_is_lost_reports_every_issue_once(jira: Jira) -> None:
    jira.emu.fail_next("POST", r"/issue/bulk$", status=503, after_work=True)
    items = [{**FIELDS, "summary": f"bulk-lost {n}"} for n in range(60)]

    result = client(jira).create_issues(items, idempotency_keys=[f"bulk-lost/{n}" for n in range(60)])

    assert [issue["index"] for issue in result.created] == list(range(60))
    for n in range(60):
        assert issues_with_summary(jira, f"bulk-lost {n}") == [result.created[n]["key"]]
    assert creates_sent(jira, "/rest/api/3/issue/bulk") == 2  # 50 + 10, none resent


def test_a_task_retry_of_a_bulk_create_duplicates_nothing(jira: Jira, context) -> None:
    items = [{"summary": f"retry {n}"} for n in range(3)] + [{"summary": "bad", "issuetype": {"name": "NoSuchType"}}]
    op = JiraCreateIssueOperator(task_id="c", project_key="ENG", issues=items, create_once=True, jira_conn_id=jira.conn_id)
    with pytest.raises(JiraBulkError):
        op.execute(context)  # try 1: three created, one refused
    first_keys = context["ti"].pushed["created_keys"]
    sent = creates_sent(jira, "/rest/api/3/issue/bulk")

    context["ti"].try_number = 2
    op.issues = [*items[:3], {"summary": "fixed"}]  # e.g. the bad input fixed in between
    keys = op.execute(context)

    assert keys[:3] == first_keys
    for n in range(3):
        assert len(issues_with_summary(jira, f"retry {n}")) == 1
    assert creates_sent(jira, "/rest/api/3/issue/bulk") == sent + 1  # only the missing one was sent


def test_a_task_retry_of_a_single_create_returns_the_first_tries_issue(jira: Jira, context) -> None:
    op = JiraCreateIssueOperator(task_id="one", project_key="ENG", summary="single retry", create_once=True, jira_conn_id=jira.conn_id)
    first = op.execute(context)
    context["ti"].try_number = 2

    assert op.execute(context) == first
    assert issues_with_summary(jira, "single retry") == [first]


def test_idempotency_keys_must_be_one_per_issue_and_distinct(jira: Jira) -> None:
    with pytest.raises(ValueError, match="one per issue"):
        client(jira).create_issues([{**FIELDS, "summary": "a"}], idempotency_keys=["x", "y"])
    with pytest.raises(ValueError, match="distinct"):
        client(jira).create_issues([{**FIELDS, "summary": "a"}, {**FIELDS, "summary": "b"}], idempotency_keys=["x", "x"])
