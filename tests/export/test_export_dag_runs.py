"""The example DAGs jira_incremental_export and its reader, run by real Airflow (``dag.test()``) over two days.

Airflow itself says where each day's window starts: the second run's context carries the first
run's data interval (``prev_data_interval_end_success``), read from the metadata database. The
Jira user is in Asia/Kolkata; the boundary minute has edits on both sides of it. A day without
a run is covered by the next run.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_jira_auth.testing import JiraCloudEmulator

EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"


def asset_events(dag_run: Any) -> list[dict[str, Any]]:
    """The extras of the asset events the run's tasks emitted, from the metadata database."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id)
        ).all()
        return [dict(event.extra) for event in events]


def reader_result(dag_run: Any) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.key == "return_value"
            )
        )
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def export_base(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("JIRA_EXPORT_BASE_URL", (tmp_path / "exports").as_uri())
    return tmp_path / "exports"


def test_two_days_of_exports_each_change_once_and_the_reader_reads_each_file_from_its_event(
    jira_cloud_connection: JiraCloudEmulator, load_dag, export_base, monkeypatch
) -> None:
    emu = jira_cloud_connection
    emu.default_user.time_zone = "Asia/Kolkata"
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", "utc")
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    d1, d2 = today - timedelta(days=3), today - timedelta(days=2)
    second = timedelta(seconds=1)
    last_minute = emu.seed_issue(created=d1 - timedelta(days=2), updated=d1 - 30 * second)
    on_the_dot = emu.seed_issue(created=d1 - timedelta(days=2), updated=d1)
    edited = emu.seed_issue(created=d1 - timedelta(hours=3))
    emu.seed_issue(created=d1 - timedelta(days=9))  # before either window

    export = load_dag(EXAMPLES / "jira_incremental_export.py", "jira_incremental_export")
    reader = load_dag(EXAMPLES / "jira_incremental_export_reader.py", "jira_incremental_export_reader")

    day1 = export.test(logical_date=d1)
    (event1,) = asset_events(day1)
    read1 = reader.test(logical_date=None)
    keys1 = reader_result(read1)["keys"]  # read now: the next dag.test() without a logical date replaces this run
    # What happens on day 2, starting in the boundary minute.
    emu.edit_issue(edited, {"summary": "edited in the first minute of day 2"}, at=d1 + 30 * second)
    fresh = emu.seed_issue(created=d1 + timedelta(hours=6), assignee=emu.default_user)
    emu.edit_issue(last_minute, status="Done", at=d2 - 30 * second)
    day2 = export.test(logical_date=d2)
    (event2,) = asset_events(day2)
    read2 = reader.test(logical_date=None)

    # Day 3's run never happens (the scheduler was down): day 4's run covers both days.
    emu.edit_issue(on_the_dot, {"labels": ["day-3"]}, at=d2 + timedelta(hours=12))
    day4 = export.test(logical_date=d2 + timedelta(days=2))
    (event4,) = asset_events(day4)

    assert (day1.state, day2.state, read1.state, read2.state, day4.state) == ("success",) * 5
    assert event4["window"] == {"start": d2.isoformat(), "end": (d2 + timedelta(days=2)).isoformat()}
    assert event4["count"] == 1
    assert event1["window"] == {"start": (d1 - timedelta(days=1)).isoformat(), "end": d1.isoformat()}
    assert event2["window"] == {"start": d1.isoformat(), "end": d2.isoformat()}  # from Airflow's record of day 1
    assert keys1 == [edited, last_minute]
    assert reader_result(read2)["keys"] == [on_the_dot, edited, fresh, last_minute]
    files = sorted(export_base.joinpath("eng").glob("*.jsonl"))[:2]
    assert [f.as_uri() for f in files] == [event1["uri"], event2["uri"]]
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    pairs = [(r["id"], r["fields"]["updated"]) for r in rows]
    assert len(pairs) == len(set(pairs)) == event1["count"] + event2["count"] == 6
    assert event2["time_zone"] == "Asia/Kolkata" and event2["jql"].startswith("(project = ENG) AND updated >= ")
