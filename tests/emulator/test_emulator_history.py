"""The emulator's issue history: truncated where Jira embeds it, whole where Jira pages it."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator


def _auth(emu: JiraCloudEmulator) -> tuple[str, str]:
    return emu.default_user.email, emu.default_user.api_token


def _api(emu: JiraCloudEmulator, path: str) -> str:
    return f"{emu.url}/rest/api/3/{path}"


def test_get_issue_embeds_at_most_100_changelog_entries_and_search_40(
    emu: JiraCloudEmulator, http: requests.Session
) -> None:
    emu.seed_issues(count=1)
    emu.add_changelog("ENG-1", 150)

    issue = http.get(_api(emu, "issue/ENG-1"), params={"expand": "changelog"}, auth=_auth(emu)).json()
    found = http.post(
        _api(emu, "search/jql"), json={"jql": "key = ENG-1", "expand": "changelog"}, auth=_auth(emu)
    ).json()["issues"][0]

    assert (issue["changelog"]["total"], len(issue["changelog"]["histories"])) == (150, 100)
    assert (found["changelog"]["total"], len(found["changelog"]["histories"])) == (150, 40)


def test_the_comment_field_embeds_a_first_page_and_the_comment_endpoint_pages_100(
    emu: JiraCloudEmulator, http: requests.Session
) -> None:
    emu.seed_issues(count=1)
    emu.add_comments("ENG-1", 130)

    field = http.get(_api(emu, "issue/ENG-1"), params={"fields": "comment"}, auth=_auth(emu)).json()["fields"]["comment"]
    page = http.get(_api(emu, "issue/ENG-1/comment"), params={"maxResults": 500}, auth=_auth(emu)).json()

    assert (field["total"], len(field["comments"])) == (130, 20)
    assert (page["total"], page["maxResults"], len(page["comments"])) == (130, 100, 100)


def test_changelog_bulkfetch_refuses_more_than_1000_issues(emu: JiraCloudEmulator, http: requests.Session) -> None:
    answer = http.post(
        _api(emu, "changelog/bulkfetch"), json={"issueIdsOrKeys": [f"ENG-{n}" for n in range(1001)]}, auth=_auth(emu)
    )

    assert answer.status_code == 400
    assert "1000" in answer.json()["errorMessages"][0]


@pytest.mark.parametrize("endpoint", ["changelog/bulkfetch", "issue/bulkfetch"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"issueIdsOrKeys": ["ENG-1"], "jql": "x"}, 'Unrecognized field "jql" in the request body.'),
        ({"issueIdsOrKeys": []}, "issueIdsOrKeys must be a non-empty list of issue ids or keys."),
        ({}, "issueIdsOrKeys must be a non-empty list of issue ids or keys."),
    ],
)
def test_both_bulk_endpoints_refuse_an_unknown_field_and_an_empty_issue_list(
    emu: JiraCloudEmulator, http: requests.Session, endpoint: str, body: dict, message: str
) -> None:
    answer = http.post(_api(emu, endpoint), json=body, auth=_auth(emu))

    assert (answer.status_code, answer.json()["errorMessages"]) == (400, [message])


def test_a_transition_adds_a_status_entry_to_the_changelog(emu: JiraCloudEmulator, http: requests.Session) -> None:
    emu.seed_issues(count=1, statuses=["To Do"])

    http.post(_api(emu, "issue/ENG-1/transitions"), json={"transition": {"id": "21"}}, auth=_auth(emu))
    values = http.get(_api(emu, "issue/ENG-1/changelog"), auth=_auth(emu)).json()["values"]

    assert [(i["fromString"], i["toString"]) for e in values for i in e["items"]] == [("To Do", "In Progress")]
    assert values[0]["author"]["accountId"] == emu.default_user.account_id
