"""Scoped calls: with 3LO a missing scope fails before anything is sent; Basic auth is not checked."""

from __future__ import annotations

import asyncio

import pytest
from tests.operators.conftest import CONN_ID, Jira

from airflow_provider_jira_auth.client.errors import JiraScopeError
from airflow_provider_jira_auth.operators.jira_cloud import (
    JiraCreateIssueOperator,
    JiraRequestOperator,
    JiraSearchOperator,
    JiraTransitionIssueOperator,
)
from airflow_provider_jira_auth.scopes import (
    JiraMissingScopeError,
    operation_for_request,
    reconsent_command,
    scopes_for,
    scopes_for_request,
)

READ_ONLY = ("read:jira-work", "offline_access")


def test_a_write_without_write_scope_fails_before_calling_jira(oauth_connect, context) -> None:
    jira = oauth_connect(READ_ONLY)
    op = JiraCreateIssueOperator(task_id="ticket", project_key="ENG", summary="x", jira_conn_id=jira.conn_id)

    with pytest.raises(JiraMissingScopeError) as caught:
        op.execute(context)

    error = caught.value
    assert isinstance(error, JiraScopeError)  # one except handles this and Jira's own 401
    assert error.missing_scopes == ("write:jira-work",) and error.scope == "write:jira-work"
    assert "JiraCreateIssueOperator 'ticket'" in str(error)
    assert (
        f"airflow-jira-auth authorize --conn-id {CONN_ID} --scopes 'offline_access read:jira-work write:jira-work'"
        in str(error)
    )
    assert jira.api_calls() == []  # only the token endpoint was asked
    assert jira.token_calls() == 1


def test_a_read_then_write_operator_fails_before_its_first_read(oauth_connect, context) -> None:
    jira = oauth_connect(READ_ONLY)
    op = JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1", target_status="Done", jira_conn_id=jira.conn_id)

    with pytest.raises(JiraMissingScopeError, match="write:jira-work"):
        op.execute(context)
    assert jira.api_calls() == []


def test_a_grant_with_the_needed_scopes_passes(oauth_connect, context) -> None:
    jira = oauth_connect(READ_ONLY)

    issues = JiraSearchOperator(task_id="s", jql="project = ENG", jira_conn_id=jira.conn_id).execute(context)

    assert len(issues) == 5


def test_request_operator_checks_required_scopes(oauth_connect, context) -> None:
    jira = oauth_connect(("read:jira-work", "write:jira-work", "offline_access"))
    op = JiraRequestOperator(
        task_id="r", endpoint="project/ENG", required_scopes=["manage:jira-project"], jira_conn_id=jira.conn_id
    )

    with pytest.raises(JiraMissingScopeError, match="manage:jira-project"):
        op.execute(context)
    assert jira.api_calls() == []


def test_request_operator_infers_the_scopes_of_a_known_endpoint(oauth_connect, context) -> None:
    jira = oauth_connect(READ_ONLY)
    op = JiraRequestOperator(
        task_id="r",
        method="POST",
        endpoint="issue/ENG-1/comment",
        json={"body": {"type": "doc", "version": 1, "content": []}},
        jira_conn_id=jira.conn_id,
    )

    with pytest.raises(JiraMissingScopeError, match="write:jira-work"):
        op.execute(context)


def test_a_sensor_checks_its_scopes_too(oauth_connect, context) -> None:
    from airflow_provider_jira_auth.sensors.jira_cloud import JiraIssueSensor

    jira = oauth_connect(("read:jira-user", "offline_access"))
    sensor = JiraIssueSensor(task_id="w", issue_key="ENG-1", status="Done", jira_conn_id=jira.conn_id)

    with pytest.raises(JiraMissingScopeError, match="read:jira-work"):
        sensor.poke(context)


def test_the_trigger_reports_a_missing_scope_as_an_error_event(oauth_connect) -> None:
    from airflow_provider_jira_auth.triggers.jira_cloud import JiraJqlTrigger

    jira = oauth_connect(("read:jira-user", "offline_access"))
    trigger = JiraJqlTrigger(jql="project = ENG", jira_conn_id=jira.conn_id, poke_interval=0.01)

    async def first():
        return await anext(trigger.run())

    event = asyncio.run(first())

    assert event.payload["status"] == "error" and event.payload["error_type"] == "JiraMissingScopeError"
    assert "read:jira-work" in event.payload["message"]
    assert jira.api_calls() == []


def test_the_hook_reports_the_granted_scopes(oauth_connect) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    jira = oauth_connect(READ_ONLY)

    assert JiraCloudHook(jira.conn_id).granted_scopes() == frozenset(READ_ONLY)


def test_basic_auth_is_not_checked_and_jiras_own_scope_error_comes_through(jira_emulator, monkeypatch, context) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    reader = jira_emulator.add_user("reader@example.com", scopes=["read:jira-work"])
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", jira_emulator.connection_json("scoped", user=reader))
    jira = Jira(jira_emulator, "scoped")
    op = JiraCreateIssueOperator(task_id="c", project_key="ENG", summary="x", jira_conn_id=CONN_ID)

    with pytest.raises(JiraScopeError) as caught:
        op.execute(context)

    assert not isinstance(caught.value, JiraMissingScopeError) and caught.value.status == 401
    assert jira.api_calls() == [("POST", "/rest/api/3/issue")]  # sent: Basic auth does not pre-check
    assert JiraCloudHook(CONN_ID).granted_scopes() is None


# -- the declarations themselves -------------------------------------------------------------------


def test_scopes_for_unions_operations_and_refuses_unknown_ones() -> None:
    assert scopes_for("search_issues", "create_issue") == {"read:jira-work", "write:jira-work"}
    assert scopes_for("server_info") == frozenset()
    with pytest.raises(ValueError, match="known operations"):
        scopes_for("fly")


@pytest.mark.parametrize(
    ("method", "path", "operation", "scopes"),
    [
        ("GET", "issue/ENG-1", "get_issue", {"read:jira-work"}),
        ("PUT", "/rest/api/3/issue/ENG-1", "update_issue", {"write:jira-work"}),
        ("POST", "issue/bulk", "create_issues", {"write:jira-work"}),  # a literal segment beats {issueIdOrKey}
        ("POST", "issue", "create_issue", {"write:jira-work"}),
        ("GET", "myself?expand=groups", "myself", {"read:jira-user"}),
        ("GET", "issue/bulk", None, None),
        ("GET", "project/ENG", None, None),
    ],
)
def test_a_request_resolves_to_its_operation_and_the_scopes_it_needs(
    method: str, path: str, operation: str | None, scopes: set[str] | None
) -> None:
    found = operation_for_request(method, path)

    assert (found.name if found else None) == operation
    assert scopes_for_request(method, path) == scopes


def test_reconsent_command_always_asks_for_offline_access() -> None:
    assert (
        reconsent_command("c", ["write:jira-work"])
        == "airflow-jira-auth authorize --conn-id c --scopes 'offline_access write:jira-work'"
    )
