"""A deferrable JiraIssueSensor beside a probe task, for a deployment with one worker slot."""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import dag, task

from airflow_provider_jira_auth.sensors.jira_cloud import JiraIssueSensor


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, max_active_tasks=4)
def jira_deferrable_wait():
    JiraIssueSensor(
        task_id="wait_for_done",
        jira_conn_id="jira_defer_basic",
        issue_key="ENG-1",
        status="Done",
        deferrable=True,
        poke_interval=1,
        timeout=300,
    )

    @task
    def probe() -> float:
        """Runs only if the sensor gave its worker slot back (the deployment has one)."""
        return time.time()

    probe()


jira_deferrable_wait()
