"""Fixtures: a Jira connection of either kind to the emulator, and a task context to execute with.

``jira`` is parametrized: each test using it runs once with a Basic (API token) connection
from an env var and once with an OAuth 2.0 (3LO) connection stored in the metadata DB, where
the provider writes rotated tokens back (read in-process as the api-server or ``dag.test()``
would: ``_AIRFLOW_PROCESS_CONTEXT=server``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.db_connections import put_connection

CONN_ID = "jira_ops"


@dataclass
class Jira:
    """The emulator and a connection to it."""

    emu: JiraCloudEmulator
    auth: str
    conn_id: str = CONN_ID

    def api_calls(self) -> list[tuple[str, str]]:
        """(method, path) of the REST calls seen so far, gateway prefix and token calls left out."""
        calls = []
        for r in self.emu.requests:
            if "/rest/api/3/" not in r.path:
                continue
            calls.append((r.method, "/rest/api/3/" + r.path.partition("/rest/api/3/")[2].partition("?")[0]))
        return calls

    def token_calls(self) -> int:
        return sum(1 for r in self.emu.requests if r.path.endswith("/oauth/token"))


def connect(
    emu: JiraCloudEmulator,
    auth: str,
    monkeypatch: pytest.MonkeyPatch,
    conn_id: str = CONN_ID,
    *,
    scopes: Iterable[str] | None = None,
    **extra: Any,
) -> Jira:
    """Define ``conn_id`` to the emulator: Basic as an env var, 3LO in the metadata DB.

    :param scopes: for 3LO, the scopes of the grant (default: the emulator's full default grant).
    """
    if auth == "basic":
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", emu.connection_json("basic", **extra))
    else:
        monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
        refresh_token = None
        if scopes is not None:
            refresh_token = emu.issue_grant(emu.default_app.client_id, scopes=tuple(scopes))["refresh_token"]
        put_connection(conn_id, emu.connection_json("oauth2", refresh_token=refresh_token, **extra))
    return Jira(emu, auth, conn_id)


@pytest.fixture(params=["basic", "oauth2"])
def jira(request: pytest.FixtureRequest, jira_emulator: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch) -> Jira:
    """A connection ``jira_ops`` of each kind to a fresh emulator with 5 seeded ENG issues."""
    if request.param == "oauth2":
        request.getfixturevalue("airflow_db")
    jira_emulator.seed_issues(project="ENG", count=5, statuses=["To Do"])
    return connect(jira_emulator, request.param, monkeypatch)


@pytest.fixture
def oauth_connect(jira_emulator: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch, airflow_db: str):
    """``oauth_connect(scopes=[...])``: a 3LO connection whose grant holds just those scopes."""
    jira_emulator.seed_issues(project="ENG", count=5, statuses=["To Do"])

    def make(scopes: Iterable[str], conn_id: str = CONN_ID) -> Jira:
        return connect(jira_emulator, "oauth2", monkeypatch, conn_id, scopes=scopes)

    return make


@dataclass
class FakeTaskInstance:
    """The part of a task instance the operators touch: XCom pushes, and the sensors' reschedule date."""

    dag_id: str = "jira_tests"
    task_id: str = "task"
    run_id: str = "manual__2026-01-01T00:00:00+00:00"
    try_number: int = 1
    map_index: int = -1
    first_reschedule: datetime | None = None
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # what Airflow would store must be JSON
        self.pushed[key] = value

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first_reschedule

    @property
    def log_url(self) -> str:
        return f"http://localhost:8080/dags/{self.dag_id}/runs/{self.run_id}/tasks/{self.task_id}?try_number={self.try_number}"


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": FakeTaskInstance(), "ts": datetime(2026, 1, 1, tzinfo=timezone.utc).isoformat()}
