"""Downstream of ``jira_incremental_export``: read the file its asset event names, and check it.

Scheduled on the asset ``jira_eng_changes``: each export's event starts a run, and the run
reads the file from the event's ``uri`` (any scheme Airflow's object storage knows) and checks
that it holds ``count`` issues, all changed within the event's ``window``.

Started by hand (``airflow dags test``), it has no triggering event: it then reads the asset's
newest event instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

import pendulum
from airflow.sdk import Asset, ObjectStoragePath, dag, task

from airflow_provider_jira_auth.client.jql_time import parse_jira_time

# The asset jira_incremental_export declares (the same name and URI).
EXPORT_BASE_URL = os.environ.get("JIRA_EXPORT_BASE_URL") or Path(tempfile.gettempdir(), "jira-exports").as_uri()
ENG_CHANGES = Asset(name="jira_eng_changes", uri=f"{EXPORT_BASE_URL.rstrip('/')}/eng")


@dag(
    schedule=[ENG_CHANGES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["jira", "example", "export"],
)
def jira_incremental_export_reader():
    @task(inlets=[ENG_CHANGES])
    def read_exports(triggering_asset_events=None, inlet_events=None) -> dict:
        events = list(triggering_asset_events[ENG_CHANGES]) if triggering_asset_events else []
        source = "triggering_asset_events"
        if not events:
            print("Started without an asset event (by hand): reading the newest export")
            events, source = [inlet_events[ENG_CHANGES][-1]], "the asset's newest event"
        keys: list[str] = []
        uris: list[str] = []
        for event in events:
            extra = event.extra
            lines = ObjectStoragePath(extra["uri"]).read_text().splitlines()
            issues = [json.loads(line) for line in lines]
            if len(issues) != extra["count"]:
                raise ValueError(f"{extra['uri']} holds {len(issues)} issues, its event says {extra['count']}")
            start, end = (int(datetime.fromisoformat(extra["window"][k]).timestamp() * 1000) for k in ("start", "end"))
            outside = [i["key"] for i in issues if not start <= parse_jira_time(i["fields"]["updated"]) < end]
            if outside:
                raise ValueError(f"{extra['uri']}: {outside} changed outside the window {extra['window']}")
            print(f"{extra['uri']}: {len(issues)} issue(s) changed in [{extra['window']['start']}, {extra['window']['end']})")
            keys += [i["key"] for i in issues]
            uris.append(extra["uri"])
        return {"events": len(events), "from": source, "uris": uris, "keys": keys}

    read_exports()


jira_incremental_export_reader()
