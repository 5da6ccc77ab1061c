"""The changes watch on a real site's scale: bulk changes far larger than ``max_issues``.

A sprint closed, ten thousand issues moved in one second: every change the JQL matches is fired
exactly once, ``max_issues`` an event, in ``updated`` order, and the watch goes on to later
changes. Over real HTTP against the emulator (a Basic connection from an env var). A Jira whose
paging does not move forward is staged with a stand-in client: the watch says so at WARNING.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from airflow_provider_jira_auth.triggers import issues_changed as ic
from airflow_provider_jira_auth.triggers.issues_changed import IssuesChangedPoller, JiraIssuesChangedTrigger, Watermark
from tests.events.test_issues_changed_watermark import Pump, _next_batch, _quiet_polls

CONN_ID = "jira_events_bulk"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch):
    with JiraCloudEmulator() as emulator:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", emulator.connection_json("basic"))
        yield emulator


def config(**overrides: Any) -> dict[str, Any]:
    """The trigger's defaults (max_issues 100, overlap 120 s), polling often enough to watch."""
    kwargs = JiraIssuesChangedTrigger(jql="project = ENG", jira_conn_id=CONN_ID, poll_interval=0.2).serialize()[1]
    return {**kwargs, **overrides}


async def collect(stream: Pump, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """Events until they name ``count`` issue changes in all."""
    events: list[dict[str, Any]] = []
    while sum(e["count"] for e in events) < count:
        payload, _ = await _next_batch(stream, timeout=timeout)
        events.append(payload)
    return events


def test_a_bulk_change_of_ten_thousand_issues_fires_every_one_once_in_order_then_later_changes(
    emu: JiraCloudEmulator,
) -> None:
    keys = emu.seed_issues(project="ENG", count=10_000, statuses=["To Do"])
    others = emu.seed_issues(project="OPS", count=300, statuses=["To Do"])
    emu.advance(1)  # the seeds are older than the watch's start

    async def scenario() -> None:
        poller = IssuesChangedPoller(config(), None)
        stream = Pump(poller.batches())
        await _quiet_polls(emu, stream, 1)
        emu.advance(1)
        emu.bulk_edit([*keys, *others], status="Done")  # one instant, both projects

        events = await collect(stream, len(keys))
        fired = [k for e in events for k in e["keys"]]
        assert Counter(fired) == Counter(keys)  # every one, once; nothing outside the JQL
        assert max(e["count"] for e in events) == 100 and len(events) == 100
        stamps = [ic.parse_jira_time(i["updated"]) for e in events for i in e["issues"]]
        assert stamps == sorted(stamps)
        assert len(poller.cursor.seen) == len(keys)  # bounded by what changed in the overlap

        await _quiet_polls(emu, stream, 3)  # the overlap reads them all again: nothing new
        # A change after the bulk one fires at once, and pairs past the overlap are forgotten.
        emu.advance(200)
        emu.set_status(keys[17], "In Progress")
        later, mark = await _next_batch(stream)
        assert later["keys"] == [keys[17]]
        assert len(mark.seen) == 1
        await stream.aclose()

    asyncio.run(scenario())


def test_more_changes_at_once_than_max_issues_are_all_fired_not_stalled_on(emu: JiraCloudEmulator) -> None:
    """The stall the old watch had: 12 issues in one instant, 5 an event, the first page forever."""
    keys = emu.seed_issues(project="ENG", count=12, statuses=["To Do"])
    emu.advance(1)

    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(config(max_issues=5), None).batches())
        await _quiet_polls(emu, stream, 1)
        emu.bulk_edit(keys, {"labels": ["sprint-42"]})
        events = await collect(stream, 12)
        assert [e["keys"] for e in events] == [keys[:5], keys[5:10], keys[10:]]
        emu.set_status(keys[0], "Done")
        later, _ = await _next_batch(stream)
        assert later["keys"] == [keys[0]]
        await stream.aclose()

    asyncio.run(scenario())


class RepeatingJira:
    """A search whose next pages repeat the first one, each with a new ``nextPageToken``."""

    def __init__(self, issues: list[dict[str, Any]], pages: int = 50) -> None:
        self.issues = issues
        self.pages = pages
        self.served = 0

    async def search_pages(self, jql: str, *, fields: Any = None, page_size: int = 100):
        for _ in range(self.pages):
            self.served += 1
            yield list(self.issues)


def test_a_poll_whose_pages_repeat_what_it_read_says_so_and_ends(caplog) -> None:
    start = ic.parse_jira_time("2026-03-10T12:00:00.000+0000")
    issues = [
        {"id": str(n), "key": f"ENG-{n}", "fields": {"updated": "2026-03-10T12:00:05.000+0000"}} for n in range(1, 4)
    ]
    jira = RepeatingJira(issues)
    poller = IssuesChangedPoller(config(), None)
    poller.cursor = poller.committed = Watermark(newest=start, since=start)

    async def one_poll() -> list[dict[str, Any]]:
        return [payload async for payload, _ in poller._poll(jira)]

    with caplog.at_level(logging.WARNING, logger=ic.__name__):
        events = asyncio.run(one_poll())

    assert [e["keys"] for e in events] == [["ENG-1", "ENG-2", "ENG-3"]]
    assert jira.served == 2  # the first repeated page ends the poll
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "'project = ENG'" in warning and "not moving forward" in warning and "ENG-1" in warning


@pytest.mark.skipif(not ic.HAS_ACK_MODE, reason="Airflow 3.3's shared streams (ack mode)")
def test_in_ack_mode_the_watch_runs_at_most_a_few_batches_ahead_of_the_stored_watermark(emu: JiraCloudEmulator) -> None:
    """What bounds the repeats after a triggerer killed in a bulk change, and the triggerer's queue."""
    from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome

    keys = emu.seed_issues(project="ENG", count=12, statuses=["To Do"])
    emu.advance(1)

    async def scenario() -> None:
        producer = ic._WatermarkProducer(config(max_issues=2))
        stream = Pump(producer.open_stream())
        await _quiet_polls(emu, stream, 1)
        emu.bulk_edit(keys, status="Done")  # six batches
        handed = [await _next_batch(stream) for _ in range(ic.UNCONFIRMED_BATCHES)]
        with pytest.raises(TimeoutError):  # nothing more until the triggerer confirms one
            await asyncio.wait_for(stream.queue.get(), 1.0)
        clean = AdvanceOutcome(acked=1, failed=0)
        await producer.advance([AdvanceItem(broker_payload=handed[0][1], outcome=clean)])
        fifth = await _next_batch(stream)
        assert [k for p, _ in handed for k in p["keys"]] + fifth[0]["keys"] == keys[:10]
        await stream.aclose()

    asyncio.run(scenario())


def test_a_jql_jira_refuses_is_an_error_that_names_jiras_reason(emu: JiraCloudEmulator, caplog) -> None:
    """A 400 no wait cures (the project does not exist yet, the query is malformed) is an ERROR,
    not an outage warning; the watch keeps trying, so a project created later is picked up."""

    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(config(jql="project in (", poll_interval=0.05), None).batches())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not any(r.levelno == logging.ERROR for r in caplog.records):
            assert loop.time() < deadline, "no error logged for a JQL Jira refuses"
            await asyncio.sleep(0.05)
        await stream.aclose()

    with caplog.at_level(logging.WARNING, logger=ic.__name__):
        asyncio.run(scenario())
    [error, *_] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "JiraValidationError" in error and "no wait cures this" in error
