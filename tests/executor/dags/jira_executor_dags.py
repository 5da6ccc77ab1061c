"""DAGs that the executor tests run under a real Airflow deployment (LocalExecutor, forked tasks)."""

from __future__ import annotations

import logging
import time

import pendulum
from airflow.sdk import BaseHook, dag, task

BASIC = "jira_exec_basic"  # from an env var
OAUTH = "jira_exec_oauth"  # in the metadata DB
log = logging.getLogger("jira.executor.test")


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def jira_exec_masking():
    @task
    def leak_on_purpose() -> str:
        """Log every secret the careless way; Airflow must print *** for each."""
        from airflow_provider_jira_auth.client.errors import JiraError
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        basic = JiraCloudHook(BASIC)
        me = basic.request("GET", "myself")
        conn = BaseHook.get_connection(BASIC)
        log.info("basic password %s", conn.password)
        import requests

        prepared = requests.Request("GET", "https://example.invalid/", auth=basic.get_conn().auth).prepare()
        log.info("basic auth header %r", prepared.headers["Authorization"])
        oauth = JiraCloudHook(OAUTH)
        oauth.request("GET", "myself")
        extra = BaseHook.get_connection(OAUTH).extra_dejson
        log.info("oauth extra %s", extra)
        log.info("oauth access token %s", oauth.get_conn().auth.access_token())
        try:
            oauth.request("GET", "issue/NOPE-1")
        except JiraError as exc:
            log.info("an error: %s", exc)
        return me["accountId"]

    leak_on_purpose()


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, max_active_tasks=16)
def jira_exec_writeback():
    @task
    def call_jira(worker: int, seconds: float = 15.0) -> int:
        """Jira calls for a while, across several access-token lifetimes."""
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        deadline = time.monotonic() + seconds
        calls = 0
        while time.monotonic() < deadline:
            JiraCloudHook(OAUTH).request("GET", "myself")
            calls += 1
            time.sleep(0.2)  # real: the calls span several real access-token lifetimes
        return calls

    @task
    def token_status(_: list[int]) -> dict:
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        return JiraCloudHook(OAUTH).token_status()

    token_status(call_jira.expand(worker=list(range(8))))


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, max_active_tasks=16)
def jira_exec_create_once_lagging():
    """Ten single creates and a bulk create of ten, create_once, each first try killed by its
    execution_timeout after Jira applied the create (the test delays Jira's answers), retried at once."""
    from datetime import timedelta

    from airflow_provider_jira_auth.operators.jira_cloud import JiraCreateIssueOperator

    once = {
        "project_key": "ENG",
        "create_once": True,
        "index_lag": 40,
        "retries": 1,
        "retry_delay": timedelta(0),
        "execution_timeout": timedelta(seconds=20),
        "jira_conn_id": BASIC,
    }
    JiraCreateIssueOperator.partial(task_id="single", **once).expand(summary=[f"lagging single {n}" for n in range(10)])
    JiraCreateIssueOperator(task_id="bulk", issues=[{"summary": f"lagging bulk {n}"} for n in range(10)], **once)


jira_exec_masking()
jira_exec_writeback()
jira_exec_create_once_lagging()
