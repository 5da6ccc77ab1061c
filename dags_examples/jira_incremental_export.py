"""Every day, export the ENG issues changed since the last successful run, and say so with an asset event.

Runs ``@daily`` (Airflow 3: a zero-length data interval at midnight UTC). Each run's window is
[the previous successful run's end, this run's end): no change is missed or exported twice, and
a re-run of a day exports that day's window again. The file of each run is
``<base>/eng/<logical date>.jsonl``; the asset event names it (``uri``) with the ``count``, the
``jql`` sent and the ``window``, and ``jira_incremental_export_reader`` (scheduled on the asset)
reads it.

The base is ``$JIRA_EXPORT_BASE_URL`` (e.g. ``s3://aws_default@exports/jira``), by default a
``file://`` directory under the system's temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pendulum
from airflow.sdk import Asset, dag

from airflow_provider_jira_auth.operators.export import JiraIncrementalExportOperator

EXPORT_BASE_URL = os.environ.get("JIRA_EXPORT_BASE_URL") or Path(tempfile.gettempdir(), "jira-exports").as_uri()
#: one event per exported file; the reader DAG is scheduled on it
ENG_CHANGES = Asset(name="jira_eng_changes", uri=f"{EXPORT_BASE_URL.rstrip('/')}/eng")


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # each window starts where the previous successful run ended
    tags=["jira", "example", "export"],
)
def jira_incremental_export():
    JiraIncrementalExportOperator(
        task_id="export_changed_issues",
        jql="project = ENG",
        fields=["summary", "status", "assignee", "created", "updated"],
        output_path=f"{EXPORT_BASE_URL.rstrip('/')}/eng/{{{{ ts_nodash }}}}.jsonl",
        outlets=[ENG_CHANGES],
        jira_conn_id="jira_cloud_default",
    )


jira_incremental_export()
