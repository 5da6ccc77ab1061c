"""A change in Jira starts a DAG run, once, under a real triggerer.

One deployment (api-server with the token broker, scheduler with the LocalExecutor,
dag-processor, triggerer) on PostgreSQL. The DAG in dags_events/ is scheduled on an asset
watched by JiraIssuesChangedTrigger (poll every 2 s) through a 3LO connection whose access
tokens live 4 s: the triggerer gets each one from the api-server's token broker.
"""

from __future__ import annotations

import json
from collections import Counter
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from airflow_provider_jira_auth.triggers.issues_changed import UNCONFIRMED_BATCHES
from tests.airflow_harness import AirflowEnvironment

DAGS = Path(__file__).parent / "dags_events"
DAG_ID = "jira_events_consumer"
CONN_ID = "jira_events_oauth"
POLL = 2.0
TOKEN_TTL = 4.0

pytestmark = pytest.mark.airflow_executor


@pytest.fixture(scope="module")
def emulator():
    with JiraCloudEmulator() as emu:
        emu.seed_issues(project="ENG", count=4, statuses=["To Do"])
        emu.oauth.access_token_ttl = TOKEN_TTL
        emu.oauth.reuse_leeway = 1.0
        emu.oauth.companion_ttl = 1.0
        yield emu


@pytest.fixture(scope="module")
def deployment(emulator, tmp_path_factory):
    airflow = AirflowEnvironment(
        tmp_path_factory.mktemp("airflow-events"),
        dags_folder=DAGS,
        database="postgres",
        parallelism=4,
        triggerer=True,
        # A killed triggerer's triggers go to the next one once its heartbeat is this old.
        config={"triggerer": {"triggerer_health_check_threshold": "10"}},
    )
    airflow.start()
    try:
        seed = json.loads(emulator.connection_json("oauth2"))
        airflow.add_connection(
            CONN_ID, conn_type="jira_cloud", host=seed["host"], extra={**seed["extra"], "refresh_margin": 1.0}
        )
        airflow.wait_for_dag(DAG_ID)
        yield airflow
    finally:
        airflow.stop()


def searches(emu: JiraCloudEmulator) -> list[Any]:
    return [r for r in emu.requests if r.path.endswith("/search/jql")]


def runs(deployment: AirflowEnvironment) -> list[dict[str, Any]]:
    answer = deployment.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"order_by": "run_after", "limit": 100})
    return answer["dag_runs"]


def wait_for_polls(emu: JiraCloudEmulator, count: int, timeout: float = 120) -> None:
    target = len(searches(emu)) + count
    deadline = time.monotonic() + timeout
    while len(searches(emu)) < target:  # polling: the emulator signals nothing
        assert time.monotonic() < deadline, f"the trigger made {len(searches(emu))} of {target} polls"
        time.sleep(0.2)


def wait_for_new_run(deployment: AirflowEnvironment, known: int, timeout: float) -> tuple[dict[str, Any], float]:
    """The first run after the ``known`` ones, and how long it took to appear."""
    start = time.monotonic()
    while True:  # polling the api-server
        found = runs(deployment)
        if len(found) > known:
            return found[known], time.monotonic() - start
        if time.monotonic() - start > timeout:
            pytest.fail(f"no DAG run within {timeout} s\n{deployment.diagnostics()}")
        time.sleep(0.3)


def changed_keys(deployment: AirflowEnvironment, run: dict[str, Any], timeout: float = 120) -> list[str]:
    """What the run's task read from its triggering asset events (its XCom)."""
    run_id = run["dag_run_id"]
    deadline = time.monotonic() + timeout
    while (state := deployment.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]) not in (
        "success",
        "failed",
    ):  # polling the api-server
        assert time.monotonic() < deadline, f"run {run_id} still {state}"
        time.sleep(0.5)
    assert state == "success", deployment.diagnostics()
    entry = deployment.api(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/changed_issues/xcomEntries/return_value"
    )
    value = entry["value"]
    value = json.loads(value) if isinstance(value, str) else value
    return [change["key"] for change in value]


def create_issue(emu: JiraCloudEmulator, summary: str) -> str:
    user = emu.default_user
    answer = requests.post(
        f"{emu.url}/rest/api/3/issue",
        json={"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": summary}},
        auth=(user.email, user.api_token),
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["key"]


@pytest.mark.timeout(600)
def test_ten_polls_without_a_change_start_no_run_and_tokens_rotate_without_revocation(deployment, emulator):
    wait_for_polls(emulator, 1, timeout=180)  # the triggerer runs the watcher
    emulator.reset_stats()
    wait_for_polls(emulator, 10)
    polls = searches(emulator)[-10:]
    assert runs(deployment) == []
    # Tokens living 4 s: the polls went on through several rotations, none refused. Polls at
    # least POLL apart, each with a token still alive, can share a token two at most: ten polls
    # took five tokens or more, however slow the machine (slower only spreads them further).
    tokens = {value for r in polls for name, value in r.headers.items() if name.lower() == "authorization"}
    assert len(tokens) >= 4, f"{len(tokens)} access tokens for ten polls"
    assert emulator.stats.token_refreshes >= 3
    assert emulator.stats.family_revocations == 0
    assert emulator.stats.rejected_refreshes == 0
    assert emulator.stats.auth_failures == 0  # no poll went out with an expired token
    assert all(r.status == 200 for r in polls)


@pytest.mark.timeout(600)
def test_an_issue_moved_or_created_starts_exactly_one_run_that_reads_which_issues_changed(deployment, emulator):
    known = len(runs(deployment))
    emulator.set_status("ENG-2", "Done")
    run, took = wait_for_new_run(deployment, known, timeout=POLL + 30)
    assert changed_keys(deployment, run) == ["ENG-2"]

    key = create_issue(emulator, "a new incident")
    run, took_created = wait_for_new_run(deployment, known + 1, timeout=POLL + 30)
    assert changed_keys(deployment, run) == [key]

    wait_for_polls(emulator, 10)  # the overlap sees both again: no more runs
    assert len(runs(deployment)) == known + 2
    print(f"run started {took:.1f} s after the move, {took_created:.1f} s after the creation")


@pytest.mark.timeout(600)
def test_a_triggerer_killed_between_a_change_and_its_event_fires_it_once_after_restart(deployment, emulator):
    known = len(runs(deployment))
    before = len(searches(emulator))
    # The change, then the poll that sees it held up in Jira while the triggerer is killed.
    emulator.delay_next("POST", r"/search/jql$", 8.0)
    emulator.set_status("ENG-3", "Done")
    deadline = time.monotonic() + 120
    while not any(r.delay for r in searches(emulator)[before:]):  # polling: the held-up poll has come
        assert time.monotonic() < deadline, "no poll came to be held up"
        time.sleep(0.2)
    deployment.kill_service("triggerer")
    assert len(runs(deployment)) == known, "the event fired before the kill: the test did not test a restart"
    deployment.start_service("triggerer")

    run, took = wait_for_new_run(deployment, known, timeout=180)
    assert changed_keys(deployment, run) == ["ENG-3"]
    # After the restart the watcher resumed from the stored watermark: ENG-2 and the new issue
    # (stored before the kill) never fire again, ENG-3 fires once.
    wait_for_polls(emulator, 10)
    assert len(runs(deployment)) == known + 1
    assert len(searches(emulator)) > before
    assert emulator.stats.family_revocations == 0
    print(f"run started {took:.1f} s after the triggerer's restart")


def asset_event_keys(deployment: AirflowEnvironment) -> list[list[str]]:
    """The issue keys of every asset event the watch stored, one list an event, oldest first.

    Read from the metadata database: Airflow 3.3.2's ``GET /api/v2/assets/events`` answers 500
    while a DAG run an event created has not started yet (its ``start_date`` is null)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(deployment.sql_alchemy_conn)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
                    " WHERE a.name = 'jira_events_eng_changes' ORDER BY e.id"
                )
            ).all()
    finally:
        engine.dispose()
    extras = [json.loads(extra) if isinstance(extra, str) else extra for (extra,) in rows]
    return [extra["payload"]["keys"] for extra in extras]


@pytest.mark.timeout(900)
def test_a_triggerer_killed_in_the_middle_of_a_bulk_change_of_ten_thousand_loses_and_repeats_nothing(
    deployment, emulator
):
    """A sprint closed: 10,000 issues moved in one instant, fired 100 an event; the triggerer is
    killed (SIGKILL) once some of those events are stored. After the restart every change is
    fired, and none twice beyond the documented window: the batches handed on ahead of the
    stored watermark (UNCONFIRMED_BATCHES)."""
    # Stamped a day ago: before the watch began, so their creation is not a change.
    day_ago = time.time() - 86_400
    keys = [emulator.seed_issue("ENG", summary=f"bulk {n}", created=day_ago) for n in range(10_000)]
    wait_for_polls(emulator, 1, timeout=180)  # the triggerer runs the watcher
    before = len(asset_event_keys(deployment))
    emulator.bulk_edit(keys, status="Done")

    deadline = time.monotonic() + 300
    while len(asset_event_keys(deployment)) - before < 10:  # polling the metadata database
        assert time.monotonic() < deadline, f"no 10 events within 300 s\n{deployment.diagnostics()}"
        time.sleep(0.2)
    deployment.kill_service("triggerer")
    stored_at_kill = len(asset_event_keys(deployment)) - before
    assert stored_at_kill < 100, "every batch was stored before the kill: the test did not test a restart"
    deployment.start_service("triggerer")

    deadline = time.monotonic() + 600
    while True:  # polling the metadata database
        fired = [key for event in asset_event_keys(deployment)[before:] for key in event]
        if set(keys) <= set(fired):
            break
        assert time.monotonic() < deadline, f"{len(set(fired) & set(keys))} of 10,000 fired\n{deployment.diagnostics()}"
        time.sleep(1)
    wait_for_polls(emulator, 3)  # and nothing more comes
    fired = [key for event in asset_event_keys(deployment)[before:] for key in event]
    repeated = [key for key, n in Counter(fired).items() if n > 1]
    assert set(fired) == set(keys)  # nothing outside the bulk change
    position = {key: n for n, key in enumerate(keys)}
    layout = [(position[e[0]], position[e[-1]], len(e)) for e in asset_event_keys(deployment)[before:]]
    assert len(repeated) <= UNCONFIRMED_BATCHES * 100, f"events as (first, last, size): {layout}"
    assert all(Counter(fired)[key] == 2 for key in repeated), f"events as (first, last, size): {layout}"
    assert emulator.stats.family_revocations == 0
    print(f"{stored_at_kill} of 100 events stored at the kill; {len(repeated)} changes fired twice after the restart")
