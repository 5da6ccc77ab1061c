"""The emulator as a real site is: a search index that lags its writes, bulk changes, other users.

Over real HTTP, as a client sees them.
"""

from __future__ import annotations

import pytest
import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator


@pytest.fixture
def emu():
    with JiraCloudEmulator() as emulator:
        yield emulator


def call(emu: JiraCloudEmulator, method: str, path: str, user=None, **kwargs) -> requests.Response:
    user = user or emu.default_user
    return requests.request(method, f"{emu.url}/rest/api/3/{path}", auth=(user.email, user.api_token), timeout=10, **kwargs)


def search(emu: JiraCloudEmulator, jql: str, user=None, **body) -> list[str]:
    answer = call(emu, "POST", "search/jql", user, json={"jql": jql, "fields": ["summary"], **body})
    answer.raise_for_status()
    return [issue["key"] for issue in answer.json()["issues"]]


def test_the_search_index_shows_a_write_only_after_its_lag_or_when_reconciled(emu: JiraCloudEmulator) -> None:
    emu.search_index_lag = 5
    created = call(emu, "POST", "issue", json={"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "new"}}).json()

    assert search(emu, "project = ENG") == []
    assert call(emu, "GET", f"issue/{created['key']}").status_code == 200  # reads by key are consistent
    assert search(emu, "project = ENG", reconcileIssues=[int(created["id"])]) == [created["key"]]
    assert call(emu, "POST", "search/approximate-count", json={"jql": "project = ENG"}).json()["count"] == 0
    emu.advance(5)
    assert search(emu, "project = ENG") == [created["key"]]
    # An edit hides the issue from search again until the index has caught up with it.
    emu.edit_issue(created["key"], {"summary": "edited"})
    assert search(emu, "project = ENG") == []
    emu.advance(5)
    assert search(emu, "summary ~ edited") == [created["key"]]


def test_more_than_fifty_issues_cannot_be_reconciled_at_once(emu: JiraCloudEmulator) -> None:
    answer = call(emu, "POST", "search/jql", json={"jql": "project = ENG", "reconcileIssues": list(range(51))})
    assert answer.status_code == 400 and "reconcileIssues" in answer.text


def test_a_bulk_edit_changes_every_issue_in_one_instant(emu: JiraCloudEmulator) -> None:
    keys = emu.seed_issues(count=30)
    emu.advance(60)
    emu.bulk_edit(keys, {"labels": ["sprint-9"]}, status="Done")

    stamps = {emu.get_issue(key)["fields"]["updated"] for key in keys}
    assert len(stamps) == 1
    assert sorted(search(emu, "labels = sprint-9 AND status = Done")) == sorted(keys)


def test_every_issue_names_its_creator_whom_no_edit_changes(emu: JiraCloudEmulator) -> None:
    other = emu.add_user("erin@example.com")
    created = call(emu, "POST", "issue", other, json={"fields": {
        "project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "hers",
        "reporter": {"accountId": emu.default_user.account_id},
    }}).json()
    call(emu, "PUT", f"issue/{created['key']}", json={"fields": {"reporter": {"accountId": other.account_id}}})

    fields = emu.get_issue(created["key"])["fields"]
    assert fields["creator"]["accountId"] == other.account_id


def test_a_user_sees_only_the_projects_it_may_browse(emu: JiraCloudEmulator) -> None:
    emu.seed_issues(project="OPS", count=2)
    eng = emu.seed_issues(project="ENG", count=2)
    narrow = emu.add_user("nora@example.com", projects=["ENG"])

    assert sorted(search(emu, "project in (ENG, OPS)", narrow)) == sorted(eng)
    assert call(emu, "GET", "issue/OPS-1", narrow).status_code == 404
    fetched = call(emu, "POST", "issue/bulkfetch", narrow, json={"issueIdsOrKeys": ["OPS-1", eng[0]]}).json()
    assert [i["key"] for i in fetched["issues"]] == [eng[0]]
    emu.set_browse(narrow, None)
    assert call(emu, "GET", "issue/OPS-1", narrow).status_code == 200
