"""The operators, executed in-process with a real hook against the emulator, Basic and 3LO alike."""

from __future__ import annotations

import json

import pytest
from tests.operators.conftest import Jira

from airflow_provider_jira_auth.client.errors import JiraBulkError, JiraNotFoundError
from airflow_provider_jira_auth.operators.jira_cloud import (
    JiraCommentOperator,
    JiraCreateIssueOperator,
    JiraRequestOperator,
    JiraSearchOperator,
    JiraTransitionError,
    JiraTransitionIssueOperator,
    JiraUpdateIssueOperator,
)

ADF = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "as is"}]}]}


def _status(jira: Jira, key: str) -> str:
    return jira.emu.get_issue(key)["fields"]["status"]["name"]


# -- search ----------------------------------------------------------------------------------------


def test_search_returns_the_issues_with_the_chosen_fields(jira: Jira, context) -> None:
    op = JiraSearchOperator(
        task_id="s", jql="project = ENG ORDER BY key", fields=["summary"], jira_conn_id=jira.conn_id
    )

    issues = op.execute(context)

    assert [i["key"] for i in issues] == [f"ENG-{n}" for n in range(1, 6)]
    assert set(issues[0]) == {"id", "key", "fields"}  # no self links: small XComs
    assert set(issues[0]["fields"]) == {"summary"}
    json.dumps(issues)


def test_search_above_max_xcom_issues_fails_clearly_without_reading_everything(jira: Jira, context) -> None:
    from airflow_provider_jira_auth._compat import AirflowFailException

    jira.emu.seed_issues(project="ENG", count=300)
    op = JiraSearchOperator(task_id="s", jql="project = ENG", max_xcom_issues=120, jira_conn_id=jira.conn_id)

    with pytest.raises(AirflowFailException, match=r"max_xcom_issues=120.*output_path"):
        op.execute(context)
    assert len([c for c in jira.api_calls() if c[1].endswith("/search/jql")]) == 2  # 2 pages of 100, not 4


def test_search_with_output_path_streams_jsonl_and_returns_path_and_count(jira: Jira, context, tmp_path) -> None:
    jira.emu.seed_issues(project="ENG", count=250)
    path = tmp_path / "out" / "eng.jsonl"
    op = JiraSearchOperator(
        task_id="s",
        jql="project = ENG ORDER BY key",
        max_xcom_issues=10,
        output_path=str(path),
        jira_conn_id=jira.conn_id,
    )

    result = op.execute(context)

    lines = path.read_text().splitlines()
    assert result == {"path": str(path), "count": 255}
    assert len(lines) == 255 and json.loads(lines[0])["key"] == "ENG-1"
    assert not path.with_name("eng.jsonl.part").exists()


def test_search_renders_jql_fields_and_output_path_from_the_task_context() -> None:
    from airflow.sdk.definitions._internal.templater import SandboxedEnvironment

    op = JiraSearchOperator(
        task_id="s",
        jql="project = {{ params.project }} AND created >= '{{ ds }}'",
        fields=["{{ params.field }}"],
        output_path="/data/{{ params.project }}/{{ ds }}.jsonl",
    )

    op.render_template_fields({"ds": "2026-01-01", "params": {"project": "ENG", "field": "summary"}}, SandboxedEnvironment())

    assert op.jql == "project = ENG AND created >= '2026-01-01'"
    assert op.fields == ["summary"]
    assert op.output_path == "/data/ENG/2026-01-01.jsonl"


def test_search_parallelism_is_templated_and_reaches_the_client(jira: Jira, context) -> None:
    from airflow.sdk.definitions._internal.templater import SandboxedEnvironment

    jira.emu.seed_issues(project="ENG", count=115)
    op = JiraSearchOperator(
        task_id="s",
        jql="project = ENG ORDER BY key DESC",
        fields=["summary"],
        page_size=10,
        parallelism="{{ params.threads }}",
        jira_conn_id=jira.conn_id,
    )
    op.render_template_fields({"params": {"threads": "3"}}, SandboxedEnvironment())
    jira.emu.set_answer_delays(0.02)
    jira.emu.reset_requests()
    jira.emu.reset_stats()

    issues = op.execute(context)

    assert op.parallelism == "3"
    assert [i["key"] for i in issues] == [f"ENG-{n}" for n in range(120, 0, -1)]
    calls = jira.api_calls()
    assert calls.count(("POST", "/rest/api/3/search/jql")) == 1
    assert calls.count(("POST", "/rest/api/3/issue/bulkfetch")) == 12
    assert jira.emu.stats.peak_concurrent_calls == 3


def test_search_without_parallelism_is_the_plain_stream(jira: Jira, context) -> None:
    op = JiraSearchOperator(task_id="s", jql="project = ENG ORDER BY key", page_size=2, jira_conn_id=jira.conn_id)

    assert len(op.execute(context)) == 5
    assert {c[1] for c in jira.api_calls()} == {"/rest/api/3/search/jql"}


# -- create ----------------------------------------------------------------------------------------


def test_create_one_issue_converts_a_plain_text_description_to_adf(jira: Jira, context) -> None:
    op = JiraCreateIssueOperator(
        task_id="c",
        project_key="ENG",
        summary="Load failed",
        issue_type="Bug",
        description="First line\nsecond line\n\nNew paragraph",
        labels=["airflow"],
        jira_conn_id=jira.conn_id,
    )

    key = op.execute(context)

    fields = jira.emu.get_issue(key)["fields"]
    assert (
        fields["summary"] == "Load failed" and fields["issuetype"]["name"] == "Bug" and fields["labels"] == ["airflow"]
    )
    assert fields["description"]["type"] == "doc" and len(fields["description"]["content"]) == 2


def test_create_passes_an_adf_description_through(jira: Jira, context) -> None:
    key = JiraCreateIssueOperator(
        task_id="c", project_key="ENG", summary="x", description=ADF, jira_conn_id=jira.conn_id
    ).execute(context)

    assert jira.emu.get_issue(key)["fields"]["description"] == ADF


def test_create_many_returns_the_keys_in_input_order_across_bulk_calls(jira: Jira, context) -> None:
    issues = [{"summary": f"bulk {n}", "description": "text"} for n in range(120)]
    op = JiraCreateIssueOperator(task_id="c", project_key="ENG", issues=issues, jira_conn_id=jira.conn_id)

    keys = op.execute(context)

    assert len(keys) == 120
    assert [jira.emu.get_issue(k)["fields"]["summary"] for k in (keys[0], keys[-1])] == ["bulk 0", "bulk 119"]
    assert [c for c in jira.api_calls() if c[1].endswith("/issue/bulk")] == [("POST", "/rest/api/3/issue/bulk")] * 3


@pytest.mark.parametrize(("count", "per_call"), [(50, [50]), (51, [50, 1]), (100, [50, 50])])
def test_create_many_sends_at_most_50_issues_per_bulk_call(jira: Jira, context, count: int, per_call: list[int]) -> None:
    issues = [{"summary": f"bulk {n}"} for n in range(count)]

    keys = JiraCreateIssueOperator(task_id="c", project_key="ENG", issues=issues, jira_conn_id=jira.conn_id).execute(
        context
    )

    bulk_calls = [r for r in jira.emu.requests if r.method == "POST" and r.path.endswith("/rest/api/3/issue/bulk")]
    assert [len(r.body["issueUpdates"]) for r in bulk_calls] == per_call
    assert len(keys) == count


def test_create_many_reports_each_failed_element_and_pushes_what_was_created(jira: Jira, context, capsys) -> None:
    issues = [{"summary": "ok 1"}, {"summary": "bad", "issuetype": {"name": "NoSuchType"}}, {"summary": "ok 2"}]
    op = JiraCreateIssueOperator(task_id="c", project_key="ENG", issues=issues, jira_conn_id=jira.conn_id)

    with pytest.raises(JiraBulkError, match="1 of 3 issues were not created: #1"):
        op.execute(context)

    created = context["ti"].pushed["created_keys"]
    assert [jira.emu.get_issue(k)["fields"]["summary"] for k in created] == ["ok 1", "ok 2"]
    assert "Issue #1 ('bad') was not created: issuetype:" in capsys.readouterr().out  # Airflow logs to stdout


def test_create_many_without_fail_on_error_returns_what_was_created(jira: Jira, context) -> None:
    issues = [{"summary": "ok"}, {"summary": "bad", "issuetype": {"name": "NoSuchType"}}]
    op = JiraCreateIssueOperator(
        task_id="c", project_key="ENG", issues=issues, fail_on_error=False, jira_conn_id=jira.conn_id
    )

    assert len(op.execute(context)) == 1


def test_create_needs_summary_or_issues_not_both() -> None:
    with pytest.raises(ValueError, match="either summary"):
        JiraCreateIssueOperator(task_id="c", project_key="ENG")
    with pytest.raises(ValueError, match="either summary"):
        JiraCreateIssueOperator(task_id="c", project_key="ENG", summary="x", issues=[{}])


# -- update, comment -------------------------------------------------------------------------------


def test_update_sets_fields_and_applies_operations(jira: Jira, context) -> None:
    op = JiraUpdateIssueOperator(
        task_id="u",
        issue_key="ENG-1",
        fields={"summary": "renamed"},
        update={"labels": [{"add": "triaged"}]},
        jira_conn_id=jira.conn_id,
    )

    assert op.execute(context) == "ENG-1"
    fields = jira.emu.get_issue("ENG-1")["fields"]
    assert fields["summary"] == "renamed" and "triaged" in fields["labels"]


def test_comment_converts_plain_text_to_adf(jira: Jira, context) -> None:
    op = JiraCommentOperator(
        task_id="c", issue_key="ENG-2", body="Loaded 42 rows.\n\nAll good.", jira_conn_id=jira.conn_id
    )

    comment_id = op.execute(context)

    comments = jira.emu.get_issue("ENG-2")["fields"]["comment"]["comments"]
    assert [c["id"] for c in comments] == [comment_id]
    assert comments[0]["body"]["type"] == "doc" and len(comments[0]["body"]["content"]) == 2


def test_comment_on_a_missing_issue_raises_not_found(jira: Jira, context) -> None:
    with pytest.raises(JiraNotFoundError):
        JiraCommentOperator(task_id="c", issue_key="ENG-999", body="x", jira_conn_id=jira.conn_id).execute(context)


# -- transitions -----------------------------------------------------------------------------------


def test_transition_by_name_is_case_insensitive(jira: Jira, context) -> None:
    op = JiraTransitionIssueOperator(
        task_id="t", issue_key="ENG-1", transition="start PROGRESS", jira_conn_id=jira.conn_id
    )

    assert op.execute(context) == {"issue_key": "ENG-1", "status": "In Progress", "transitioned": True}
    assert _status(jira, "ENG-1") == "In Progress"


def test_transition_by_target_status_picks_the_transition_leading_there(jira: Jira, context) -> None:
    op = JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1", target_status="done", jira_conn_id=jira.conn_id)

    assert op.execute(context)["transitioned"] is True
    assert _status(jira, "ENG-1") == "Done"
    assert ("POST", "/rest/api/3/issue/ENG-1/transitions") in jira.api_calls()


def test_transition_to_the_status_the_issue_is_in_makes_no_transition_call(jira: Jira, context) -> None:
    jira.emu.set_status("ENG-1", "Done")
    jira.emu.reset_requests()
    op = JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1", target_status="Done", jira_conn_id=jira.conn_id)

    assert op.execute(context) == {"issue_key": "ENG-1", "status": "Done", "transitioned": False}
    assert jira.api_calls() == [("GET", "/rest/api/3/issue/ENG-1")]


def test_transition_by_target_status_ignores_case_when_the_issue_is_already_there(jira: Jira, context) -> None:
    jira.emu.set_status("ENG-1", "Done")
    jira.emu.reset_requests()
    op = JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1", target_status="done", jira_conn_id=jira.conn_id)

    assert op.execute(context) == {"issue_key": "ENG-1", "status": "Done", "transitioned": False}
    assert not [c for c in jira.api_calls() if c[0] == "POST"]


def test_transition_by_name_to_where_the_issue_already_is_makes_no_transition_call(jira: Jira, context) -> None:
    jira.emu.set_status("ENG-1", "Done")  # "Done" offers only Reopen; the name is the current status
    jira.emu.reset_requests()
    op = JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1", transition="done", jira_conn_id=jira.conn_id)

    assert op.execute(context) == {"issue_key": "ENG-1", "status": "Done", "transitioned": False}
    assert not [c for c in jira.api_calls() if c[0] == "POST"]


def test_a_transition_that_leads_back_to_the_current_status_is_not_made(jira: Jira, context) -> None:
    jira.emu.add_transition("In Progress", "Log Work", "In Progress")
    jira.emu.set_status("ENG-1", "In Progress")
    jira.emu.reset_requests()
    op = JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1", transition="Log Work", jira_conn_id=jira.conn_id)

    assert op.execute(context) == {"issue_key": "ENG-1", "status": "In Progress", "transitioned": False}
    assert not [c for c in jira.api_calls() if c[0] == "POST"]


def test_an_unknown_transition_fails_listing_the_available_ones(jira: Jira, context) -> None:
    op = JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1", transition="Ship it", jira_conn_id=jira.conn_id)

    with pytest.raises(JiraTransitionError) as caught:
        op.execute(context)

    message = str(caught.value)
    assert "'Ship it'" in message and "'To Do'" in message
    assert "'Start Progress' (id 21) -> 'In Progress'" in message and "'Done' (id 31) -> 'Done'" in message
    assert _status(jira, "ENG-1") == "To Do"


def test_an_unreachable_target_status_fails_listing_the_available_transitions(jira: Jira, context) -> None:
    op = JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1", target_status="Blocked", jira_conn_id=jira.conn_id)

    with pytest.raises(JiraTransitionError, match=r"no transition leads to status 'Blocked'.*Start Progress"):
        op.execute(context)


def test_transition_needs_a_name_or_a_target_status() -> None:
    with pytest.raises(ValueError):
        JiraTransitionIssueOperator(task_id="t", issue_key="ENG-1")


# -- any endpoint ----------------------------------------------------------------------------------


def test_request_calls_any_endpoint_and_filters_the_answer(jira: Jira, context) -> None:
    op = JiraRequestOperator(
        task_id="r",
        endpoint="project/ENG",
        required_scopes=["read:jira-work"],
        response_filter=lambda project: project["key"],
        jira_conn_id=jira.conn_id,
    )

    assert op.execute(context) == "ENG"


def test_request_sends_query_and_body(jira: Jira, context) -> None:
    op = JiraRequestOperator(
        task_id="r",
        method="POST",
        endpoint="search/jql",
        json={"jql": "project = ENG ORDER BY key", "maxResults": 2},
        jira_conn_id=jira.conn_id,
    )

    assert [i["key"] for i in op.execute(context)["issues"]] == ["ENG-1", "ENG-2"]
