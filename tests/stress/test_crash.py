"""A process SIGKILLed in the middle of a refresh loses nothing.

The worst moment: Atlassian has rotated the refresh token, its answer is still on the way, and
the store still holds the retired token. The emulator delays that answer so the test can kill
the process exactly then.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_jira_auth.auth.stores.airflow_db import database_lock
from airflow_provider_jira_auth.client.errors import JiraTokenStoreError
from airflow_provider_jira_auth.hooks.token_provider import store_for
from tests.db_connections import connection_extra, connection_settings, put_connection
from tests.stress.test_rotation_stress import _refresh_directly

ROOT = Path(__file__).resolve().parents[2]


def start(conn_id: str, action: str) -> subprocess.Popen:
    env = {**os.environ, "_AIRFLOW_PROCESS_CONTEXT": "server", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.stress.hook_call", conn_id, action],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():  # polling: the emulator and the other process signal nothing
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def refresh_lock(conn_id: str) -> str:
    """The name of the lock a process holds while it refreshes the tokens of ``conn_id`` (in the metadata DB)."""
    return store_for(connection_settings(conn_id)).lock_name


@pytest.mark.timeout(240)
def test_a_process_killed_after_atlassian_rotated_but_before_the_save_loses_nothing(jira_emulator, airflow_db):
    emu = jira_emulator
    # Atlassian's 10-minute leeway and companion lifetime, scaled down.
    emu.oauth.reuse_leeway = 20.0
    emu.oauth.companion_ttl = 2.0
    put_connection("jira_crash", emu.connection_json("oauth2"))
    first = start("jira_crash", "myself")
    assert first.communicate(timeout=120)[0].strip().endswith("ok")
    before = connection_extra("jira_crash")  # a refresh token and an access token valid for an hour

    emu.delay_next("POST", r"/oauth/token$", seconds=30)
    doomed = start("jira_crash", "keep_alive")
    refreshes = emu.stats.token_refreshes
    wait_until(lambda: emu.stats.token_refreshes == refreshes + 1)  # Atlassian rotated; answer in flight
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)

    stranded = connection_extra("jira_crash")
    assert stranded["refresh_token"] == before["refresh_token"]  # retired at Atlassian, still stored
    assert stranded["refresh_started_at"] is not None  # the write-ahead marker says so
    emu.advance(2.5)  # past the companion lifetime: the stored access token is dead at Atlassian

    emu.reset_requests()
    survivor = start("jira_crash", "myself")
    out, err = survivor.communicate(timeout=120)

    assert survivor.returncode == 0 and out.strip().endswith("ok"), err[-3000:]
    # It refreshed before calling Jira, because of the marker: it never sent the dead access
    # token (which would have got a 401 and, with Atlassian's real timings, a refresh too late).
    assert [(r.via, r.status) for r in emu.requests] == [("auth", 200), ("gateway", 200)]
    after = connection_extra("jira_crash")
    assert after["refresh_token"] not in (before["refresh_token"], None)
    assert after["refresh_started_at"] is None
    assert emu.stats.family_revocations == 0
    assert emu.stats.reuse_within_leeway == 1  # the survivor refreshed with the retired token, in time
    assert _refresh_directly(emu, after["refresh_token"]).status_code == 200


@pytest.mark.timeout(240)
def test_a_process_killed_while_holding_the_refresh_lock_does_not_block_the_others(jira_emulator, airflow_db):
    emu = jira_emulator
    put_connection("jira_crash_lock", emu.connection_json("oauth2"))
    lock = refresh_lock("jira_crash_lock")
    emu.delay_next("POST", r"/oauth/token$", seconds=30)
    doomed = start("jira_crash_lock", "myself")
    wait_until(lambda: emu.stats.token_refreshes == 1)  # its refresh, under the lock, awaits the answer
    with pytest.raises(JiraTokenStoreError, match="another process holds it"), database_lock(lock, timeout=0):
        pass
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)

    # The dead process's lock went with its database connection (or file): free again, with no
    # lock timeout to run out. Polled only while the database notices the connection is gone.
    with database_lock(lock, timeout=30):
        pass
    survivor = start("jira_crash_lock", "myself")
    out, err = survivor.communicate(timeout=120)

    assert survivor.returncode == 0, err[-3000:]
    assert emu.stats.family_revocations == 0
