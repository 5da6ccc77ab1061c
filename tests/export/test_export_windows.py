"""JiraIncrementalExportOperator against the emulator: windows that tile time, each change exported once.

The operator runs as a task would (``execute`` with the run's context); the Jira user is in
Asia/Kolkata (UTC+05:30, so a query written in UTC, or cut to the wrong minute, misses changes)
and this process's local zone is Pacific/Chatham (UTC+13:45), so nothing may lean on it.
test_export_dag_runs.py runs the same through real Airflow DAG runs.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_jira_auth.client.errors import JiraArgumentError
from airflow_provider_jira_auth.operators.export import JiraIncrementalExportOperator
from airflow_provider_jira_auth.testing import JiraCloudEmulator

USER_ZONE = "Asia/Kolkata"


@pytest.fixture(autouse=True)
def far_local_zone(monkeypatch: pytest.MonkeyPatch):
    """The machine's own zone is neither UTC nor the Jira user's."""
    monkeypatch.setenv("TZ", "Pacific/Chatham")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def emu(jira_cloud_connection: JiraCloudEmulator) -> JiraCloudEmulator:
    jira_cloud_connection.default_user.time_zone = USER_ZONE
    return jira_cloud_connection


def midnight_days_ago(days: int) -> datetime:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def run_day(tmp_path: Path, end: datetime, prev_end: datetime | None, **kwargs: Any) -> tuple[dict[str, Any], dict, list]:
    """One scheduled run of a zero-length (``@daily``) schedule ending at ``end``: its result, event extra, rows."""
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import OutletEventAccessors

    asset = Asset("file:///exports/jira/eng")
    context = {
        "data_interval_start": end,
        "data_interval_end": end,
        "logical_date": end,
        "prev_data_interval_end_success": prev_end,
        "outlet_events": OutletEventAccessors(),
    }
    path = tmp_path / f"eng-{end:%Y%m%dT%H%M%S}.jsonl"
    op = JiraIncrementalExportOperator(
        task_id="export", jql="project = ENG ORDER BY key", output_path=str(path), outlets=[asset], settle=0, **kwargs
    )
    result = op.execute(context)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return result, dict(context["outlet_events"][asset].extra), rows


def changes(rows: list[dict]) -> set[tuple[str, str]]:
    return {(row["key"], row["fields"]["updated"]) for row in rows}


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@pytest.mark.parametrize("boundary_offset", [0.0, 30.25], ids=["midnight", "mid-minute"])
def test_the_second_day_exports_exactly_what_changed_since_the_first(emu, tmp_path, boundary_offset) -> None:
    d1 = midnight_days_ago(2) + timedelta(seconds=boundary_offset)
    d2 = d1 + timedelta(days=1)
    s = timedelta(seconds=1)
    old = emu.seed_issue(created=d1 - timedelta(days=5), updated=d1 - timedelta(days=3))
    noon = emu.seed_issue(created=d1 - timedelta(hours=12))
    before = emu.seed_issue(created=d1 - timedelta(days=2), updated=d1 - 20 * s)  # the boundary minute, day 1
    at = emu.seed_issue(created=d1 - timedelta(days=2), updated=d1)  # exactly the boundary: day 2
    moved = emu.seed_issue(created=d1 - timedelta(days=2), updated=d1 - 5 * s)

    first, first_event, day1 = run_day(tmp_path, d1, None)
    # The day goes on: edits at the boundary minute and through the day.
    emu.edit_issue(moved, {"summary": "edited just after the boundary"}, at=d1 + 10 * s)
    after = emu.seed_issue(created=d1 + 25 * s, assignee=emu.default_user, custom_fields={"customfield_10010": 3})
    emu.edit_issue(noon, status="Done", at=d2 - 2 * s)
    late = emu.seed_issue(created=d2 + 5 * s)  # tomorrow's
    second, second_event, day2 = run_day(tmp_path, d2, d1)

    def change(key: str) -> tuple[str, str]:
        return key, emu.get_issue(key)["fields"]["updated"]

    assert changes(day1) == {
        (noon, stamp(d1 - timedelta(hours=12))),
        (before, stamp(d1 - 20 * s)),
        (moved, stamp(d1 - 5 * s)),
    }
    assert changes(day2) == {change(at), change(moved), change(after), change(noon)}
    assert not changes(day1) & changes(day2)
    assert old not in {k for k, _ in changes(day1) | changes(day2)} and late not in {k for k, _ in changes(day2)}
    assert [row["key"] for row in day2] == [at, moved, after, noon]  # in order of change
    assert len(day2) == second["count"] == second_event["count"] == 4
    assert first_event["window"] == {"start": (d1 - timedelta(days=1)).isoformat(), "end": d1.isoformat()}
    assert second_event["window"] == {"start": d1.isoformat(), "end": d2.isoformat()}
    assert second_event["uri"] == Path(second["path"]).as_uri() == second["uri"]
    assert second_event["time_zone"] == USER_ZONE
    assert 'updated < "' in second_event["jql"] and second_event["jql"].startswith("(project = ENG) AND ")
    assert next(r for r in day2 if r["key"] == after)["fields"]["assignee"]["accountId"] == emu.default_user.account_id


def test_the_query_is_written_in_the_users_zone_rounded_outward(emu, tmp_path) -> None:
    end = midnight_days_ago(1) + timedelta(seconds=30)

    _, event, _ = run_day(tmp_path, end, end - timedelta(days=1), overlap=0)

    # [D-1 00:00:30, D 00:00:30) UTC is [05:30:30, 05:30:30) in Kolkata: down to 05:30, up to 05:31.
    day = (end - timedelta(days=1)).strftime("%Y-%m-%d")
    assert f'updated >= "{day} 05:30"' in event["jql"]
    assert f'updated < "{end:%Y-%m-%d} 05:31"' in event["jql"]


def test_the_query_reaches_back_by_overlap_before_the_windows_start(emu, tmp_path) -> None:
    end = midnight_days_ago(1) + timedelta(seconds=30)
    emu.reset_requests()

    _, event, _ = run_day(tmp_path, end, end - timedelta(days=1), overlap=600)

    # Start D-1 00:00:30 UTC is 05:30:30 in Kolkata; ten minutes before it, rounded down: 05:20.
    day = (end - timedelta(days=1)).strftime("%Y-%m-%d")
    assert f'updated >= "{day} 05:20" AND updated < "{end:%Y-%m-%d} 05:31"' in event["jql"]
    searched = [r.body["jql"] for r in emu.requests if r.path.endswith("/search/jql") and isinstance(r.body, dict)]
    assert searched and all(jql == event["jql"] for jql in searched)


def test_an_empty_window_writes_an_empty_file_and_says_so(emu, tmp_path) -> None:
    emu.seed_issue(created=midnight_days_ago(10))
    end = midnight_days_ago(1)

    result, event, rows = run_day(tmp_path, end, end - timedelta(days=1))

    assert rows == [] and Path(result["path"]).read_bytes() == b""
    assert result["count"] == event["count"] == 0 and event["uri"] == Path(result["path"]).as_uri()


def test_a_rerun_exports_its_own_window_again(emu, tmp_path) -> None:
    d1 = midnight_days_ago(2)
    key = emu.seed_issue(created=d1 - timedelta(hours=1))
    _, first, rows = run_day(tmp_path, d1, d1 - timedelta(days=1))
    run_day(tmp_path, d1 + timedelta(days=1), d1)  # day 2 ran since

    _, again, rows_again = run_day(tmp_path, d1, d1 - timedelta(days=1))

    assert again["window"] == first["window"] and changes(rows_again) == changes(rows) == {
        (key, emu.get_issue(key)["fields"]["updated"])
    }


def test_without_the_users_zone_the_query_widens_and_the_filter_keeps_the_window(jira_emulator, monkeypatch, tmp_path):
    emu = jira_emulator
    # A scoped token without read:jira-user: GET /myself is refused, the zone is unknown.
    user = emu.add_user("reader@example.com", scopes=["read:jira-work"], time_zone="America/Los_Angeles")
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_CLOUD_DEFAULT", emu.connection_json("scoped", user=user))
    d1 = midnight_days_ago(2)
    inside = emu.seed_issue(created=d1 - timedelta(seconds=30))
    emu.seed_issue(created=d1 + timedelta(seconds=30))
    emu.seed_issue(created=d1 - timedelta(days=1, seconds=1))

    _, event, rows = run_day(tmp_path, d1, d1 - timedelta(days=1))

    assert [row["key"] for row in rows] == [inside]
    assert event["time_zone"] is None
    assert f'updated < "{(d1 + timedelta(hours=14)):%Y-%m-%d %H:%M}"' in event["jql"]


def test_window_arguments_are_checked_and_named(emu, tmp_path) -> None:
    end = midnight_days_ago(1)
    with pytest.raises(JiraArgumentError, match="window_start: .*no time zone"):
        run_day(tmp_path, end, None, window_start="2026-01-01T00:00:00")
    with pytest.raises(JiraArgumentError, match="window_end: .* is in the future"):
        run_day(tmp_path, end, None, window_end=(datetime.now(timezone.utc) + timedelta(hours=1)).isoformat())
    with pytest.raises(JiraArgumentError, match="window_start: .* is after the window's end"):
        run_day(tmp_path, end, None, window_start=(end + timedelta(minutes=1)).isoformat())
    assert not emu.requests, "nothing is asked of Jira before the arguments are checked"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [({"overlap": "two minutes"}, "overlap"), ({"overlap": float("nan")}, "overlap"), ({"settle": None}, "settle"),
     ({"settle": -1}, "settle")],
)
def test_bad_overlap_or_settle_fails_when_the_dag_is_parsed_naming_it(tmp_path, arguments: dict, field: str) -> None:
    with pytest.raises(JiraArgumentError, match=f"^Jira argument {field}: must be a number of seconds >= 0"):
        JiraIncrementalExportOperator(task_id="export", jql="", output_path=str(tmp_path / "x.jsonl"), **arguments)


@pytest.mark.parametrize("output_path", ["", "nosuch://bucket/eng.jsonl"])
def test_a_bad_output_path_is_named_as_an_argument_before_any_call(emu, tmp_path, output_path: str) -> None:
    op = JiraIncrementalExportOperator(task_id="export", jql="", output_path=output_path, settle=0)
    end = midnight_days_ago(1)

    with pytest.raises(JiraArgumentError, match="^Jira argument output_path: "):
        op.execute({"data_interval_end": end, "prev_data_interval_end_success": end - timedelta(days=1)})
    assert not emu.requests


def test_a_3lo_grant_without_read_jira_user_exports_with_the_widened_query(jira_emulator, monkeypatch, tmp_path, airflow_db):
    from tests.operators.conftest import connect

    emu = jira_emulator
    connect(emu, "oauth2", monkeypatch, "jira_cloud_default", scopes=["read:jira-work", "offline_access"])
    d1 = midnight_days_ago(2)
    inside = emu.seed_issue(created=d1 - timedelta(minutes=1))

    _, event, rows = run_day(tmp_path, d1, d1 - timedelta(days=1))

    assert [row["key"] for row in rows] == [inside] and event["time_zone"] is None


def test_history_exports_every_change_and_comment_of_an_issue_in_the_window(emu, tmp_path) -> None:
    end = midnight_days_ago(1)
    busy = emu.seed_issue(created=end - timedelta(hours=3))
    quiet = emu.seed_issue(created=end - timedelta(hours=2))
    outside = emu.seed_issue(created=end - timedelta(days=1, seconds=20))  # the query reaches it; the filter drops it
    # More than a search embeds: 40 changelog entries and 20 comments.
    emu.add_changelog(busy, 130)
    emu.add_comments(busy, 45)
    emu.add_comments(outside, 30)
    emu.reset_requests()

    result, event, rows = run_day(tmp_path, end, end - timedelta(days=1), history=True)

    by_key = {row["key"]: row for row in rows}
    assert list(by_key) == [busy, quiet] and result["count"] == event["count"] == 2
    histories = by_key[busy]["changelog"]["histories"]
    assert [item["toString"] for entry in histories for item in entry["items"]] == [f"step-{n}" for n in range(1, 131)]
    comments = by_key[busy]["fields"]["comment"]
    assert comments["total"] == 45 == len({c["id"] for c in comments["comments"]})
    assert [c["body"]["content"][0]["content"][0]["text"] for c in comments["comments"]][-1] == "Comment 45"
    assert by_key[quiet]["changelog"]["histories"] == [] and by_key[quiet]["fields"]["comment"]["comments"] == []
    assert by_key[busy]["fields"]["summary"] and by_key[busy]["fields"]["updated"]
    # History is read for the issues written only: none of the out-of-window issue's comments.
    assert not [r for r in emu.requests if f"/issue/{outside}/" in r.path]


def test_history_must_be_a_bool(tmp_path) -> None:
    with pytest.raises(TypeError, match="history must be True or False"):
        JiraIncrementalExportOperator(task_id="export", jql="", output_path=str(tmp_path / "x.jsonl"), history="yes")
