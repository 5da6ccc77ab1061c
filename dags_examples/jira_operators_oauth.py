"""Bulk work over an OAuth 2.0 (3LO) connection, with scope checks and deferrable sensors.

Each operator declares the Jira calls it makes; with 3LO the provider compares the scopes they
need with those the grant holds and fails before calling if one is missing, naming it and the
command to consent again. Creates a batch of issues in one bulk call, closes them with a
mapped transition task, and waits (in the triggerer) until none of the batch is open.

Uses the ``jira_cloud_oauth`` connection (see the README: OAuth 2.0); ``make demo`` creates it
against the Jira Cloud emulator.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from airflow_provider_jira_auth.operators.jira_cloud import (
    JiraCreateIssueOperator,
    JiraRequestOperator,
    JiraSearchOperator,
    JiraTransitionIssueOperator,
)
from airflow_provider_jira_auth.sensors.jira_cloud import JiraJqlSensor

CONN_ID = "jira_cloud_oauth"
PROJECT = "ENG"
BATCH_LABEL = "batch-{{ ds_nodash }}"


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jira", "example", "oauth2"],
    default_args={"jira_conn_id": CONN_ID},
)
def jira_operators_oauth():
    # Known endpoint: its scope (read:jira-user) is checked against the grant before calling.
    who = JiraRequestOperator(
        task_id="who_am_i",
        endpoint="myself",
        response_filter=lambda me: me["displayName"],
    )
    # Any other endpoint: say which scopes it needs.
    project = JiraRequestOperator(
        task_id="project",
        endpoint=f"project/{PROJECT}",
        required_scopes=["read:jira-work"],
        response_filter=lambda p: {"id": p["id"], "key": p["key"], "name": p["name"]},
    )
    work_exists = JiraJqlSensor(
        task_id="work_exists",
        jql=f"project = {PROJECT}",
        min_count=1,
        deferrable=True,
        poke_interval=10,
        timeout=600,
    )
    batch = JiraCreateIssueOperator(
        task_id="batch",
        project_key=PROJECT,
        issues=[
            {
                "summary": f"Migrate table {table}",
                "labels": [BATCH_LABEL],
                "description": f"Move {table} to the new cluster.",
            }
            for table in ("users", "orders", "payments", "events")
        ],
    )
    batch_in_jira = JiraSearchOperator(
        task_id="batch_in_jira",
        jql=f'project = {PROJECT} AND labels = "{BATCH_LABEL}" ORDER BY key',
        fields=["summary", "status"],
    )
    # One mapped task per created key (the bulk create returns them as a list).
    close = JiraTransitionIssueOperator.partial(task_id="close", target_status="Done").expand(issue_key=batch.output)
    none_open = JiraJqlSensor(
        task_id="none_open",
        jql=f'project = {PROJECT} AND labels = "{BATCH_LABEL}" AND statusCategory != Done',
        expect_none=True,
        deferrable=True,
        poke_interval=10,
        timeout=600,
    )

    [who, project, work_exists] >> batch >> [batch_in_jira, close]
    close >> none_open


jira_operators_oauth()
