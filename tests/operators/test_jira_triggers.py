"""The triggers: clean serialization, credentials as in a triggerer, an event loop never blocked."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.operators.conftest import Jira, connect

from airflow_provider_jira_auth.triggers.jira_cloud import JiraIssueTrigger, JiraJqlTrigger


def _first_event(trigger) -> dict[str, Any]:
    async def first():
        return await anext(trigger.run())

    return asyncio.run(first()).payload


@pytest.mark.parametrize(
    "trigger",
    [
        JiraJqlTrigger(
            jql="project = ENG", min_count=3, expect_none=False, jira_conn_id="c", poke_interval=30, timeout_at=1.5e9,
            jira_retry={"retry_attempts": 2, "retry_delay": 0.5},
        ),
        JiraIssueTrigger(
            issue_key="ENG-1",
            criteria={
                "status": "Done",
                "status_category": None,
                "field": "labels",
                "value": ["a"],
                "fields": [],
                "condition": "pkg.fn",
            },
            jira_conn_id="c",
            poke_interval=30,
            timeout_at=None,
        ),
    ],
    ids=["jql", "issue"],
)
def test_a_trigger_rebuilt_from_its_serialization_is_the_same_trigger(trigger) -> None:
    from airflow_provider_jira_auth._compat import import_string
    from airflow.serialization.serialized_objects import BaseSerialization

    classpath, kwargs = trigger.serialize()
    # What the triggerer stores and reads back (the DB keeps it as JSON).
    stored = BaseSerialization.deserialize(json.loads(json.dumps(BaseSerialization.serialize(kwargs))))
    rebuilt = import_string(classpath)(**stored)

    assert type(rebuilt) is type(trigger)
    assert rebuilt.serialize() == (classpath, kwargs)
    json.dumps(kwargs)  # plain JSON: no objects, no callables


def test_the_trigger_fires_when_the_issue_changes(jira: Jira) -> None:
    trigger = JiraIssueTrigger(
        issue_key="ENG-3", criteria={"status": "Done"}, jira_conn_id=jira.conn_id, poke_interval=0.05
    )
    threading.Timer(0.3, lambda: jira.emu.set_status("ENG-3", "Done")).start()

    event = _first_event(trigger)

    assert event == {"status": "success", "xcom": {"issue_key": "ENG-3", "status": "Done", "status_category": "done"}}
    assert jira.emu.requests[-1].auth == ("basic" if jira.auth == "basic" else "bearer")


def test_the_trigger_never_blocks_the_event_loop_while_a_3lo_token_is_fetched(oauth_connect) -> None:
    jira = oauth_connect(("read:jira-work", "offline_access"))
    jira.emu.delay_next("POST", r"/oauth/token$", 6.0)  # a slow token endpoint
    jira.emu.delay_next("POST", r"/search/jql$", 1.0)  # and a slow Jira
    trigger = JiraJqlTrigger(jql="project = ENG", jira_conn_id=jira.conn_id, poke_interval=0.05)

    async def run_beside_a_ticker() -> tuple[dict[str, Any], list[float]]:
        ticks: list[float] = []  # when the loop ran the ticker, on the emulator's clock (time.time)
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks.append(time.time())

        ticking = asyncio.create_task(ticker())
        event = await anext(trigger.run())
        done.set()
        await ticking
        return event.payload, ticks

    event, ticks = asyncio.run(run_beside_a_ticker())

    assert event["status"] == "success"
    # It did wait for the token and for Jira: their answers were held back 6 s and 1 s ...
    late = [r for r in jira.emu.requests if r.delay]
    assert [(r.path.rsplit("/", 1)[-1], r.delay) for r in late] == [("token", 6.0), ("jql", 1.0)]
    # ... without ever holding the loop: it ran the ticker while the token's answer was held back.
    # A blocking fetch holds the loop from before its request reaches the emulator until after
    # the answer has left, so no tick could fall in between.
    token = late[0]
    assert any(token.time < tick < token.time + token.delay for tick in ticks), "the loop stood still"


def test_the_event_loop_keeps_running_while_a_trigger_waits_between_polls(jira_emulator, monkeypatch) -> None:
    jira = connect(jira_emulator, "basic", monkeypatch)
    jira.emu.seed_issues(project="ENG", count=3, statuses=["To Do"])
    trigger = JiraIssueTrigger(issue_key="ENG-3", criteria={"status": "Done"}, jira_conn_id=jira.conn_id, poke_interval=0.5)

    def polls() -> list[float]:
        return [r.time for r in jira.emu.requests if r.path.endswith("/issue/ENG-3")]

    def finish_after_three_polls() -> None:
        deadline = time.monotonic() + 30
        while len(polls()) < 3 and time.monotonic() < deadline:  # polling: the trigger's third poll
            time.sleep(0.01)
        jira.emu.set_status("ENG-3", "Done")

    threading.Thread(target=finish_after_three_polls, daemon=True).start()

    async def run_beside_a_ticker() -> tuple[dict[str, Any], list[tuple[float, float]]]:
        ticks: list[tuple[float, float]] = []  # (when, gap since the previous tick)
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.time()
            while not done.is_set():
                await asyncio.sleep(0.05)
                now = time.time()
                ticks.append((now, now - last))
                last = now

        ticking = asyncio.create_task(ticker())
        event = await anext(trigger.run())
        done.set()
        await ticking
        return event.payload, ticks

    event, ticks = asyncio.run(run_beside_a_ticker())

    first, *_, last = polls()
    assert event["status"] == "success" and len(polls()) == 4  # it waited three times between polls ...
    between_polls = [gap for when, gap in ticks if first < when <= last]
    assert max(between_polls) < 0.3  # ... and the loop ticked on meanwhile (a blocking wait stalls it 0.5 s)


@pytest.fixture
def token_broker(airflow_db: str) -> Iterator[str]:
    """The provider's api-server plugin app, mounted on 127.0.0.1 as the api-server mounts it."""
    from importlib.metadata import entry_points

    import uvicorn
    from fastapi import FastAPI

    (plugin,) = [ep.load() for ep in entry_points(group="airflow.plugins") if ep.name == "jira_auth"]
    (mount,) = plugin.fastapi_apps
    api_server = FastAPI()
    api_server.mount(mount["url_prefix"], mount["app"])

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api_server, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:  # polling: uvicorn has no started event
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}{mount['url_prefix']}"
    server.should_exit = True
    thread.join(5)
    sock.close()


def test_in_a_triggerer_process_3lo_tokens_come_from_the_token_broker(
    jira_emulator, monkeypatch: pytest.MonkeyPatch, token_broker: str
) -> None:
    from airflow_provider_jira_auth.auth.broker_client import BrokerTokenProvider

    emu = jira_emulator
    emu.seed_issues(project="ENG", count=3)
    # An env-var connection keeps its rotating state in a Variable the broker (api-server) writes.
    monkeypatch.setenv(
        "AIRFLOW_CONN_JIRA_TRIGGERER",
        emu.connection_json("oauth2", grant_store="variable", broker_url=token_broker),
    )
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "client")  # what the triggerer sets for its triggers
    asked: list[float] = []
    real_get_token = BrokerTokenProvider.get_token
    monkeypatch.setattr(
        BrokerTokenProvider,
        "get_token",
        lambda self, min_valid: asked.append(min_valid) or real_get_token(self, min_valid),
    )

    event = _first_event(JiraJqlTrigger(jql="project = ENG", min_count=3, jira_conn_id="jira_triggerer"))

    assert event["status"] == "success" and event["xcom"]["count"] == 3
    assert asked  # the trigger asked the broker ...
    assert emu.stats.token_refreshes == 1  # ... which refreshed once, in "the api-server"
    assert {r.auth for r in emu.requests if "/rest/api/3/" in r.path} == {"bearer"}


def test_in_a_triggerer_process_basic_auth_needs_no_broker(jira_emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    jira_emulator.seed_issues(project="ENG", count=1)
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_TRIGGERER", jira_emulator.connection_json("basic"))
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "client")

    event = _first_event(
        JiraIssueTrigger(issue_key="ENG-1", criteria={"status": "To Do"}, jira_conn_id="jira_triggerer")
    )

    assert event["status"] == "success"
    assert jira_emulator.stats.token_refreshes == 0


def test_a_deferred_sensor_hands_its_jira_retry_to_the_trigger(jira_emulator, monkeypatch, context) -> None:
    """The triggerer retries as the task would: the sensor's jira_retry over the connection's extras."""
    from airflow_provider_jira_auth._compat import import_string
    from airflow_provider_jira_auth.sensors.jira_cloud import JiraJqlSensor

    jira = connect(jira_emulator, "basic", monkeypatch, retry_attempts=6, retry_delay=0.01, retry_max_delay=0.02)
    jira_emulator.seed_issue("ENG", summary="waited for")
    sensor = JiraJqlSensor(
        task_id="wait", jira_conn_id=jira.conn_id, jql="project = ENG", jira_retry={"retry_attempts": 1}, deferrable=True
    )
    classpath, kwargs = sensor.trigger(timeout_at=time.time() + 60).serialize()
    trigger = import_string(classpath)(**json.loads(json.dumps(kwargs)))  # as the triggerer stores it
    jira_emulator.fail_next("POST", r"/search/jql$", status=503, times=1)

    event = _first_event(trigger)

    assert event["status"] == "error" and event["error_type"] == "JiraServerError", event
    assert sum(1 for r in jira_emulator.requests if r.path.endswith("/search/jql")) == 1  # one attempt, not six

    # Without one, the connection's six attempts ride out the same outage.
    plain = JiraJqlSensor(task_id="plain", jira_conn_id=jira.conn_id, jql="project = ENG", deferrable=True)
    assert "jira_retry" not in plain.trigger(timeout_at=time.time() + 60).serialize()[1]
    jira_emulator.fail_next("POST", r"/search/jql$", status=503, times=1)
    assert _first_event(plain.trigger(timeout_at=time.time() + 60))["status"] == "success"


def test_a_retry_policy_object_stays_with_the_task_and_the_log_says_so(jira_emulator, monkeypatch, capsys) -> None:
    from airflow_provider_jira_auth.client.retry import RetryPolicy
    from airflow_provider_jira_auth.sensors.jira_cloud import JiraIssueSensor

    jira = connect(jira_emulator, "basic", monkeypatch)
    sensor = JiraIssueSensor(
        task_id="wait", jira_conn_id=jira.conn_id, issue_key="ENG-1", status="Done",
        jira_retry=RetryPolicy(max_attempts=2), deferrable=True,
    )
    kwargs = sensor.trigger(timeout_at=time.time() + 60).serialize()[1]

    assert "jira_retry" not in kwargs
    json.dumps(kwargs)
    assert "cannot be handed to the triggerer" in capsys.readouterr().out  # Airflow logs to stdout
