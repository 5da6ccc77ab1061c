"""JiraIssuesChangedTrigger's watermark: overlap, de-duplication, time zone, restarts, outages.

The pure functions are checked directly; the poller and the ack-mode producer run against the
emulator over real HTTP (a Basic connection from an env var), with an in-memory stand-in for
Airflow's asset state store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from airflow_provider_jira_auth.triggers import issues_changed as ic
from airflow_provider_jira_auth.client.jql_time import strip_order_by
from airflow_provider_jira_auth.triggers.issues_changed import (
    IssuesChangedPoller,
    JiraIssuesChangedTrigger,
    Watermark,
    WatermarkStore,
    changes_jql,
    jql_lower_bound,
    new_changes,
)

CONN_ID = "jira_events"


def _issue(issue_id: str, updated: str, key: str | None = None) -> dict[str, Any]:
    return {"id": issue_id, "key": key or f"ENG-{issue_id}", "fields": {"updated": updated}}


def _ms(text: str) -> int:
    return ic.parse_jira_time(text)


# -- pure -------------------------------------------------------------------------------------------


def test_the_lower_bound_is_the_newest_change_minus_the_overlap_in_the_users_zone_cut_to_the_minute() -> None:
    mark = Watermark(newest=_ms("2026-03-10T12:30:45.500+0000"), since=0)
    # Los Angeles is UTC-7 on 10 March 2026 (daylight saving began on the 8th).
    assert jql_lower_bound(mark, 120, ZoneInfo("America/Los_Angeles")) == "2026-03-10 05:28"
    assert jql_lower_bound(mark, 0, ZoneInfo("Etc/UTC")) == "2026-03-10 12:30"
    # An unknown zone: written in UTC, 14 hours earlier, early enough in any zone.
    assert jql_lower_bound(mark, 60, None) == "2026-03-09 22:29"


def test_the_query_keeps_the_users_jql_and_sorts_by_updated() -> None:
    assert strip_order_by('project = ENG AND summary ~ "order by x" ORDER BY key DESC') == (
        'project = ENG AND summary ~ "order by x"'
    )
    assert changes_jql("project = ENG order by rank", "2026-03-10 05:28") == (
        '(project = ENG) AND updated >= "2026-03-10 05:28" ORDER BY updated ASC, id ASC'
    )
    assert changes_jql("  ", "2026-03-10 05:28").startswith('updated >= "2026-03-10 05:28" ORDER BY')


def test_a_pair_seen_is_not_a_change_again_but_a_new_updated_of_the_same_issue_is() -> None:
    start = Watermark(newest=_ms("2026-03-10T12:00:00.000+0000"), since=_ms("2026-03-10T12:00:00.000+0000"))
    first = [_issue("1", "2026-03-10T12:00:10.000+0000"), _issue("2", "2026-03-10T12:00:20.000+0000")]
    fresh, mark = new_changes(start, first, overlap=120)
    assert [i["id"] for i in fresh] == ["1", "2"]
    assert mark.newest == _ms("2026-03-10T12:00:20.000+0000")

    # The overlap brings them back: nothing new. Issue 1 edited again: a change.
    again = [*first, _issue("1", "2026-03-10T12:00:30.000+0000")]
    fresh, mark = new_changes(mark, again, overlap=120)
    assert [(i["id"], i["fields"]["updated"]) for i in fresh] == [("1", "2026-03-10T12:00:30.000+0000")]
    assert new_changes(mark, again, overlap=120) == ([], mark)


def test_a_change_indexed_late_within_the_overlap_is_a_change_and_the_seen_pairs_are_pruned() -> None:
    base = _ms("2026-03-10T12:00:00.000+0000")
    mark = Watermark(newest=base, since=base - 600_000)
    fresh, mark = new_changes(mark, [_issue("1", "2026-03-10T12:05:00.000+0000")], overlap=60)
    # Issue 2 changed 30 s before issue 1 but shows up only now: within the overlap, a change.
    late = [_issue("2", "2026-03-10T12:04:30.000+0000"), _issue("1", "2026-03-10T12:05:00.000+0000")]
    fresh, mark = new_changes(mark, late, overlap=60)
    assert [i["id"] for i in fresh] == ["2"]
    # Older than the overlap (or than the start of the watch): not a change.
    fresh, _ = new_changes(mark, [_issue("3", "2026-03-10T12:03:59.000+0000")], overlap=60)
    assert fresh == []
    # Pairs older than newest - overlap are dropped from the stored state.
    fresh, mark = new_changes(mark, [_issue("4", "2026-03-10T12:06:10.000+0000")], overlap=60)
    assert mark.seen == {("4", _ms("2026-03-10T12:06:10.000+0000"))}


def test_the_watermark_survives_json_and_a_foreign_value_starts_afresh() -> None:
    mark = Watermark(newest=5, since=1, seen=frozenset({("10001", 5)}))
    assert Watermark.from_json(json.loads(json.dumps(mark.to_json()))) == mark
    assert Watermark.from_json({"something": "else"}) is None
    assert Watermark.from_json(None) is None


def test_the_trigger_serializes_to_plain_kwargs_and_is_rebuilt_equal() -> None:
    trigger = JiraIssuesChangedTrigger(jql="project = ENG", jira_conn_id="c", poll_interval=30, overlap=90)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_jira_auth.triggers.issues_changed.JiraIssuesChangedTrigger"
    assert JiraIssuesChangedTrigger(**json.loads(json.dumps(kwargs))).serialize() == (classpath, kwargs)
    # No asset state store (outside a triggerer): no shared stream, the standalone run().
    assert trigger.shared_stream_key() is None


# -- over HTTP --------------------------------------------------------------------------------------


class FakeAccessor:
    """Airflow's asset state store accessor, in memory."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(json.dumps(self.values.get(key, default)))

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))
        self.writes += 1


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch):
    with JiraCloudEmulator() as emulator:
        emulator.seed_issues(project="ENG", count=3, statuses=["To Do"])
        # Short retry waits, set on the connection as a user would (the outage test fails requests).
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            emulator.connection_json("basic", retry_attempts=2, retry_delay=0.01, retry_max_delay=0.05),
        )
        yield emulator


def _config(**overrides: Any) -> dict[str, Any]:
    kwargs = JiraIssuesChangedTrigger(jql="project = ENG", jira_conn_id=CONN_ID, poll_interval=0.05).serialize()[1]
    return {**kwargs, **overrides}


class Pump:
    """Drains an async generator into a queue from its own task, as the triggerer does.

    (Cancelling a pending ``anext()`` would close the generator; waiting on the queue does not.)
    """

    def __init__(self, stream: AsyncIterator) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = asyncio.create_task(self._drain(stream))

    async def _drain(self, stream: AsyncIterator) -> None:
        async for item in stream:
            await self.queue.put(item)

    async def aclose(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _next_batch(pump: Pump, timeout: float = 10) -> tuple[dict[str, Any], Any]:
    if pump.task.done():
        pump.task.result()
    return await asyncio.wait_for(pump.queue.get(), timeout)


async def _no_batch(pump: Pump, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pump.queue.get(), seconds)
    if pump.task.done():
        pump.task.result()


def _search_count(emu: JiraCloudEmulator) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/search/jql"))


async def _quiet_polls(emu: JiraCloudEmulator, pump: Pump, polls: int, timeout: float = 20) -> None:
    """Wait until ``polls`` more searches were made; none may fire."""
    target = _search_count(emu) + polls
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _search_count(emu) < target:
        assert loop.time() < deadline, f"only {_search_count(emu)} of {target} polls made"
        await _no_batch(pump, 0.05)


def test_a_status_change_fires_once_and_polls_without_change_fire_nothing(emu: JiraCloudEmulator) -> None:
    async def scenario() -> None:
        poller = IssuesChangedPoller(_config(), None)
        stream = Pump(poller.batches())
        await _quiet_polls(emu, stream, 10)  # nothing changed since the start
        emu.set_status("ENG-2", "Done")
        payload, mark = await _next_batch(stream)
        assert payload["keys"] == ["ENG-2"] and payload["count"] == 1
        assert payload["issues"][0]["status"] == "Done"
        assert payload["newest_updated"] == emu.get_issue("ENG-2")["fields"]["updated"]
        assert payload["jql"] == "project = ENG"
        assert mark.newest == ic.parse_jira_time(payload["newest_updated"])
        # Ten more polls see ENG-2 again (the overlap), and fire nothing.
        await _quiet_polls(emu, stream, 10)
        await stream.aclose()

    asyncio.run(scenario())


def test_an_issue_created_is_a_change(emu: JiraCloudEmulator) -> None:
    import requests

    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(_config(), None).batches())
        await _quiet_polls(emu, stream, 1)
        user = emu.default_user
        created = await asyncio.to_thread(
            requests.post,
            f"{emu.url}/rest/api/3/issue",
            json={"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "new"}},
            auth=(user.email, user.api_token),
            timeout=10,
        )
        key = created.json()["key"]
        payload, _ = await _next_batch(stream)
        assert payload["keys"] == [key]
        assert payload["issues"][0]["created"] == payload["issues"][0]["updated"]
        await stream.aclose()

    asyncio.run(scenario())


def test_jql_dates_are_written_in_the_users_time_zone(emu: JiraCloudEmulator) -> None:
    """A user west of UTC: a bound written in UTC would read hours late, and miss the change."""
    emu.default_user.time_zone = "America/Los_Angeles"

    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(_config(), None).batches())
        await _quiet_polls(emu, stream, 1)
        emu.set_status("ENG-1", "Done")
        payload, _ = await _next_batch(stream, timeout=5)
        assert payload["keys"] == ["ENG-1"]
        await stream.aclose()

    asyncio.run(scenario())
    searches = [r for r in emu.requests if r.path.endswith("/search/jql")]
    bound = searches[-1].body["jql"].split('updated >= "')[1][:16]
    local_now = datetime.now(ZoneInfo("America/Los_Angeles")).replace(tzinfo=None)
    assert abs((datetime.strptime(bound, "%Y-%m-%d %H:%M") - local_now).total_seconds()) < 600


def test_a_change_indexed_late_is_found_through_the_overlap(emu: JiraCloudEmulator) -> None:
    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(_config(overlap=120), None).batches())
        await _quiet_polls(emu, stream, 1)
        emu.advance(60)  # Jira's clock a minute ahead: both changes below are after the start
        emu.set_status("ENG-1", "Done")
        first, _ = await _next_batch(stream)
        # ENG-2's change is stamped 40 s before ENG-1's: it became searchable late.
        emu.advance(-40)
        emu.set_status("ENG-2", "Done")
        second, _ = await _next_batch(stream)
        assert (first["keys"], second["keys"]) == (["ENG-1"], ["ENG-2"])
        await _quiet_polls(emu, stream, 3)
        await stream.aclose()

    asyncio.run(scenario())


def test_a_jira_outage_pauses_polling_and_resumes_from_the_same_watermark(emu: JiraCloudEmulator) -> None:
    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(_config(), None).batches())
        await _quiet_polls(emu, stream, 1)
        emu.fail_next("POST", r"/search/jql$", status=503, times=6)
        emu.set_status("ENG-3", "Done")  # changed while Jira answers 503
        payload, _ = await _next_batch(stream, timeout=15)
        assert payload["keys"] == ["ENG-3"]
        await stream.aclose()

    asyncio.run(scenario())
    statuses = [r.status for r in emu.requests if r.path.endswith("/search/jql")]
    assert statuses.count(503) == 6 and statuses[-1] == 200


def test_the_outage_pause_grows_and_honours_retry_after() -> None:
    from airflow_provider_jira_auth.client.errors import JiraRateLimitError, JiraServerError

    poller = IssuesChangedPoller(_config(poll_interval=60), None)
    err = JiraServerError("POST", "search/jql", 503)
    assert [poller._outage_pause(n, err) for n in (1, 2, 3, 5, 9)] == [60, 120, 240, 600, 600]
    limited = JiraRateLimitError("POST", "search/jql", 429, retry_after=900)
    assert poller._outage_pause(1, limited) == 900


def test_a_restart_resumes_after_the_stored_watermark_and_a_batch_never_stored_fires_again(
    emu: JiraCloudEmulator,
) -> None:
    accessor = FakeAccessor()
    store = WatermarkStore([accessor], ic.state_key(CONN_ID, "project = ENG"))

    async def first_life() -> dict[str, Any]:
        poller = IssuesChangedPoller(_config(), store)
        stream = Pump(poller.batches())
        await _quiet_polls(emu, stream, 1)
        assert accessor.writes == 1  # the start of the watch, stored before any poll
        emu.set_status("ENG-1", "Done")
        payload, after = await _next_batch(stream)
        await store.save(after)  # the event was stored: the watermark follows
        emu.set_status("ENG-2", "Done")
        unstored, _ = await _next_batch(stream)  # the triggerer dies before storing this one
        await stream.aclose()
        return {"stored": payload["keys"], "lost": unstored["keys"]}

    async def second_life() -> list[list[str]]:
        stream = Pump(IssuesChangedPoller(_config(), store).batches())
        payload, _ = await _next_batch(stream)
        await _quiet_polls(emu, stream, 3)
        await stream.aclose()
        return [payload["keys"]]

    first = asyncio.run(first_life())
    assert first == {"stored": ["ENG-1"], "lost": ["ENG-2"]}
    # After the restart: ENG-2 once, ENG-1 never again.
    assert asyncio.run(second_life()) == [["ENG-2"]]


def _item(payload: Any, *, acked: int = 1, failed: int = 0):
    from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome

    return AdvanceItem(broker_payload=payload, outcome=AdvanceOutcome(acked=acked, failed=failed))


def test_the_producer_stores_the_watermark_only_for_events_stored_and_refires_one_that_was_not(
    emu: JiraCloudEmulator,
) -> None:
    accessor = FakeAccessor()
    kwargs = _config()
    ic._STORES[ic._identity(kwargs)] = WatermarkStore([accessor], ic.state_key(CONN_ID, "project = ENG"))
    key = ic.state_key(CONN_ID, "project = ENG")

    async def scenario() -> None:
        producer = JiraIssuesChangedTrigger.create_shared_stream_producer(kwargs)
        stream = Pump(producer.open_stream())
        await _quiet_polls(emu, stream, 1)
        start = accessor.values[key]
        emu.set_status("ENG-1", "Done")
        raw, broker = await _next_batch(stream)
        assert raw["keys"] == ["ENG-1"]
        assert accessor.values[key] == start  # handed on, not stored: the watermark waits

        await producer.advance([_item(broker, acked=0, failed=1)])  # the persist failed
        assert accessor.values[key] == start
        again, broker = await _next_batch(stream)  # polled again from the stored watermark
        assert again["keys"] == ["ENG-1"]

        await producer.advance([_item(broker)])  # stored this time
        assert Watermark.from_json(accessor.values[key]).newest == ic.parse_jira_time(again["newest_updated"])
        await _quiet_polls(emu, stream, 3)
        await stream.aclose()

    asyncio.run(scenario())


def test_an_event_handed_on_before_a_rewind_does_not_advance_the_watermark(emu: JiraCloudEmulator) -> None:
    accessor = FakeAccessor()
    kwargs = _config(jql="project = ENG AND status = Done")
    ic._STORES[ic._identity(kwargs)] = WatermarkStore([accessor], "k")

    async def scenario() -> None:
        producer = JiraIssuesChangedTrigger.create_shared_stream_producer(kwargs)
        stream = Pump(producer.open_stream())
        await _quiet_polls(emu, stream, 1)
        emu.set_status("ENG-1", "Done")
        _, first = await _next_batch(stream)
        emu.set_status("ENG-2", "Done")
        _, second = await _next_batch(stream)
        # The first was not stored, the second was: the watermark must not pass the first.
        await producer.advance([_item(first, acked=0, failed=1), _item(second)])
        assert Watermark.from_json(accessor.values["k"]).newest < ic.parse_jira_time(
            emu.get_issue("ENG-1")["fields"]["updated"]
        )
        raw, _ = await _next_batch(stream)
        assert raw["keys"] == ["ENG-1", "ENG-2"]
        await stream.aclose()

    asyncio.run(scenario())


def test_the_store_reads_the_oldest_watermark_of_several_assets_and_writes_all() -> None:
    one, two = FakeAccessor(), FakeAccessor()
    store = WatermarkStore([one, two], "k")

    async def scenario() -> None:
        assert await store.load() is None
        await store.save(Watermark(newest=10, since=1))
        two.values["k"] = Watermark(newest=5, since=1).to_json()
        assert (await store.load()).newest == 5
        del one.values["k"]
        assert (await store.load()).newest == 5

    asyncio.run(scenario())


def test_time_is_utc_in_jira_timestamps() -> None:
    assert ic.parse_jira_time("2026-01-05T10:00:00.000+0100") == int(
        datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc).timestamp() * 1000
    )


def test_the_emulator_reads_jql_dates_in_the_users_time_zone(emu: JiraCloudEmulator) -> None:
    import requests

    emu.default_user.time_zone = "America/Los_Angeles"
    emu.set_status("ENG-1", "Done")
    user = emu.default_user

    def keys(bound: datetime) -> list[str]:
        jql = f'key = ENG-1 AND updated >= "{bound:%Y-%m-%d %H:%M}"'
        answer = requests.post(
            f"{emu.url}/rest/api/3/search/jql", json={"jql": jql}, auth=(user.email, user.api_token), timeout=10
        )
        return [i["key"] for i in answer.json()["issues"]]

    minute_ago = datetime.now(timezone.utc).timestamp() - 60
    assert keys(datetime.fromtimestamp(minute_ago, ZoneInfo("America/Los_Angeles"))) == ["ENG-1"]
    assert keys(datetime.fromtimestamp(minute_ago, timezone.utc)) == []  # read as Los Angeles time: hours ahead
    assert requests.get(f"{emu.url}/rest/api/3/myself", auth=(user.email, user.api_token), timeout=10).json()[
        "timeZone"
    ] == "America/Los_Angeles"


def test_without_a_state_store_the_trigger_runs_standalone_with_the_watermark_in_memory(emu: JiraCloudEmulator) -> None:
    """Airflow 3.0-3.2 (no asset state store, no shared streams): run() fires each change once."""
    trigger = JiraIssuesChangedTrigger(jql="project = ENG", jira_conn_id=CONN_ID, poll_interval=0.05)
    assert trigger.shared_stream_key() is None

    async def scenario() -> None:
        stream = Pump(trigger.run())
        await _quiet_polls(emu, stream, 1)
        emu.set_status("ENG-1", "Done")
        event = await _next_batch(stream)
        assert event.payload["keys"] == ["ENG-1"]
        await _quiet_polls(emu, stream, 10)
        await stream.aclose()

    asyncio.run(scenario())


def test_a_connection_not_defined_yet_is_waited_for_like_an_outage(emu: JiraCloudEmulator, monkeypatch) -> None:
    defined = emu.connection_json("basic", retry_attempts=2, retry_delay=0.01, retry_max_delay=0.05)
    monkeypatch.delenv(f"AIRFLOW_CONN_{CONN_ID.upper()}")

    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(_config(), None).batches())
        await _no_batch(stream, 0.5)  # no connection: paused, not failed
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", defined)
        emu.set_status("ENG-1", "Done")
        payload, _ = await _next_batch(stream, timeout=15)
        assert payload["keys"] == ["ENG-1"]
        await stream.aclose()

    asyncio.run(scenario())


async def _errors_until_fixed(
    emu: JiraCloudEmulator, stream: Pump, caplog: pytest.LogCaptureFixture, says: str, fix: Callable[[], None]
) -> None:
    """The watch pauses with ERROR lines that say ``says`` (no batch, no failure); after ``fix``
    it fires the next change."""
    with caplog.at_level("WARNING", logger=ic.__name__):
        await _no_batch(stream, 0.5)
    said = [r for r in caplog.records if "poll failed" in r.getMessage()]
    assert said and all(r.levelname == "ERROR" for r in said), [r.getMessage() for r in said]
    assert says in said[0].getMessage() and "no wait cures this" in said[0].getMessage()
    fix()
    emu.set_status("ENG-2", "Done")
    payload, _ = await _next_batch(stream, timeout=15)
    assert payload["keys"] == ["ENG-2"]


def test_a_misconfigured_connection_is_an_error_naming_the_field_and_the_watch_resumes_once_fixed(
    emu: JiraCloudEmulator, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    fixed = emu.connection_json("basic", retry_attempts=2, retry_delay=0.01, retry_max_delay=0.05)
    # Airflow refuses this connection and reports it as not defined; the watch must say why.
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({**json.loads(fixed), "port": "443x"}))

    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(_config(), None).batches())
        await _errors_until_fixed(
            emu, stream, caplog, "port", lambda: monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", fixed)
        )
        await stream.aclose()

    asyncio.run(scenario())


def test_credentials_refused_while_watching_resume_with_the_fixed_connection(
    emu: JiraCloudEmulator, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    bot = emu.add_user("watcher@example.com", display_name="Watcher")

    def use_bots_token() -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", emu.connection_json("basic", user=bot, retry_attempts=1))

    use_bots_token()

    async def scenario() -> None:
        stream = Pump(IssuesChangedPoller(_config(), None).batches())
        await _quiet_polls(emu, stream, 1)  # watching: a change from now on fires
        emu.set_status("ENG-1", "Done")
        payload, _ = await _next_batch(stream, timeout=15)
        assert payload["keys"] == ["ENG-1"]
        bot.api_token = "ATATT3xFfGF0-replaced"  # the token in use is revoked and a new one issued
        await _errors_until_fixed(emu, stream, caplog, "JiraAuthenticationError", use_bots_token)
        await stream.aclose()

    asyncio.run(scenario())


def test_an_error_that_is_no_outage_surfaces_instead_of_being_retried_forever(emu: JiraCloudEmulator, monkeypatch) -> None:
    from tests.events.sealed_store import SealedVaultError

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        emu.connection_json("oauth2", grant_store="tests.events.sealed_store.SealedVaultStore"),
    )

    async def scenario() -> None:
        stream = IssuesChangedPoller(_config(), None).batches()
        with pytest.raises(SealedVaultError, match="sealed"):
            await asyncio.wait_for(anext(stream), 10)

    asyncio.run(scenario())
