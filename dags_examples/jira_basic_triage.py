"""Triage with a Basic (API token) connection: search, open a summary ticket, comment on it.

Runs as is against the Jira Cloud emulator (``make demo``); point the ``jira_cloud_default``
connection at your site to run it for real.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

JQL = 'project = ENG AND status = "To Do" ORDER BY key'


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jira", "example"],
    params={"project": "ENG"},
)
def jira_basic_triage():
    @task
    def find_open_issues() -> dict:
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        client = JiraCloudHook(jira_conn_id="jira_cloud_default").get_conn()
        counts: dict[str, int] = {}
        sample: list[str] = []
        total = 0
        for issue in client.search_issues(JQL, fields=["summary", "labels"], page_size=100):
            for label in issue["fields"].get("labels") or ["(no label)"]:
                counts[label] = counts.get(label, 0) + 1
            total += 1
            if len(sample) < 5:
                sample.append(issue["key"])
        # Small, XCom-friendly: counts and a few keys, never the whole result set.
        return {"total": total, "by_label": counts, "sample": sample}

    @task
    def open_triage_ticket(found: dict, params: dict | None = None) -> str:
        from airflow_provider_jira_auth.client.adf import text_to_adf
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        project = (params or {}).get("project", "ENG")
        lines = [f"{label}: {n}" for label, n in sorted(found["by_label"].items())]
        created = JiraCloudHook().get_conn().create_issue(
            {
                "project": {"key": project},
                "issuetype": {"name": "Task"},
                "summary": f"Triage: {found['total']} open issues",
                "description": text_to_adf("Open issues by label:\n" + "\n".join(lines)),
                "labels": ["triage"],
            }
        )
        return created["key"]

    @task
    def comment_sample(key: str, found: dict) -> None:
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        JiraCloudHook().get_conn().add_comment(
            key, "Oldest open issues:\n" + "\n".join(found["sample"]) + "\n\nFiled by Airflow."
        )

    found = find_open_issues()
    comment_sample(open_triage_ticket(found), found)


jira_basic_triage()
