"""Behaviour where it matters most: tasks forked by a real executor, ORM blocked, logs masked.

One throw-away Airflow deployment (api-server with this provider's plugin, scheduler with the
LocalExecutor, dag-processor) on PostgreSQL when the machine runs it, SQLite otherwise.
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pytest

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.airflow_harness import AirflowEnvironment
from tests.stress.test_rotation_stress import _refresh_directly

DAGS = Path(__file__).parent / "dags"
TOKEN_TTL = 4.0
MARGIN = 1.0

pytestmark = pytest.mark.airflow_executor


@pytest.fixture(scope="module")
def emulator():
    with JiraCloudEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def deployment(emulator, tmp_path_factory):
    env = {"AIRFLOW_CONN_JIRA_EXEC_BASIC": emulator.connection_json("basic")}
    airflow = AirflowEnvironment(tmp_path_factory.mktemp("airflow-exec"), dags_folder=DAGS, env=env, parallelism=8)
    airflow.start()
    try:
        yield airflow
    finally:
        airflow.stop()


def put_oauth_connection(deployment, emulator, **extra):
    seed = json.loads(emulator.connection_json("oauth2"))
    deployment.airflow("connections", "delete", "jira_exec_oauth", check=False)
    deployment.add_connection(
        "jira_exec_oauth", conn_type="jira_cloud", host=seed["host"], extra={**seed["extra"], **extra}
    )
    return seed["extra"]


def sent_credentials(emulator) -> set[str]:
    """Every Authorization value the emulator received, and what it encodes."""
    values = set()
    for request in emulator.requests:
        header = (request.headers or {}).get("Authorization") or (request.headers or {}).get("authorization")
        if header:
            scheme, _, credential = header.partition(" ")
            values.add(credential)
            if scheme.lower() == "basic":
                values.add(base64.b64decode(credential).decode().split(":", 1)[1])
    return values


def test_tasks_under_a_real_executor_rotate_the_token_and_write_it_back(deployment, emulator):
    emulator.oauth.access_token_ttl = TOKEN_TTL
    emulator.oauth.reuse_leeway = 1.0
    emulator.oauth.companion_ttl = 1.0
    emulator.oauth.omit_refresh_token_every = 3
    seed = put_oauth_connection(deployment, emulator, refresh_margin=MARGIN)
    emulator.reset_stats()

    result = deployment.run_dag("jira_exec_writeback", timeout=600)

    result.assert_success()
    assert sum(1 for task, state in result.task_states.items() if task.startswith("call_jira") and state == "success") == 8
    stored = deployment.get_connection("jira_exec_oauth")["extra_dejson"]
    assert stored["refresh_token"] != seed["refresh_token"]
    assert emulator.stats.family_revocations == 0
    windows = math.ceil(result.duration / (TOKEN_TTL - MARGIN))
    assert 2 <= emulator.stats.token_refreshes <= windows + 2
    # Every refresh went through the api-server's token broker: no task process refreshed itself.
    assert "token broker" in result.logs["token_status"]
    assert not [task for task, text in result.logs.items() if "Refreshed the OAuth 2.0 access token" in text]
    assert _refresh_directly(emulator, stored["refresh_token"]).status_code == 200


def test_secrets_are_masked_in_task_logs_under_a_real_executor(deployment, emulator):
    emulator.oauth.access_token_ttl = 3600
    seed = put_oauth_connection(deployment, emulator)
    emulator.reset_requests()

    result = deployment.run_dag("jira_exec_masking", timeout=300)

    result.assert_success()
    text = result.logs["leak_on_purpose"]
    secrets = sent_credentials(emulator) | {
        emulator.default_user.api_token,
        seed["client_secret"],
        seed["refresh_token"],
        deployment.get_connection("jira_exec_oauth")["extra_dejson"]["refresh_token"],
    }
    assert len(secrets) >= 5
    leaked = [s for s in secrets if s and s in text]
    assert leaked == [], "secrets in the task log"
    assert text.count("***") >= 4


def test_creates_killed_after_jira_applied_them_and_retried_at_once_make_each_issue_once(deployment, emulator):
    """Jira's search lags 30 s; every first try's create is applied but its answer held back past
    the task's execution_timeout (20 s), so Airflow kills the try and retries it at once
    (retry_delay=0), inside the lag. Each retry must wait for the index, not create again."""
    emulator.search_index_lag = 30
    emulator.delay_next("POST", r"/rest/api/3/issue$", 45, times=10)
    emulator.delay_next("POST", r"/rest/api/3/issue/bulk$", 45, times=1)
    try:
        result = deployment.run_dag("jira_exec_create_once_lagging", timeout=600)
    finally:
        emulator.search_index_lag = 0

    result.assert_success()
    summaries = [emulator.get_issue(key)["fields"]["summary"] for key in emulator.issue_keys()]
    lagging = sorted(s for s in summaries if s.startswith("lagging "))
    assert lagging == sorted([f"lagging single {n}" for n in range(10)] + [f"lagging bulk {n}" for n in range(10)])
    creates = [r for r in emulator.requests if r.method == "POST" and re.search(r"/rest/api/3/issue(/bulk)?$", r.path)]
    assert len(creates) == 11  # one send per task: no retry sent its create again
