"""A value from outside, quoted with ``jql_quote``, cannot stop an export: over HTTP, against the emulator.

The export drops the user's ``ORDER BY`` and adds its window. A quoted value that says ``order
by`` after a quote (``5" order by noon``) used to be cut there, leaving an unterminated string that
Jira refuses: whoever controls the value (a summary, a ``dag_run.conf`` entry) could fail every
run. Here the export runs and exports exactly the issue the value selects.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_jira_auth.client.jql import jql_quote
from airflow_provider_jira_auth.operators.export import JiraIncrementalExportOperator
from airflow_provider_jira_auth.testing import JiraCloudEmulator

HOSTILE = ['lunch at 5" order by noon', "it's an ORDER BY \\ case", 'naïve "Order  By" 順序']


@pytest.mark.parametrize("value", HOSTILE)
def test_an_export_selecting_by_a_quoted_value_that_says_order_by_runs_and_exports_its_issue(
    jira_cloud_connection: JiraCloudEmulator, tmp_path: Path, value: str
) -> None:
    emu = jira_cloud_connection
    end = datetime.now(timezone.utc).replace(microsecond=0)
    wanted = emu.seed_issue(summary=f"Meeting: {value}", created=end - timedelta(hours=2))
    emu.seed_issue(summary="Meeting: another time", created=end - timedelta(hours=2))
    path = tmp_path / "eng.jsonl"
    jql = f"project = ENG AND summary ~ {jql_quote(value)} ORDER BY key DESC"

    result = JiraIncrementalExportOperator(
        task_id="export", jql=jql, output_path=str(path), settle=0, first_window=timedelta(days=1)
    ).execute({"data_interval_start": end, "data_interval_end": end, "logical_date": end})

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [row["key"] for row in rows] == [wanted] and result["count"] == 1
    sent = [r.body["jql"] for r in emu.requests if r.path.endswith("/search/jql")]
    assert sent and all(f"summary ~ {jql_quote(value)}) AND updated >= " in query for query in sent)
