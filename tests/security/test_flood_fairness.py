"""A flood of forged requests cannot keep a connection's correctly signed first request from being served.

The lookups unverified requests cost are budgeted per caller (its address), and what a lookup
found for a connection id is remembered for a moment: forged requests naming a connection are
judged against its key without another lookup, and a flood from one address spends that
address's budget only. Against a real broker process over HTTP, the flood from 127.0.0.1 on 8
threads, the other caller at 127.0.0.2 (also this host's loopback).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_jira_auth.auth import broker_protocol
from tests.db_connections import put_connection, signing_secret

FLOODED, ELSEWHERE = "jira_sec_flooded", "jira_sec_elsewhere"


class _FromAddress(HTTPAdapter):
    """Connections from a given local address."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._address, 0)
        return super().init_poolmanager(*args, **kwargs)


def session_from(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    return session


def post(session: requests.Session, server, body: bytes, signature: str) -> requests.Response:
    return session.post(
        server.url + broker_protocol.PATH,
        data=body,
        headers={"Content-Type": "application/json", broker_protocol.SIGNATURE_HEADER: signature},
        timeout=60,
    )


def test_a_first_request_is_served_while_forged_requests_flood_the_broker(start_broker, jira_emulator):
    put_connection(FLOODED, jira_emulator.connection_json("oauth2"))
    put_connection(ELSEWHERE, jira_emulator.connection_json("oauth2"))
    server = start_broker()
    flooder = session_from("127.0.0.1")
    statuses: list[int] = []
    stop = threading.Event()

    def flood(worker: int) -> None:
        session, n = session_from("127.0.0.1"), 0
        while not stop.is_set():
            n += 1
            # Half name the connection about to ask for its first token, half ids that do not exist.
            conn_id = FLOODED if n % 2 else f"jira_sec_nobody_{worker}_{n}"
            statuses.append(post(session, server, *broker_protocol.signed_request("guessed", conn_id, min_valid=0)).status_code)

    with ThreadPoolExecutor(8) as pool:
        for worker in range(8):
            pool.submit(flood, worker)
        try:
            deadline = time.monotonic() + 60
            while statuses.count(429) < 20 and time.monotonic() < deadline:  # polling the flood's answers
                time.sleep(0.05)
            assert statuses.count(429) >= 20, "the flood should have spent the flooding address's lookup budget"
            # Each connection's first request, correctly signed, in the middle of the flood.
            same_address = post(flooder, server, *broker_protocol.signed_request(signing_secret(FLOODED), FLOODED, min_valid=0))
            other_address = post(
                session_from("127.0.0.2"), server,
                *broker_protocol.signed_request(signing_secret(ELSEWHERE), ELSEWHERE, min_valid=0),
            )
            still_flooding = len(statuses)
            deadline = time.monotonic() + 30
            while len(statuses) <= still_flooding:  # polling: the flood goes on, answered
                assert time.monotonic() < deadline, "the flood got no more answers"
                time.sleep(0.05)
        finally:
            stop.set()

    print(f"\nflood: {len(statuses)} forged requests: {statuses.count(403)} x 403, {statuses.count(429)} x 429")
    assert set(statuses) <= {403, 429}
    assert same_address.status_code == 200, same_address.text
    assert other_address.status_code == 200, other_address.text
