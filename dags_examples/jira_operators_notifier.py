"""``JiraIssueNotifier``: a Jira ticket for a failing task, without a new ticket per retry.

``flaky_extract`` fails on its first try and succeeds on the retry. The notifier, set as its
``on_retry_callback`` and ``on_failure_callback``, opens one ticket labelled
``airflow:jira_operators_notifier:flaky_extract`` at the first failure; later failures of the
same task comment on that ticket while it is open, instead of opening new ones.

Runs as is against the Jira Cloud emulator (``make demo``) with the ``jira_cloud_default``
(Basic) connection.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_provider_jira_auth.notifications.jira_cloud import JiraIssueNotifier

notify_jira = JiraIssueNotifier(
    jira_conn_id="jira_cloud_default",
    project_key="ENG",
    issue_type="Bug",
    labels=["airflow", "data-platform"],
    description="Owner: data platform on-call. Runbook: https://wiki.example.com/runbooks/extract",
)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jira", "example"],
)
def jira_operators_notifier():
    @task(
        retries=1,
        retry_delay=timedelta(seconds=0),
        on_retry_callback=notify_jira,
        on_failure_callback=notify_jira,
    )
    def flaky_extract() -> int:
        if get_current_context()["ti"].try_number == 1:
            raise RuntimeError("the source database did not answer (simulated, first try only)")
        return 42

    flaky_extract()


jira_operators_notifier()
