"""Token-endpoint calls for N tasks over T hours: this provider vs a naive refresh-per-task client.

Time is compressed: with the default speed-up of 3600, one simulated hour (an access token's
life at Atlassian) lasts one real second, and a day of 500 tasks runs in about 24 s. Each task
is what a real task does: a new JiraCloudHook reading the connection, then one Jira call. The
naive client is what many integrations ship: every task refreshes with the refresh token it
reads and writes the rotated one back.

    python bench/refresh_economy.py [--tasks 500] [--hours 24] [--speedup 3600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ATLASSIAN_TOKEN_LIFETIME = 3600.0
PROVIDER_MARGIN = 300.0


def prepare_airflow(home: Path) -> None:
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # Airflow warns on every connection lookup that "jira_cloud" has an underscore.
        AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
        _AIRFLOW_PROCESS_CONTEXT="server",  # read DB connections, as the scheduler or CLI do
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)


def put_connection(conn_id: str, connection_json: str, **extra: object) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    data = json.loads(connection_json)
    with create_session() as session:
        session.add(
            Connection(
                conn_id=conn_id, conn_type="jira_cloud", host=data["host"],
                extra=json.dumps({**data["extra"], **extra}),
            )
        )


def provider_task(conn_id: str) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    JiraCloudHook(conn_id).request("GET", "myself")


def naive_task(conn_id: str) -> None:
    """Refresh on every task with the stored refresh token, write the rotated one back, call Jira."""
    import requests

    from airflow_provider_jira_auth.auth.stores.airflow_db import ConnectionTokenStore
    from airflow_provider_jira_auth.hooks.token_provider import direct_token_provider
    from airflow_provider_jira_auth.settings import JiraConnectionSettings
    from airflow.models.connection import Connection

    conn = Connection.get_connection_from_secrets(conn_id)
    settings = JiraConnectionSettings.from_connection(
        conn_id, host=conn.host, login=None, password=None, extra=conn.extra_dejson
    )
    store = ConnectionTokenStore(conn_id)
    current = store.load()
    new = direct_token_provider(settings).token_client.refresh(current)
    store.save(new, None)
    answer = requests.get(
        f"{settings.api_url}/ex/jira/{settings.cloud_id}/rest/api/3/myself",
        headers={"Authorization": f"Bearer {new.access_token}"}, timeout=30,
    )
    answer.raise_for_status()


def run(label: str, task, *, tasks: int, seconds: float, speedup: float) -> dict[str, float]:
    from airflow_provider_jira_auth.testing import JiraCloudEmulator

    with JiraCloudEmulator() as emu:
        emu.oauth.access_token_ttl = ATLASSIAN_TOKEN_LIFETIME / speedup
        emu.oauth.reuse_leeway = 600 / speedup
        emu.oauth.companion_ttl = 600 / speedup
        conn_id = f"jira_bench_{label}"
        put_connection(conn_id, emu.connection_json("oauth2"), refresh_margin=PROVIDER_MARGIN / speedup)
        emu.reset_stats()
        started = time.monotonic()
        failures = 0
        for n in range(tasks):
            delay = started + n * seconds / tasks - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                task(conn_id)
            except Exception as exc:  # counted, and the first few shown
                failures += 1
                if failures <= 3:
                    print(f"  {label} task {n} failed: {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        token_calls = sum(1 for r in emu.requests if r.path == "/oauth/token")
        return {
            "token_calls": token_calls,
            "refreshes": emu.stats.token_refreshes,
            "revocations": emu.stats.family_revocations,
            "failures": failures,
            "elapsed": elapsed,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours the tasks are spread over")
    parser.add_argument("--speedup", type=float, default=3600.0, help="simulated seconds per real second")
    args = parser.parse_args()
    seconds = args.hours * 3600 / args.speedup

    with tempfile.TemporaryDirectory(prefix="jira-refresh-economy-") as home:
        prepare_airflow(Path(home))
        print(
            f"{args.tasks} tasks over {args.hours:g} simulated hours ({seconds:.0f} s real, speed-up {args.speedup:g}); "
            f"access tokens live {ATLASSIAN_TOKEN_LIFETIME:.0f} simulated s, the provider refreshes "
            f"{PROVIDER_MARGIN:.0f} s early\n"
        )
        results = {
            "this provider": run("provider", provider_task, tasks=args.tasks, seconds=seconds, speedup=args.speedup),
            "naive refresh-per-task": run("naive", naive_task, tasks=args.tasks, seconds=seconds, speedup=args.speedup),
        }
    print(f"{'client':<24} {'token calls':>11} {'refreshes':>9} {'per hour':>8} {'revoked':>7} {'failed':>6}")
    for name, r in results.items():
        per_hour = r["refreshes"] / args.hours
        print(
            f"{name:<24} {r['token_calls']:>11.0f} {r['refreshes']:>9.0f} {per_hour:>8.2f} "
            f"{r['revocations']:>7.0f} {r['failures']:>6.0f}"
        )
    mine, naive = results["this provider"], results["naive refresh-per-task"]
    ratio = naive["token_calls"] / max(mine["token_calls"], 1)
    expected = args.hours * 3600 / (ATLASSIAN_TOKEN_LIFETIME - PROVIDER_MARGIN)
    print(f"\nratio naive/provider token-endpoint calls: {ratio:.1f}x")
    print(f"provider refreshes: {mine['refreshes']:.0f} for {expected:.1f} token lifetimes (one per lifetime is the floor)")
    ok = mine["failures"] == 0 and mine["revocations"] == 0 and mine["refreshes"] <= expected + 2
    print("PASS" if ok else "FAIL", "provider: no failed task, no revocation, about one refresh per token lifetime")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
