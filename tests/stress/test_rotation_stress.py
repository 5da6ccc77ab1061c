"""Many OS processes share one 3LO connection while access tokens expire every 6 seconds.

Atlassian's rotation rules are played by the emulator with the reuse leeway scaled down to one
second: a process refreshing with a refresh token that another already rotated more than a
second ago revokes the whole grant, and the test fails.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.db_connections import connection_extra, put_connection

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = int(os.environ.get("JIRA_STRESS_PROCESSES", "16"))
SECONDS = float(os.environ.get("JIRA_STRESS_SECONDS", "60"))
# Short enough for a rotation every few seconds, long enough that a request held up by a busy
# machine (these processes share two cores with the rest of the suite) still lands in its
# token's lifetime or in its successor's: a call fails only if both die under it.
TOKEN_TTL = 6.0
MARGIN = 1.5


def run_workers(emu, tmp_path, conn_id: str, processes: int, seconds: float) -> tuple[list[dict], float]:
    """``processes`` worker processes calling Jira through one connection for ``seconds``."""
    env = {**os.environ, "_AIRFLOW_PROCESS_CONTEXT": "server", "PYTHONPATH": str(ROOT)}
    go = tmp_path / "go"
    logs = [tmp_path / f"worker-{n}.log" for n in range(processes)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.stress.stress_worker", conn_id, str(seconds), str(go)],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
        )
        for log in logs
    ]
    for worker, log in zip(workers, logs):
        for line in worker.stdout:  # Airflow may log to stdout before the worker is ready
            if line.strip() == "ready":
                break
        else:
            pytest.fail(f"a worker died before it was ready:\n{log.read_text()[-3000:]}")
    emu.reset_stats()
    started = time.monotonic()
    go.touch()
    results = []
    for worker, log in zip(workers, logs):
        out, _ = worker.communicate(timeout=seconds + 60)
        assert worker.returncode == 0, log.read_text()[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results, min(time.monotonic() - started, seconds + 1)


@pytest.mark.timeout(SECONDS + 180)
def test_sixteen_processes_share_one_grant_without_revocation_or_failed_calls(jira_emulator, airflow_db, tmp_path):
    emu = jira_emulator
    emu.oauth.access_token_ttl = TOKEN_TTL
    emu.oauth.reuse_leeway = 1.0
    emu.oauth.companion_ttl = 1.0
    emu.oauth.omit_refresh_token_every = 4
    put_connection("jira_stress", emu.connection_json("oauth2"), refresh_margin=MARGIN)

    results, elapsed = run_workers(emu, tmp_path, "jira_stress", PROCESSES, SECONDS)

    calls = sum(r["calls"] for r in results)
    failures = sum(r["failures"] for r in results)
    refreshes = emu.stats.token_refreshes
    # An access token serves (TTL - margin) seconds, so one refresh per 1.5 s window at most,
    # plus a slack of 3 for the first refresh and windows cut by process start-up.
    windows = math.ceil(elapsed / (TOKEN_TTL - MARGIN))
    print(
        f"\n{PROCESSES} processes, {elapsed:.0f}s: {calls} Jira calls, {failures} failed, {refreshes} refreshes "
        f"for {windows} expiry windows, reuse within leeway {emu.stats.reuse_within_leeway}, "
        f"family revocations {emu.stats.family_revocations}"
    )
    assert failures == 0, [r["errors"] for r in results if r["errors"]]
    assert emu.stats.family_revocations == 0
    assert calls > PROCESSES * SECONDS, "the processes hardly ran"
    assert refreshes <= windows + 3

    # The store ends holding a refresh token the emulator accepts.
    stored = connection_extra("jira_stress")["refresh_token"]
    before = emu.stats.token_refreshes
    answer = _refresh_directly(emu, stored)
    assert answer.status_code == 200, answer.text
    assert emu.stats.token_refreshes == before + 1


def _refresh_directly(emu, refresh_token):
    import requests

    extra = json.loads(emu.connection_json("oauth2"))["extra"]
    return requests.post(
        f"{emu.auth_url}/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": extra["client_id"],
            "client_secret": extra["client_secret"],
            "refresh_token": refresh_token,
        },
        timeout=10,
    )


@pytest.mark.timeout(30 + 180)
def test_the_default_margin_is_capped_by_the_granted_lifetime(jira_emulator, airflow_db, tmp_path):
    """6-second tokens and no refresh_margin: the 300 s default must not mean a refresh per call."""
    emu = jira_emulator
    emu.oauth.access_token_ttl = TOKEN_TTL
    emu.oauth.reuse_leeway = 1.0
    put_connection("jira_short_lived", emu.connection_json("oauth2"))

    results, elapsed = run_workers(emu, tmp_path, "jira_short_lived", 8, 30.0)

    lifetimes = elapsed / TOKEN_TTL
    refreshes = emu.stats.token_refreshes
    print(f"\n8 processes, {elapsed:.0f}s: {refreshes} refreshes for {lifetimes:.0f} token lifetimes "
          f"({refreshes / lifetimes:.2f} per lifetime)")
    assert sum(r["failures"] for r in results) == 0
    assert emu.stats.family_revocations == 0
    assert refreshes <= 1.5 * lifetimes + 3
