"""seed_issue() and edit_issue(): issues with the timestamps, people and custom fields a test needs, over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator


def search(http: requests.Session, emu: JiraCloudEmulator, jql: str, user=None, fields=("*all",)) -> list[dict]:
    who = user or emu.default_user
    response = http.post(
        f"{emu.url}/rest/api/3/search/jql", json={"jql": jql, "fields": list(fields)}, auth=(who.email, who.api_token)
    )
    assert response.status_code == 200, response.text
    return response.json()["issues"]


def test_a_seeded_issue_has_what_it_was_given(emu: JiraCloudEmulator, http: requests.Session) -> None:
    bob = emu.add_user("bob@example.com", time_zone="Europe/Berlin")
    created = datetime(2026, 3, 1, 9, 15, 30, 250000, tzinfo=timezone.utc)

    key = emu.seed_issue(
        "OPS", summary="Rotate the keys", created=created, updated="2026-03-02T10:00:00+01:00",
        status="Done", issue_type="Bug", labels=["security"], assignee=bob, reporter="bob@example.com",
        custom_fields={"customfield_10010": 5},
    )

    (issue,) = search(http, emu, "project = OPS")
    fields = issue["fields"]
    assert issue["key"] == key == "OPS-1"
    assert (fields["created"], fields["updated"]) == ("2026-03-01T09:15:30.250+0000", "2026-03-02T09:00:00.000+0000")
    assert fields["status"]["name"] == "Done" and fields["resolution"]["name"] == "Done"
    assert fields["issuetype"]["name"] == "Bug" and fields["labels"] == ["security"]
    assert fields["assignee"]["accountId"] == fields["reporter"]["accountId"] == bob.account_id
    assert fields["customfield_10010"] == 5
    assert "customfield_10010" not in search(http, emu, "project = OPS", fields=["summary"])[0]["fields"]
    assert search(http, emu, "project = OPS", fields=["customfield_10010"])[0]["fields"] == {"customfield_10010": 5}


def test_an_edit_at_a_time_moves_updated_and_jql_sees_it_in_the_users_zone(emu, http) -> None:
    key = emu.seed_issue(created=datetime(2026, 3, 1, tzinfo=timezone.utc))
    at = datetime(2026, 3, 5, 18, 29, 45, tzinfo=timezone.utc)  # 2026-03-06 00:00 in Kolkata, 15 s early
    emu.default_user.time_zone = "Asia/Kolkata"

    emu.edit_issue(key, {"summary": "Renamed", "assignee": emu.default_user, "customfield_10020": "x"}, status="In Progress", at=at)

    fields = emu.get_issue(key)["fields"]
    assert fields["updated"] == "2026-03-05T18:29:45.000+0000" and fields["summary"] == "Renamed"
    assert fields["status"]["name"] == "In Progress" and fields["customfield_10020"] == "x"
    assert fields["assignee"]["accountId"] == emu.default_user.account_id
    assert [i["key"] for i in search(http, emu, 'updated >= "2026-03-05 23:59"')] == [key]
    assert search(http, emu, 'updated >= "2026-03-06 00:00"') == []
    assert emu.get_issue(key)["fields"]["created"] == "2026-03-01T00:00:00.000+0000"


def test_seeding_mistakes_are_named(emu: JiraCloudEmulator) -> None:
    with pytest.raises(ValueError, match="updated must not be before created"):
        emu.seed_issue(created=datetime(2026, 3, 2, tzinfo=timezone.utc), updated=datetime(2026, 3, 1, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="created must be an aware datetime"):
        emu.seed_issue(created=datetime(2026, 3, 2))
    with pytest.raises(ValueError, match="assignee: no account"):
        emu.seed_issue(assignee="nobody@example.com")
    with pytest.raises(ValueError, match="customfield_10010, not 'points'"):
        emu.seed_issue(custom_fields={"points": 3})
    key = emu.seed_issue()
    with pytest.raises(ValueError, match="cannot edit 'status'"):
        emu.edit_issue(key, {"status": "Done"})
    with pytest.raises(Exception):
        emu.add_user("tz@example.com", time_zone="Mars/Olympus")


def test_seed_issue_defaults_to_now_and_the_default_reporter(emu: JiraCloudEmulator) -> None:
    emu.advance(3600)
    key = emu.seed_issue()
    fields = emu.get_issue(key)["fields"]
    expected = datetime.now(timezone.utc) + timedelta(hours=1)
    created = datetime.strptime(fields["created"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert abs((created - expected).total_seconds()) < 30 and fields["updated"] == fields["created"]
    assert fields["reporter"]["accountId"] == emu.default_user.account_id and fields["assignee"] is None
