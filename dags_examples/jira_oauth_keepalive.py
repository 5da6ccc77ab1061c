"""Keep an OAuth 2.0 (3LO) grant alive and show its health, weekly.

Atlassian expires a refresh token that goes unused for 90 days; a grant used only by a monthly
DAG would die. This DAG refreshes the token when it is older than six days (so every weekly run
rotates it) and returns the token's health, without secrets, as its XCom.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

CONN_ID = "jira_cloud_oauth"


@dag(
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jira", "example", "oauth2"],
)
def jira_oauth_keepalive():
    @task
    def keep_alive() -> dict:
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        status = JiraCloudHook(jira_conn_id=CONN_ID).keep_alive(max_age_days=6)
        print(
            f"{CONN_ID}: refresh token rotated at {status['refresh_rotated_at']}, "
            f"{status['days_until_inactivity_expiry']} days before Atlassian's inactivity expiry; "
            f"tokens from {status['grant_source']}"
        )
        return status

    @task
    def who_am_i() -> str:
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        return JiraCloudHook(jira_conn_id=CONN_ID).request("GET", "myself")["displayName"]

    keep_alive() >> who_am_i()


jira_oauth_keepalive()
