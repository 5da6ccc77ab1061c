"""A value from outside, quoted with ``jql_quote``, cannot stop a changes watch: over HTTP, against the emulator.

The watch drops the user's ``ORDER BY`` and adds its watermark. A quoted value saying ``order by``
after a quote used to be cut there, so every poll sent a query Jira refuses and the watch never
fired. Here it polls, and fires for the issue the value selects and only for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from airflow_provider_jira_auth.client.jql import jql_quote
from airflow_provider_jira_auth.testing import JiraCloudEmulator
from airflow_provider_jira_auth.triggers.issues_changed import IssuesChangedPoller, JiraIssuesChangedTrigger

CONN_ID = "jira_quoted_watch"
HOSTILE = 'lunch at 5" order by noon'


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch):
    with JiraCloudEmulator() as emulator:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            emulator.connection_json("basic", retry_attempts=2, retry_delay=0.01, retry_max_delay=0.05),
        )
        yield emulator


def _searches(emu: JiraCloudEmulator) -> list[Any]:
    return [r for r in emu.requests if r.path.endswith("/search/jql")]


def test_a_watch_selecting_by_a_quoted_value_that_says_order_by_fires_for_its_issue(emu: JiraCloudEmulator) -> None:
    wanted = emu.seed_issue(summary=f"Meeting: {HOSTILE}")
    other = emu.seed_issue(summary="Meeting: another time")
    jql = f"project = ENG AND summary ~ {jql_quote(HOSTILE)} ORDER BY key"
    config = JiraIssuesChangedTrigger(jql=jql, jira_conn_id=CONN_ID, poll_interval=0.05).serialize()[1]

    async def scenario() -> dict[str, Any]:
        queue: asyncio.Queue = asyncio.Queue()

        async def drain() -> None:
            async for item in IssuesChangedPoller(config, None).batches():
                await queue.put(item)

        task = asyncio.create_task(drain())
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while not _searches(emu):  # the watch has started: changes from now on are its to fire
                assert not task.done() or task.result() is None
                assert loop.time() < deadline, "the watch never polled"
                await asyncio.sleep(0.02)
            emu.edit_issue(other, {"labels": ["moved"]})
            emu.edit_issue(wanted, {"labels": ["moved"]})
            while queue.empty():
                if task.done():
                    task.result()  # a refused query surfaces here
                assert loop.time() < deadline, "the watch never fired"
                await asyncio.sleep(0.02)
            payload, _ = queue.get_nowait()
            return payload
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    payload = asyncio.run(scenario())

    assert payload["keys"] == [wanted]
    sent = [r.body["jql"] for r in _searches(emu)]
    assert all(query.startswith(f"(project = ENG AND summary ~ {jql_quote(HOSTILE)}) AND updated >= ") for query in sent)
