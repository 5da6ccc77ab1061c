"""Every REST call JiraClient makes is an operation of Jira Cloud's OpenAPI spec.

The calls are recorded, not listed: each public method of JiraClient runs against the emulator
over real HTTP, and what the emulator saw (method and path) is looked up in the spec. A new
public method without an exercise below fails ``test_every_endpoint_method_is_exercised``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_jira_auth.auth.basic import JiraBasicAuth
from airflow_provider_jira_auth.client import JiraClient, site_rest_url
from airflow_provider_jira_auth.testing import JiraCloudEmulator

from spec import find_operation, load_spec

#: Public JiraClient methods that are not endpoints of their own: ``request`` is the transport
#: (its path comes from the caller), ``close`` the lifecycle.
NOT_ENDPOINTS = frozenset({"request", "close"})

KEY = "ENG-1"
TASK = {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}}


def _transition(client: JiraClient) -> None:
    transition_id = client.get_transitions(KEY)[0]["id"]
    client.transition_issue(KEY, transition_id, fields={"labels": ["moved"]})


#: One call per public endpoint method, with arguments that make it reach Jira (lazy ones are consumed).
EXERCISES: dict[str, Callable[[JiraClient], Any]] = {
    "myself": lambda client: client.myself(),
    "server_info": lambda client: client.server_info(),
    "search_issues": lambda client: [
        *client.search_issues("project = ENG ORDER BY key", fields="summary", page_size=2),
        *client.search_issues("project = ENG ORDER BY key", fields="summary", page_size=2, parallelism=2),
    ],
    "approximate_count": lambda client: client.approximate_count("project = ENG"),
    "get_issue": lambda client: client.get_issue(KEY, fields=["summary", "status"], expand="names"),
    "bulk_fetch": lambda client: list(client.bulk_fetch([KEY, "ENG-2", "ENG-404"], fields="summary")),
    "create_issue": lambda client: client.create_issue({**TASK, "summary": "one", "description": "plain text"}),
    "create_issues": lambda client: client.create_issues([{**TASK, "summary": f"bulk {n}"} for n in range(3)]),
    "bulk_create_chunk": lambda client: client.bulk_create_chunk([{"fields": {**TASK, "summary": "chunk"}}]),
    "update_issue": lambda client: client.update_issue(KEY, fields={"summary": "renamed"}, notify_users=False),
    "get_transitions": lambda client: client.get_transitions(KEY),
    "transition_issue": _transition,
    "add_comment": lambda client: client.add_comment(KEY, "a comment"),
    "comments_by_id": lambda client: client.comments_by_id(
        [c["id"] for c in client.issue_comments(KEY)] or [10000], expand="properties"
    ),
    "issue_changelog": lambda client: list(client.issue_changelog(KEY, page_size=2)),
    "bulk_changelogs": lambda client: client.bulk_changelogs([KEY, "ENG-2"]),
    "issue_comments": lambda client: list(client.issue_comments(KEY, page_size=2)),
}

Call = tuple[str, str, int | None]  # (method, path, status) as the emulator saw it


def _endpoint_methods() -> set[str]:
    public = {name for name, _ in inspect.getmembers(JiraClient, inspect.isfunction) if not name.startswith("_")}
    return public - NOT_ENDPOINTS


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


@pytest.fixture(scope="module")
def recorded(spec: dict[str, Any]) -> Iterator[dict[str, list[Call]]]:
    """The REST calls each exercise made, by JiraClient method name."""
    calls: dict[str, list[Call]] = {}
    with JiraCloudEmulator() as emu:
        emu.seed_issues(count=5)
        emu.add_changelog(KEY, 3)
        emu.add_comments(KEY, 3)
        user = emu.default_user
        with JiraClient(site_rest_url(emu.url), JiraBasicAuth(user.email, user.api_token), timeout=10) as client:
            for name, exercise in EXERCISES.items():
                emu.reset_requests()
                exercise(client)
                calls[name] = [(r.method, r.path, r.status) for r in emu.requests]
    yield calls


def test_every_endpoint_method_is_exercised() -> None:
    endpoint_methods = _endpoint_methods()

    missing = sorted(endpoint_methods - EXERCISES.keys())
    stale = sorted(EXERCISES.keys() - endpoint_methods)

    assert not missing, (
        f"JiraClient methods with no exercise in EXERCISES (add one so their calls are checked): {missing}"
    )
    assert not stale, f"EXERCISES names methods JiraClient no longer has: {stale}"


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_exercise_reaches_jira(recorded: dict[str, list[Call]], name: str) -> None:
    calls = recorded[name]

    assert calls, f"JiraClient.{name} made no REST call: the exercise did not reach Jira"
    failed = [call for call in calls if call[2] is None or not 200 <= call[2] < 300]
    assert not failed, f"JiraClient.{name}: the emulator refused {failed}, so the exercise is not representative"


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_calls_are_operations_of_the_spec(spec: dict[str, Any], recorded: dict[str, list[Call]], name: str) -> None:
    unknown = [f"{method} {path}" for method, path, _ in recorded[name] if find_operation(spec, method, path) is None]

    assert not unknown, f"JiraClient.{name} calls what Jira Cloud's OpenAPI spec does not have: {unknown}"


def test_recorded_calls_resolve_to_the_expected_templates(
    recorded: dict[str, list[Call]], spec: dict[str, Any]
) -> None:
    """A sample that pins the path matching down: keys become ``{issueIdOrKey}``, literals win."""
    resolved = {
        (method, found[0])
        for calls in recorded.values()
        for method, path, _ in calls
        if (found := find_operation(spec, method, path)) is not None
    }

    assert {
        ("GET", "/rest/api/3/issue/{issueIdOrKey}"),
        ("POST", "/rest/api/3/issue/{issueIdOrKey}/transitions"),
        ("POST", "/rest/api/3/issue/bulk"),
        ("POST", "/rest/api/3/issue/bulkfetch"),
        ("POST", "/rest/api/3/search/jql"),
    } <= resolved


# -- the spec helper itself --------------------------------------------------------------------------


def test_find_operation_prefers_a_literal_segment_to_a_parameter(spec: dict[str, Any]) -> None:
    found = find_operation(spec, "POST", "/rest/api/3/issue/bulk")

    assert found is not None
    assert found[0] == "/rest/api/3/issue/bulk"


def test_find_operation_decodes_keys_and_strips_the_gateway_and_query(spec: dict[str, Any]) -> None:
    found = find_operation(spec, "GET", "/ex/jira/0123-abcd/rest/api/3/issue/ENG%2D7/transitions?expand=x")

    assert found is not None
    assert found[0] == "/rest/api/3/issue/{issueIdOrKey}/transitions"
    assert found[1]["operationId"] == "getTransitions"


def test_find_operation_refuses_unknown_paths_and_methods(spec: dict[str, Any]) -> None:
    assert find_operation(spec, "GET", "/rest/api/3/search") is not None  # still in the spec, though 410 on Cloud
    assert find_operation(spec, "GET", "/rest/api/3/no-such-resource") is None
    assert find_operation(spec, "PATCH", "/rest/api/3/myself") is None
    assert find_operation(spec, "GET", "/rest/api/2/myself") is None
    # The path resolves to bulk create, which has no GET: not "get the issue called bulk".
    assert find_operation(spec, "GET", "/rest/api/3/issue/bulk") is None
