"""Under a real scheduler, each export's asset event starts the reader, which reads the file the event names.

A throw-away deployment (api-server, scheduler with the LocalExecutor, dag-processor) runs the two
example DAGs. The export is triggered for a past day through the REST API; the scheduler starts the
reader from the asset event, and the reader finds the file in ``triggering_asset_events``.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.airflow_harness import AirflowEnvironment

EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"
EXPORT, READER = "jira_incremental_export", "jira_incremental_export_reader"

pytestmark = pytest.mark.airflow_executor


def runs(airflow: AirflowEnvironment, dag_id: str) -> list[dict[str, Any]]:
    return airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "run_after", "limit": 100})["dag_runs"]


def result(airflow: AirflowEnvironment, dag_id: str, run_id: str, task_id: str) -> Any:
    entry = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def test_the_reader_reads_each_export_from_its_triggering_event(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    for dag_id in (EXPORT, READER):
        shutil.copy(EXAMPLES / f"{dag_id}.py", dags)
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    with JiraCloudEmulator() as emu:
        emu.default_user.time_zone = "America/St_Johns"  # UTC-03:30
        changed = [emu.seed_issue(created=day - timedelta(hours=h)) for h in (20, 1)]
        emu.seed_issue(created=day + timedelta(seconds=1))  # the next day's
        airflow = AirflowEnvironment(
            tmp_path / "airflow",
            dags_folder=dags,
            database="sqlite",
            parallelism=2,
            env={
                "AIRFLOW_CONN_JIRA_CLOUD_DEFAULT": emu.connection_json("basic"),
                "JIRA_EXPORT_BASE_URL": (tmp_path / "exports").as_uri(),
            },
        )
        airflow.start()
        try:
            airflow.wait_for_dag(READER)
            airflow.wait_for_dag(EXPORT)
            # The scheduler starts today's scheduled export at once (catchup=False) and the reader
            # after it. Let that settle first: an event stored while the scheduler is creating the
            # reader run for an earlier one may start no run of its own (Airflow's asset queue).
            # Polling; the 5 s of quiet are real time: nothing says the scheduler has no run left to start.
            quiet_since, settle_by = time.monotonic(), time.monotonic() + 120
            while time.monotonic() - quiet_since < 5 and time.monotonic() < settle_by:
                if any(r["state"] not in ("success", "failed") for r in runs(airflow, EXPORT) + runs(airflow, READER)):
                    quiet_since = time.monotonic()
                time.sleep(0.5)
            run_id = f"past_day_{uuid.uuid4().hex[:6]}"
            airflow.api("POST", f"/api/v2/dags/{EXPORT}/dagRuns", json_body={"dag_run_id": run_id, "logical_date": day.isoformat()})
            mine = (tmp_path / "exports" / "eng" / f"{day:%Y%m%dT%H%M%S}.jsonl").as_uri()
            # The scheduler may also start today's scheduled run; events that queue up share a reader run.
            deadline = time.monotonic() + 240
            while True:  # polling the api-server
                readers = [r for r in runs(airflow, READER) if r["state"] in ("success", "failed")]
                failed = [r["dag_run_id"] for r in readers if r["state"] == "failed"]
                assert not failed, f"reader run(s) {failed} failed\n{airflow.diagnostics()}"
                read = [result(airflow, READER, r["dag_run_id"], "read_exports") for r in readers if r["state"] == "success"]
                if any(mine in r["uris"] for r in read):
                    break
                assert time.monotonic() < deadline, f"no reader read {mine}: {readers}\n{airflow.diagnostics()}"
                time.sleep(1)
            exports = {r["dag_run_id"]: r for r in runs(airflow, EXPORT)}

            assert exports[run_id]["state"] == "success"
            assert result(airflow, EXPORT, run_id, "export_changed_issues")["uri"] == mine
            assert [r["state"] for r in readers] == ["success"] * len(readers)
            assert {"triggering_asset_events"} == {r["from"] for r in read}
            ours = next(r for r in read if mine in r["uris"])
            assert ours["keys"] == changed  # today's scheduled export, if read in the same run, holds none
        finally:
            airflow.stop()
