"""Create-once and comment-once where Jira is shared and its search lags its writes.

Over real HTTP against the emulator, with its search index lagging behind writes (as Jira's
does) and a second account that may edit labels and comment (as every Jira user may). Waits
move the emulator's clock instead of sleeping: the index catches up exactly when the lookup's
waits say it has.
"""

from __future__ import annotations

import logging

import pytest
import requests

from airflow_provider_jira_auth.client.idempotency import (
    COMMENT_PROPERTY,
    create_issue_once,
    create_issues_once,
    marker_label,
    with_marker,
)
from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.operators.conftest import Jira

LAG = 5.0  # the emulator's search index lag in these tests
FIELDS = {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}}


def client(jira: Jira):
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    return JiraCloudHook(jira.conn_id).get_conn()


def summaries(emu: JiraCloudEmulator, prefix: str) -> list[str]:
    found = (emu.get_issue(key)["fields"]["summary"] for key in emu.issue_keys())
    return sorted(s for s in found if s.startswith(prefix))


def killed_after_jira_created(jira: Jira, summary: str, key: str) -> str:
    """What a first try did before it was killed: its create, marker and all, reached Jira."""
    payload = with_marker({"fields": {**FIELDS, "summary": summary}}, marker_label(key))
    return client(jira).request("POST", "issue", json=payload)["key"]


@pytest.fixture
def lagging(jira: Jira) -> Jira:
    jira.emu.search_index_lag = LAG
    return jira


def test_twenty_creates_retried_at_once_within_the_index_lag_make_exactly_twenty_issues(lagging: Jira) -> None:
    emu, api = lagging.emu, client(lagging)
    before = len(emu.issue_keys())
    waits: list[float] = []
    # Ten single creates and a bulk create of ten, each first try killed after Jira applied it.
    for n in range(10):
        killed_after_jira_created(lagging, f"lag single {n}", f"single-{n}")
    bulk_keys = [f"bulk-{n}" for n in range(10)]
    for n, key in enumerate(bulk_keys):
        killed_after_jira_created(lagging, f"lag bulk {n}", key)

    # The retries, at once: none of those issues is searchable yet.
    for n in range(10):
        create_issue_once(
            api, {"fields": {**FIELDS, "summary": f"lag single {n}"}}, f"single-{n}",
            retrying=True, index_lag=LAG + 1, sleep=lambda s: (waits.append(s), emu.advance(s)),
        )
    result = create_issues_once(
        api, [{**FIELDS, "summary": f"lag bulk {n}"} for n in range(10)], bulk_keys,
        retrying=True, index_lag=LAG + 1, sleep=lambda s: (waits.append(s), emu.advance(s)),
    )

    assert not result.errors
    assert summaries(emu, "lag ") == sorted([f"lag single {n}" for n in range(10)] + [f"lag bulk {n}" for n in range(10)])
    assert len(emu.issue_keys()) == before + 20
    assert waits, "the retries found every issue without waiting for the index: the lag was not staged"


def test_a_retry_that_stops_waiting_for_the_index_creates_the_issue_twice(lagging: Jira) -> None:
    """What the wait is for: the same retry, not told it is one, duplicates the issue."""
    emu = lagging.emu
    killed_after_jira_created(lagging, "no wait", "k-no-wait")

    create_issue_once(client(lagging), {"fields": {**FIELDS, "summary": "no wait"}}, "k-no-wait", sleep=emu.advance)

    assert summaries(emu, "no wait") == ["no wait", "no wait"]


def test_a_first_try_does_not_wait_for_the_index(lagging: Jira) -> None:
    waits: list[float] = []

    client(lagging).create_issue({**FIELDS, "summary": "first try"}, idempotency_key="k-first")
    create_issue_once(client(lagging), {"fields": {**FIELDS, "summary": "first b"}}, "k-first-b", sleep=waits.append)

    assert waits == []
    assert summaries(lagging.emu, "first") == ["first b", "first try"]


def test_a_retry_that_finds_nothing_waits_the_whole_index_lag_then_creates_once(lagging: Jira) -> None:
    emu = lagging.emu
    waits: list[float] = []

    create_issue_once(
        client(lagging), {"fields": {**FIELDS, "summary": "nothing before"}}, "k-nothing",
        retrying=True, index_lag=LAG + 1, sleep=lambda s: (waits.append(s), emu.advance(s)),
    )

    assert sum(waits) == pytest.approx(LAG + 1)
    assert summaries(emu, "nothing before") == ["nothing before"]


def test_the_operator_retry_waits_for_the_index(lagging: Jira, context, monkeypatch) -> None:
    """JiraCreateIssueOperator on try 2 tells the lookup it is a retry; its waits run on the
    emulator's clock (the lookup's default wait, moved there), so the index catches up exactly
    as the waits add up."""
    from airflow_provider_jira_auth.client import idempotency
    from airflow_provider_jira_auth.operators.jira_cloud import JiraCreateIssueOperator, once_key

    emu = lagging.emu
    waits: list[float] = []
    monkeypatch.setattr(idempotency, "wait", lambda s: (waits.append(s), emu.advance(s)))
    op = JiraCreateIssueOperator(
        task_id="t", project_key="ENG", summary="operator retry", create_once=True, index_lag=LAG + 1,
        jira_conn_id=lagging.conn_id,
    )
    first = killed_after_jira_created(lagging, "operator retry", once_key(context, None))
    context["ti"].try_number = 2

    assert op.execute(context) == first
    assert summaries(emu, "operator retry") == ["operator retry"]
    assert waits  # it had to wait for the index


# -- other users' markers ----------------------------------------------------------------------------


@pytest.fixture
def intruder(jira: Jira):
    """A second account of the same site, allowed to edit labels and comment like any user."""
    return jira.emu.add_user("mallory@example.com", display_name="Mallory")


def as_user(emu: JiraCloudEmulator, user, method: str, path: str, body: dict) -> requests.Response:
    answer = requests.request(method, f"{emu.site_url}/rest/api/3/{path}", json=body, auth=(user.email, user.api_token), timeout=10)
    answer.raise_for_status()
    return answer


def test_marker_labels_another_user_plants_stop_no_create_and_are_logged(jira: Jira, intruder, caplog) -> None:
    emu = jira.emu
    keys = [f"planted-{n}" for n in range(20)]
    victim = emu.seed_issues(project="OPS", count=1)[0]  # the bot's own issue, but in another project
    own_elsewhere = marker_label(keys[0])
    mine = as_user(emu, intruder, "POST", "issue", {"fields": {**FIELDS, "summary": "planted"}}).json()["key"]
    for key in keys:
        as_user(emu, intruder, "PUT", f"issue/{mine}", {"update": {"labels": [{"add": marker_label(key)}]}})
    client(jira).request("PUT", f"issue/{victim}", json={"update": {"labels": [{"add": own_elsewhere}]}})

    with caplog.at_level(logging.WARNING, logger="airflow_provider_jira_auth.client.idempotency"):
        created = [client(jira).create_issue({**FIELDS, "summary": f"real {n}"}, idempotency_key=k) for n, k in enumerate(keys[:10])]
        bulk = client(jira).create_issues([{**FIELDS, "summary": f"real {n}"} for n in range(10, 20)], idempotency_keys=keys[10:])

    assert mine not in [c["key"] for c in created] + bulk.keys
    assert summaries(emu, "real ") == sorted(f"real {n}" for n in range(20))
    foreign = [r.getMessage() for r in caplog.records if "idempotency marker" in r.getMessage()]
    assert sum(f"Issue {mine} holds" in m and "Mallory" in m for m in foreign) == 20
    assert any(f"Issue {victim} holds" in m and "project OPS" in m for m in foreign)
    assert not any(intruder.api_token in m or intruder.email in m for m in foreign)


def test_marker_comments_another_user_adds_stop_no_comment_and_are_logged(jira: Jira, intruder, caplog) -> None:
    emu = jira.emu
    issue = emu.seed_issues(count=1)[0]
    keys = [f"comment-{n}" for n in range(20)]
    for key in keys:
        as_user(emu, intruder, "POST", f"issue/{issue}/comment", {
            "body": {"type": "doc", "version": 1, "content": []},
            "properties": [{"key": COMMENT_PROPERTY, "value": {"marker": marker_label(key)}}],
        })

    with caplog.at_level(logging.WARNING, logger="airflow_provider_jira_auth.client.idempotency"):
        comments = [client(jira).add_comment(issue, f"real comment {n}", idempotency_key=k) for n, k in enumerate(keys)]

    bot = client(jira).myself()["accountId"]
    assert [c["author"]["accountId"] for c in comments] == [bot] * 20
    assert len(emu.get_issue(issue)["fields"]["comment"]["comments"]) == 40
    foreign = [r.getMessage() for r in caplog.records if "idempotency marker" in r.getMessage()]
    assert len(foreign) == 20 and all("Mallory" in m for m in foreign)


def test_the_bots_own_marker_still_counts_when_others_planted_copies(jira: Jira, intruder) -> None:
    emu = jira.emu
    first = client(jira).create_issue({**FIELDS, "summary": "the one"}, idempotency_key="k-shared")
    planted = as_user(emu, intruder, "POST", "issue", {"fields": {**FIELDS, "summary": "decoy"}}).json()["key"]
    as_user(emu, intruder, "PUT", f"issue/{planted}", {"update": {"labels": [{"add": marker_label("k-shared")}]}})

    again = client(jira).create_issue({**FIELDS, "summary": "the one"}, idempotency_key="k-shared")

    assert again["key"] == first["key"]
    assert summaries(emu, "the one") == ["the one"]
