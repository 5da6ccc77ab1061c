"""Event-driven: a change in Jira starts this DAG, and the run knows which issues changed.

The asset ``jira_eng_done`` is watched by :class:`JiraIssuesChangedTrigger`: the triggerer polls
the JQL every minute, and every batch of issues created or moved into Done becomes one asset
event, which schedules one run. The run reads the issues from its triggering asset events and
comments on each, once: the comments carry an idempotency key, so a task retry adds none twice.

Needs a running triggerer (``airflow triggerer``). ``airflow dags test`` (``make demo``) runs
it by hand, without an event: it then finds no change and does nothing.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_jira_auth.triggers.issues_changed import JiraIssuesChangedTrigger

JIRA_ENG_DONE = Asset(
    "jira_eng_done",
    watchers=[
        AssetWatcher(
            name="jira_eng_done_watcher",
            trigger=JiraIssuesChangedTrigger(
                jql="project = ENG AND status = Done", jira_conn_id="jira_cloud_default", poll_interval=60
            ),
        )
    ],
)


@dag(
    schedule=[JIRA_ENG_DONE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jira", "example", "event-driven"],
)
def jira_issue_events():
    @task
    def changed_issues(triggering_asset_events=None) -> list[dict]:
        """Every issue of every event that started this run (several events may share one run)."""
        changes: dict[tuple[str, str], dict] = {}
        # Matched by name: an asset with watchers is not hashable on Airflow 3.1, so it cannot be a key.
        for asset, events in (triggering_asset_events or {}).items():
            if asset.name != JIRA_ENG_DONE.name:
                continue
            for event in events:
                for issue in event.extra.get("payload", {}).get("issues", []):
                    changes[(issue["id"], issue["updated"])] = issue
        if not changes:
            print("Started without a Jira event (by hand or `airflow dags test`): nothing changed.")
        for issue in changes.values():
            print(f"{issue['key']} is {issue['status']} (updated {issue['updated']})")
        return list(changes.values())

    @task(retries=2)
    def acknowledge(changes: list[dict]) -> int:
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        if not changes:
            return 0
        client = JiraCloudHook(jira_conn_id="jira_cloud_default").get_conn()
        for issue in changes:
            # One comment per issue and change, whatever the retries: a retry finds the comments
            # its earlier try added (marked with this key) and adds only the missing ones. The key
            # is the change itself, not the run: a change fired twice (a triggerer that dies
            # between storing an event and its watermark) starts a second run that comments nothing new.
            client.add_comment(
                issue["key"],
                f"Airflow saw this issue reach {issue['status']}.",
                idempotency_key=f"ack/{issue['id']}/{issue['updated']}",
            )
        return len(changes)

    acknowledge(changed_issues())


jira_issue_events()
