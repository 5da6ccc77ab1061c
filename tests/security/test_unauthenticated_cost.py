"""Requests nobody signed cost a bounded amount of work and tell nothing about which connections exist.

Against a real broker process whose first secrets backend counts lookups and, like a remote
backend, answers a connection it holds more slowly than a missing one:

* a request without a well-formed signature is refused before any lookup;
* a badly signed flood spends at most the broker's lookup budget; the rest is answered 429 with
  ``Retry-After`` and no lookup, and a connection whose key the broker already knows is still
  served during the flood, without spending the budget;
* a refusal takes as long for an existing oauth2 connection as for a missing one.
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_provider_jira_auth.auth import broker_protocol
from airflow_provider_jira_auth.plugins import token_broker
from tests.db_connections import put_connection, signing_secret

ROOT = Path(__file__).resolve().parents[2]
SLOW_FOUND = 0.025  # the backend's extra time for a connection it holds


@pytest.fixture
def counted_broker(start_broker, tmp_path, jira_emulator):
    lookups, held = tmp_path / "lookups.txt", tmp_path / "connections.json"
    held.write_text(json.dumps({"jira_sec_held": jira_emulator.connection_json("oauth2")}))
    lookups.touch()
    server = start_broker(
        PYTHONPATH=str(ROOT),
        AIRFLOW__SECRETS__BACKEND="tests.security.counting_backend.CountingSecretsBackend",
        AIRFLOW__SECRETS__BACKEND_KWARGS=json.dumps(
            {"lookups": str(lookups), "connections": str(held), "delay": SLOW_FOUND}
        ),
    )

    def count() -> int:
        return len(lookups.read_text().splitlines())

    return server, count


def test_requests_without_a_signature_are_refused_before_any_lookup(counted_broker):
    server, lookups = counted_broker
    body, _ = broker_protocol.signed_request("whatever", "jira_sec_held", min_valid=0)
    for signature in ["", "not-hex", "ab" * 31, "AB" * 32]:
        assert server.post(body, signature).status_code == 403
    assert lookups() == 0


def test_a_badly_signed_flood_spends_only_the_lookup_budget(counted_broker, jira_emulator):
    server, lookups = counted_broker
    put_connection("jira_sec_owner", jira_emulator.connection_json("oauth2"))
    owner_secret = signing_secret("jira_sec_owner")
    # The owner was served once: the broker knows its key from then on.
    assert server.post(*broker_protocol.signed_request(owner_secret, "jira_sec_owner", min_valid=0)).status_code == 200
    before = lookups()

    def forged(n: int) -> int:
        conn_id = "jira_sec_held" if n % 2 else f"jira_sec_missing_{n}"
        return server.post(*broker_protocol.signed_request("guessed", conn_id, min_valid=0)).status_code

    owner_answers = []
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        flood = pool.map(forged, range(200))
        for _ in range(5):
            owner_answers.append(
                server.post(*broker_protocol.signed_request(owner_secret, "jira_sec_owner", min_valid=0)).status_code
            )
        statuses = list(flood)
    elapsed = time.monotonic() - started

    spent = lookups() - before - len(owner_answers)  # each served request looks its connection up once
    allowed = token_broker.LOOKUP_BURST + token_broker.LOOKUP_RATE * elapsed + 1
    print(f"\n200 forged requests in {elapsed:.1f}s: {statuses.count(403)} x 403, {statuses.count(429)} x 429, "
          f"{spent} lookups (budget {allowed:.0f})")
    assert set(statuses) <= {403, 429}
    assert statuses.count(429) > 0
    assert spent <= allowed
    assert owner_answers == [200] * 5

    busy = server.post(*broker_protocol.signed_request("guessed", "jira_sec_other", min_valid=0))
    if busy.status_code == 429:
        assert int(busy.headers["Retry-After"]) >= 1
        assert busy.json()["error"] == "busy"


def test_a_refusal_takes_as_long_for_an_existing_connection_as_for_a_missing_one(counted_broker):
    server, _ = counted_broker

    def refusal_time(conn_id: str) -> float:
        body, signature = broker_protocol.signed_request("guessed", conn_id, min_valid=0)
        began = time.perf_counter()
        status = server.post(body, signature).status_code
        assert status == 403
        return time.perf_counter() - began

    refusal_time("jira_sec_held")  # the first request of a process pays for imports
    existing, missing = [], []
    for n in range(12):  # interleaved, so that load on the machine hits both alike; within the budget
        existing.append(refusal_time("jira_sec_held"))
        missing.append(refusal_time(f"jira_sec_nowhere_{n}"))
    a, b = statistics.median(existing), statistics.median(missing)
    print(f"\nmedian refusal: existing {a * 1000:.1f} ms, missing {b * 1000:.1f} ms")
    assert min(a, b) >= token_broker.REFUSAL_FLOOR
    # Without the floor the existing connection answers SLOW_FOUND (25 ms) later.
    assert abs(a - b) < SLOW_FOUND / 2


def test_a_remembered_key_stops_working_when_the_connection_changes(counted_broker, jira_emulator):
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    server, _ = counted_broker

    def signing_secret(conn_json: str) -> str:
        data = json.loads(conn_json)
        return JiraConnectionSettings.from_connection(
            "x", host=data["host"], login=None, password=None, extra=data["extra"]
        ).broker_signing_secret

    before = jira_emulator.connection_json("oauth2", broker_secret="before-" + "b" * 40)
    put_connection("jira_sec_changing", before)
    assert server.post(*broker_protocol.signed_request(signing_secret(before), "jira_sec_changing", min_valid=0)).ok

    after = json.loads(before)
    after["extra"]["broker_secret"] = "after-" + "a" * 40
    put_connection("jira_sec_changing", json.dumps(after))

    stale = server.post(*broker_protocol.signed_request(signing_secret(before), "jira_sec_changing", min_valid=0))
    fresh = server.post(*broker_protocol.signed_request(signing_secret(json.dumps(after)), "jira_sec_changing", min_valid=0))
    assert stale.status_code == 403
    assert fresh.status_code == 200, fresh.text
