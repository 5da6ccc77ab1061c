"""Scheduled on an asset whose watcher is JiraIssuesChangedTrigger; records which issues changed."""

from __future__ import annotations

import json
from datetime import datetime

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_jira_auth.triggers.issues_changed import JiraIssuesChangedTrigger

JIRA_CHANGES = Asset(
    "jira_events_eng_changes",
    watchers=[
        AssetWatcher(
            name="jira_events_eng_watcher",
            trigger=JiraIssuesChangedTrigger(
                jql="project = ENG", jira_conn_id="jira_events_oauth", poll_interval=2.0, overlap=60.0
            ),
        )
    ],
)


@dag(dag_id="jira_events_consumer", schedule=[JIRA_CHANGES], start_date=datetime(2026, 1, 1), catchup=False)
def jira_events_consumer():
    @task
    def changed_issues(triggering_asset_events=None) -> list[dict]:
        changes = []
        for event in triggering_asset_events[JIRA_CHANGES]:
            payload = event.extra["payload"]
            changes += [{"key": i["key"], "status": i["status"], "updated": i["updated"]} for i in payload["issues"]]
        print("JIRA CHANGES " + json.dumps(changes))
        return changes

    changed_issues()


jira_events_consumer()
