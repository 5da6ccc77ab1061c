"""The issue lifecycle with the provider's operators and sensors, over a Basic (API token) connection.

Opens a ticket, updates, comments and moves it through the workflow, waits for it with both
kinds of sensor (one deferrable), then searches the project (as an XCom, and as a JSON Lines
file). A failing task opens (or comments on) a ticket of its own via ``JiraIssueNotifier``.

Runs as is against the Jira Cloud emulator (``make demo``); point the ``jira_cloud_default``
connection at your site to run it for real.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from airflow_provider_jira_auth.notifications.jira_cloud import JiraIssueNotifier
from airflow_provider_jira_auth.operators.jira_cloud import (
    JiraCommentOperator,
    JiraCreateIssueOperator,
    JiraSearchOperator,
    JiraTransitionIssueOperator,
    JiraUpdateIssueOperator,
)
from airflow_provider_jira_auth.sensors.jira_cloud import JiraIssueSensor, JiraJqlSensor

CONN_ID = "jira_cloud_default"
PROJECT = "ENG"
TICKET = "{{ ti.xcom_pull(task_ids='open_ticket') }}"


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jira", "example"],
    default_args={
        "jira_conn_id": CONN_ID,
        # Any task that fails for good opens a ticket (or comments on its open one).
        "on_failure_callback": JiraIssueNotifier(jira_conn_id=CONN_ID, project_key=PROJECT, issue_type="Bug"),
    },
)
def jira_operators_basic():
    open_ticket = JiraCreateIssueOperator(
        task_id="open_ticket",
        project_key=PROJECT,
        summary="Nightly load report for {{ ds }}",
        description="The nightly load of {{ ds }} ran.\nRun: {{ run_id }}\n\nFiled by Airflow.",
        labels=["airflow", "nightly-load"],
    )
    label_it = JiraUpdateIssueOperator(
        task_id="label_it",
        issue_key=TICKET,
        fields={"priority": {"name": "Low"}},
        update={"labels": [{"add": "reported"}]},
    )
    comment = JiraCommentOperator(
        task_id="comment",
        issue_key=TICKET,
        body="Rows loaded: 42\n\nEverything looks fine.",
        comment_once=True,  # a retry finds this comment instead of adding it again
        retries=2,
    )
    start = JiraTransitionIssueOperator(task_id="start", issue_key=TICKET, transition="start progress")
    in_progress = JiraIssueSensor(
        task_id="in_progress",
        issue_key=TICKET,
        status="In Progress",
        poke_interval=5,
        timeout=120,
    )
    close = JiraTransitionIssueOperator(task_id="close", issue_key=TICKET, target_status="Done")
    closed = JiraIssueSensor(
        task_id="closed",
        issue_key=TICKET,
        status_category="done",
        deferrable=True,  # waits in the triggerer, not in a worker slot
        poke_interval=5,
        timeout=600,
    )
    reported = JiraJqlSensor(
        task_id="reported",
        jql=f"project = {PROJECT} AND labels = reported",
        min_count=1,
        mode="reschedule",  # frees the worker slot between pokes
        poke_interval=30,
        timeout=600,
    )
    open_work = JiraSearchOperator(
        task_id="open_work",
        jql=f'project = {PROJECT} AND status = "To Do" ORDER BY key',
        fields=["summary", "labels"],
        max_results=20,
    )
    export = JiraSearchOperator(
        task_id="export",
        jql=f"project = {PROJECT} ORDER BY key",
        fields=["summary", "status", "labels"],
        output_path="/tmp/jira_examples/{{ dag.dag_id }}/{{ ds }}.jsonl",
    )

    open_ticket >> label_it >> comment >> start >> in_progress >> close >> closed
    label_it >> reported
    closed >> [open_work, export]


jira_operators_basic()
