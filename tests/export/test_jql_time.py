"""JQL dates to the minute in the user's zone, rounded outward, DST changes included; the exact filter."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from airflow_provider_jira_auth.client.jql_time import jql_date, parse_jira_time
from airflow_provider_jira_auth.operators.export import ExportWindow, in_window

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")


def reading(text: str, zone, fold: int) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone, fold=fold).astimezone(UTC)


def test_bounds_round_down_and_up_in_the_zone() -> None:
    moment = datetime(2026, 3, 10, 12, 30, 30, tzinfo=UTC)
    assert jql_date(moment, ZoneInfo("Asia/Kolkata")) == "2026-03-10 18:00"
    assert jql_date(moment, ZoneInfo("Asia/Kolkata"), up=True) == "2026-03-10 18:01"
    on_the_minute = moment.replace(second=0)
    assert jql_date(on_the_minute, UTC) == jql_date(on_the_minute, UTC, up=True) == "2026-03-10 12:30"
    assert jql_date(moment, None) == "2026-03-09 22:30"  # unknown zone: 14 h earlier
    assert jql_date(moment, None, up=True) == "2026-03-11 02:31"


def test_a_time_the_clocks_go_back_over_is_written_so_that_both_readings_hold_the_range() -> None:
    # 2026-11-01 01:30 happens twice in New York: 05:30 UTC (EDT) and 06:30 UTC (EST).
    first, second = datetime(2026, 11, 1, 5, 30, 20, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, 20, tzinfo=UTC)
    for moment in (first, second):
        lower, upper = jql_date(moment, NEW_YORK), jql_date(moment, NEW_YORK, up=True)
        assert max(reading(lower, NEW_YORK, f) for f in (0, 1)) <= moment, lower
        assert min(reading(upper, NEW_YORK, f) for f in (0, 1)) >= moment, upper


def test_the_exact_filter_keeps_the_window_and_each_change_once() -> None:
    start = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
    window = ExportWindow(start, start + timedelta(days=1), "", "")

    def issue(issue_id: str, updated: str) -> dict:
        return {"id": issue_id, "fields": {"updated": updated}}

    issues = [
        issue("1", "2026-03-09T23:59:59.999+0000"),
        issue("2", "2026-03-10T00:00:00.000+0000"),
        issue("2", "2026-03-10T00:00:00.000+0000"),  # the same change twice (pages shifted under an edit)
        issue("3", "2026-03-10T05:30:00.000+0530"),  # = 00:00 UTC
        issue("4", "2026-03-10T23:59:59.999+0000"),
        issue("5", "2026-03-11T00:00:00.000+0000"),
    ]
    kept = [(i["id"], parse_jira_time(i["fields"]["updated"])) for i in in_window(issues, window)]
    assert [i for i, _ in kept] == ["2", "3", "4"]
