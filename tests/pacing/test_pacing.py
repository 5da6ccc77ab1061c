"""Pacing to Jira's rate limits, over real HTTP against the emulator, through the hook a task uses.

Every client of the process for one site (threads sharing a client, other clients, a trigger's
async client) shares that site's pacer. The rate reached is the benchmark's business
(bench/search_throughput.py --rate-limit); these tests assert behaviour: few 429s under a burst
limit, nobody sending while the quota is spent, sync and async held by the same pacer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_jira_auth.client.errors import JiraRateLimitError
from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook
from airflow_provider_jira_auth.testing import JiraCloudEmulator

CONN_ID = "jira_paced"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraCloudEmulator]:
    with JiraCloudEmulator() as emulator:
        emulator.seed_issues(project="ENG", count=2)
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", emulator.connection_json("basic"))
        yield emulator


def in_threads(count: int, work: Callable[[], None]) -> list[BaseException]:
    """Run ``work`` on ``count`` threads at once; the errors they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run() -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def rest_calls(emu: JiraCloudEmulator) -> list:
    return [r for r in emu.requests if "/rest/api/" in r.path]


def test_four_threads_sharing_a_client_under_a_burst_limit_are_rarely_refused(emu: JiraCloudEmulator) -> None:
    emu.limit_request_rate(40)
    client = JiraCloudHook(CONN_ID).get_conn()

    errors = in_threads(4, lambda: [client.myself() for _ in range(40)])

    calls = rest_calls(emu)
    refused = sum(1 for r in calls if r.status == 429)
    assert errors == []
    assert len(calls) - refused == 160
    assert refused <= 0.03 * len(calls), f"{refused} of {len(calls)} calls answered 429"


def test_clients_of_one_site_share_its_pacer(emu: JiraCloudEmulator) -> None:
    emu.limit_request_rate(40)
    clients = [JiraCloudHook(CONN_ID).get_conn() for _ in range(4)]
    assert len({id(c.pacer) for c in clients}) == 1
    turn = iter(range(4))
    lock = threading.Lock()

    def work() -> None:
        with lock:
            client = clients[next(turn)]
        for _ in range(40):
            client.myself()

    assert in_threads(4, work) == []
    refused = sum(1 for r in rest_calls(emu) if r.status == 429)
    assert refused <= 0.03 * 160, f"{refused} calls answered 429"


def test_a_burst_limit_slows_that_endpoint_only(emu: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    client = JiraCloudHook(CONN_ID).get_conn()
    # The pacer's clock stands still: the waits it books depend on the calls alone, not on how
    # long the machine takes to make them.
    monkeypatch.setattr(client.pacer, "clock", lambda: 1000.0)
    stats = client.pacer.stats
    emu.limit_request_rate(5)
    for _ in range(5):
        client.myself()  # the pacer learns GET myself's limit and spends its bucket
    emu.limit_request_rate(None)
    assert stats.waits == 0  # five at once: the burst

    client.get_issue("ENG-1")  # another endpoint: not held by myself's bucket
    other = stats.waits
    client.myself()

    assert other == 0
    assert stats.waits == 1 and stats.waited == pytest.approx(1 / (5 * 0.97))  # myself's next slot


def test_a_quota_429_holds_every_thread_until_the_reset(emu: JiraCloudEmulator) -> None:
    client = JiraCloudHook(CONN_ID).get_conn()
    client.myself()
    reset = emu.exhaust_quota(3.0)
    first = threading.Thread(target=client.myself)
    first.start()
    deadline = time.monotonic() + 5
    while not any(r.status == 429 for r in emu.requests):  # polling: the first thread's refused call
        assert time.monotonic() < deadline, "the first call was not refused"
        time.sleep(0.01)
    refused_at = next(r.time for r in emu.requests if r.status == 429)

    # Threads that start during the pause wait for the reset instead of sending.
    errors = in_threads(3, lambda: [client.myself() for _ in range(2)])
    first.join(10)

    assert errors == []
    calls = rest_calls(emu)
    assert [r.status for r in calls].count(429) == 1
    during = [r for r in calls if refused_at < r.time < reset]
    assert during == [], f"{len(during)} calls sent while the quota was spent"
    assert sum(1 for r in calls if r.time >= reset and r.status == 200) == 7


def test_async_and_sync_calls_honour_the_same_quota_pause(emu: JiraCloudEmulator) -> None:
    """A trigger's async client and a task's sync client of one site share its pacer."""
    sync_client = JiraCloudHook(CONN_ID).get_conn()
    reset = emu.exhaust_quota(2.0)
    with pytest.raises(JiraRateLimitError):
        JiraCloudHook(CONN_ID, retry_policy=_one_attempt()).get_conn().myself()  # the 429 that starts the pause

    async def trigger_poll() -> float:
        client = await asyncio.to_thread(JiraCloudHook(CONN_ID).get_async_conn)
        async with client:
            assert client.pacer is sync_client.pacer
            await client.get_issue("ENG-1")
        return emu.clock()

    answered_at = asyncio.run(trigger_poll())

    assert answered_at >= reset
    assert [r.status for r in rest_calls(emu)].count(429) == 1


def test_async_tasks_and_sync_threads_share_one_burst_budget(emu: JiraCloudEmulator) -> None:
    emu.limit_request_rate(40)
    sync_client = JiraCloudHook(CONN_ID).get_conn()
    errors: list[BaseException] = []

    async def tasks() -> None:
        client = await asyncio.to_thread(JiraCloudHook(CONN_ID).get_async_conn)
        async with client:

            async def poll() -> None:
                for _ in range(40):
                    await client.get_issue("ENG-1")

            await asyncio.gather(poll(), poll())

    def sync_work() -> None:
        for _ in range(40):
            sync_client.get_issue("ENG-2")

    threads = [threading.Thread(target=lambda: errors.extend(in_threads(2, sync_work)))]
    threads[0].start()
    asyncio.run(tasks())
    threads[0].join(60)

    calls = rest_calls(emu)
    refused = sum(1 for r in calls if r.status == 429)
    assert errors == []
    assert len(calls) - refused == 160
    assert refused <= 0.03 * len(calls), f"{refused} of {len(calls)} calls answered 429"


def test_writes_to_one_issue_are_spaced_to_its_write_limit(emu: JiraCloudEmulator) -> None:
    client = JiraCloudHook(CONN_ID).get_conn()

    for n in range(22):
        client.update_issue("ENG-1", fields={"summary": f"edit {n}"})

    writes = [r.time for r in rest_calls(emu) if r.method == "PUT"]
    assert len(writes) == 22
    # 20 writes to an issue per 2 s: the 21st waits for the 1st to leave the window.
    assert writes[20] - writes[0] >= 1.95
    assert writes[19] - writes[0] < 1.5


def _one_attempt():
    from airflow_provider_jira_auth.client.retry import RetryPolicy

    return RetryPolicy(max_attempts=1)


def test_a_quota_reset_beyond_the_policy_s_longest_wait_fails_fast_without_sending(emu: JiraCloudEmulator) -> None:
    client = JiraCloudHook(CONN_ID).get_conn()
    emu.exhaust_quota(600.0)  # beyond RetryPolicy.max_retry_after (120 s): not waited for in-process
    with pytest.raises(JiraRateLimitError):
        client.myself()

    pacer = client.pacer
    waited = pacer.stats.waited
    with pytest.raises(JiraRateLimitError, match="not sent") as caught:
        JiraCloudHook(CONN_ID).get_conn().get_issue("ENG-1")

    assert pacer.stats.waited == waited  # refused at once, not after a wait
    assert caught.value.retry_after is not None and caught.value.retry_after > 500
    assert len(rest_calls(emu)) == 1


def test_a_new_emulator_on_a_port_an_exhausted_one_had_starts_with_its_own_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The process's pacers are keyed by the site's address; a test's emulator that spent its quota
    # must not hold back the next test's emulator that the OS gives the same port.
    for _ in range(5):  # another process may take the freed port first: then try another
        with JiraCloudEmulator() as spent:
            monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", spent.connection_json("basic"))
            spent.exhaust_quota(600.0)
            with pytest.raises(JiraRateLimitError):
                JiraCloudHook(CONN_ID).get_conn().myself()
            port = int(spent.url.rsplit(":", 1)[1])
        try:
            fresh = JiraCloudEmulator(port=port).start()
        except OSError:
            continue
        with fresh:
            monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", fresh.connection_json("basic"))
            assert JiraCloudHook(CONN_ID).get_conn().myself()["emailAddress"]
            assert len(rest_calls(fresh)) == 1
        return
    pytest.fail("no freed port could be bound again")


def test_an_export_logs_its_calls_and_the_quota_jira_reported(
    emu: JiraCloudEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_jira_auth.operators.jira_cloud import JiraSearchOperator

    export = JiraSearchOperator(task_id="export", jira_conn_id=CONN_ID, jql="project = ENG ORDER BY key")
    export.jira_client()  # the connection read and the client built before the quota runs out
    emu.exhaust_quota(1.5)
    found = export.execute({})

    assert len(found) == 2
    said = [line for line in capfd.readouterr().out.splitlines() if "issue(s)" in line]  # the task log
    assert said and "2 call(s) to Jira" in said[-1] and "last quota answer: 0 of 65000 left" in said[-1], said


def test_an_endpoint_that_stops_advertising_a_limit_is_no_longer_paced(emu: JiraCloudEmulator) -> None:
    emu.limit_request_rate(2)
    client = JiraCloudHook(CONN_ID).get_conn()
    client.myself()
    client.myself()  # the bucket of 2 a second is spent
    emu.limit_request_rate(None)
    client.myself()  # paced once more (~0.5 s); its answer carries no limit

    waits = client.pacer.stats.waits
    for _ in range(5):
        client.myself()

    assert client.pacer.stats.waits == waits  # none of the five waited for a slot
