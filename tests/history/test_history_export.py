"""JiraSearchOperator(history=True): every changelog entry and every comment of each exported issue.

A search embeds a first page of each (40 histories with ``expand=changelog``, 20 comments in
``fields.comment`` on the emulator, as Jira truncates them); the rest is read with
``changelog/bulkfetch`` and ``GET issue/{key}/comment``, over real HTTP.
"""

from __future__ import annotations

import json

from airflow_provider_jira_auth.operators.jira_cloud import JiraSearchOperator
from tests.operators.conftest import Jira


def _history_of(jira: Jira, key: str, changes: int, comments: int) -> None:
    jira.emu.add_changelog(key, changes)
    jira.emu.add_comments(key, comments)


def _labels_changed_to(issue: dict) -> list[str]:
    return [item["toString"] for entry in issue["changelog"]["histories"] for item in entry["items"]]


def _comment_texts(issue: dict) -> list[str]:
    return [c["body"]["content"][0]["content"][0]["text"] for c in issue["fields"]["comment"]["comments"]]


def test_an_issue_with_250_changes_and_120_comments_is_exported_whole_as_xcom(jira: Jira, context) -> None:
    _history_of(jira, "ENG-2", 250, 120)
    op = JiraSearchOperator(
        task_id="export", jql="project = ENG ORDER BY key", history=True, jira_conn_id=jira.conn_id
    )

    issues = {issue["key"]: issue for issue in op.execute(context)}

    busy = issues["ENG-2"]
    assert _labels_changed_to(busy) == [f"step-{n}" for n in range(1, 251)]
    assert busy["changelog"]["total"] == 250
    assert _comment_texts(busy) == [f"Comment {n}" for n in range(1, 121)]
    assert busy["fields"]["comment"]["total"] == 120
    assert busy["fields"]["summary"] and busy["fields"]["status"]["name"] == "To Do"
    quiet = issues["ENG-1"]
    assert quiet["changelog"]["histories"] == [] and quiet["fields"]["comment"]["comments"] == []


def test_the_jsonl_export_carries_the_whole_history_too(jira: Jira, context, tmp_path) -> None:
    _history_of(jira, "ENG-3", 250, 120)
    target = tmp_path / "eng.jsonl"
    op = JiraSearchOperator(
        task_id="export", jql="project = ENG ORDER BY key", history=True, output_path=str(target),
        jira_conn_id=jira.conn_id,
    )

    result = op.execute(context)

    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert result["count"] == 5 == len(lines)
    busy = next(issue for issue in lines if issue["key"] == "ENG-3")
    assert len(busy["changelog"]["histories"]) == 250
    assert len(busy["fields"]["comment"]["comments"]) == 120
    assert len({entry["id"] for entry in busy["changelog"]["histories"]}) == 250


def test_only_issues_whose_embedded_history_is_short_cost_extra_calls(jira: Jira, context) -> None:
    """One bulk changelog request for the chunk; comment pages only for the issue with more than
    the search embedded (120 comments: 100 + 20 a page)."""
    _history_of(jira, "ENG-2", 250, 120)
    jira.emu.add_comments("ENG-4", 3)
    jira.emu.reset_requests()
    op = JiraSearchOperator(
        task_id="export", jql="project = ENG ORDER BY key", history=True, expand="changelog",
        jira_conn_id=jira.conn_id,
    )

    issues = {issue["key"]: issue for issue in op.execute(context)}

    calls = jira.api_calls()
    assert calls.count(("GET", "/rest/api/3/issue/ENG-2/comment")) == 2
    assert not any(path.endswith("/comment") and "ENG-2" not in path for _, path in calls)
    assert calls.count(("POST", "/rest/api/3/changelog/bulkfetch")) == 1
    assert _comment_texts(issues["ENG-4"]) == ["Comment 1", "Comment 2", "Comment 3"]


def test_a_transition_is_a_changelog_entry_of_the_export(jira: Jira, context) -> None:
    from airflow_provider_jira_auth.operators.jira_cloud import JiraTransitionIssueOperator

    JiraTransitionIssueOperator(
        task_id="move", issue_key="ENG-1", target_status="Done", jira_conn_id=jira.conn_id
    ).execute(context)
    op = JiraSearchOperator(task_id="export", jql="key = ENG-1", history=True, jira_conn_id=jira.conn_id)

    [issue] = op.execute(context)

    [entry] = issue["changelog"]["histories"]
    assert entry["items"][0]["field"] == "status"
    assert (entry["items"][0]["fromString"], entry["items"][0]["toString"]) == ("To Do", "Done")
    assert entry["author"]["accountId"]


def test_history_with_a_parallel_search_is_the_same_export(jira: Jira, context) -> None:
    _history_of(jira, "ENG-5", 250, 120)

    def export(**kwargs):
        return JiraSearchOperator(
            task_id="export", jql="project = ENG ORDER BY key", history=True, jira_conn_id=jira.conn_id, **kwargs
        ).execute(context)

    assert export(parallelism=3) == export()
