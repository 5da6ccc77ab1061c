"""The token broker endpoint, in-process over its real FastAPI app and the session's metadata DB."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from airflow_provider_jira_auth.auth import broker_protocol
from airflow_provider_jira_auth.plugins import token_broker
from tests.db_connections import connection_extra, put_connection, signing_secret

pytestmark = pytest.mark.usefixtures("airflow_db", "server_context")


@pytest.fixture
def server_context(monkeypatch):
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")


@pytest.fixture
def broker():
    from airflow_provider_jira_auth.plugins.jira_auth import app

    return TestClient(app)


@pytest.fixture
def oauth(jira_emulator, monkeypatch):
    put_connection("jira_broker", jira_emulator.connection_json("oauth2"))
    put_connection("jira_broker_basic", jira_emulator.connection_json("basic"))
    # Each test's emulator has an app of its own, so the connection's key changed: the broker (one for
    # the module, in this process) would judge it by its lookup of moments ago until LOOKUP_MEMORY
    # ends. Each test gets the memory of a broker just started instead.
    monkeypatch.setattr(token_broker, "_known_keys", token_broker._KnownKeys())
    monkeypatch.setattr(token_broker, "_recent_lookups", token_broker._RecentLookups())
    monkeypatch.setattr(token_broker, "_lookup_budget", token_broker._LookupBudget())
    # What a task of the connection signs with (its client secret bound to its own broker secret).
    return json.loads(jira_emulator.connection_json("oauth2"))["extra"] | {"client_secret": signing_secret("jira_broker")}


def post(broker, body: bytes, signature: str):
    return broker.post("/token", content=body, headers={broker_protocol.SIGNATURE_HEADER: signature})


def test_a_signed_request_gets_an_access_token_and_never_the_refresh_token(broker, oauth, jira_emulator):
    body, signature = broker_protocol.signed_request(oauth["client_secret"], "jira_broker", min_valid=60)
    answer = post(broker, body, signature)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    assert payload["access_token"] and payload["expires_at"] > time.time() + 60
    assert "refresh_token" not in json.dumps(payload) and connection_extra("jira_broker")["refresh_token"] not in answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_wrong_secret_unknown_connection_and_basic_connection_get_the_same_403(broker, oauth):
    cases = [
        broker_protocol.signed_request("not-the-secret", "jira_broker", min_valid=0),
        broker_protocol.signed_request(oauth["client_secret"], "jira_nope", min_valid=0),
        broker_protocol.signed_request(oauth["client_secret"], "jira_broker_basic", min_valid=0),
    ]
    answers = [post(broker, *case) for case in cases]
    assert {a.status_code for a in answers} == {403}
    assert len({a.text for a in answers}) == 1


def test_a_replayed_or_stale_request_is_refused(broker, oauth):
    body, signature = broker_protocol.signed_request(oauth["client_secret"], "jira_broker", min_valid=0)
    assert post(broker, body, signature).status_code == 200
    replay = post(broker, body, signature)
    assert replay.status_code == 403 and replay.json()["error"] == "stale"

    old = json.loads(body) | {"ts": time.time() - 3600}
    old_body = json.dumps(old).encode()
    stale = post(broker, old_body, broker_protocol.hmac.new(broker_protocol._key(oauth["client_secret"]), old_body, "sha256").hexdigest())
    assert stale.status_code == 403 and stale.json()["error"] == "stale"


@pytest.mark.parametrize("skew", [broker_protocol.MAX_SKEW + 60, -(broker_protocol.MAX_SKEW + 60)], ids=["old", "future"])
def test_a_request_stamped_outside_the_window_is_refused_even_with_a_fresh_nonce(broker, oauth, jira_emulator, skew):
    # Correctly signed, with a nonce never sent before: only its timestamp is wrong.
    body, _ = broker_protocol.signed_request(oauth["client_secret"], "jira_broker", min_valid=0)
    stamped = json.dumps(json.loads(body) | {"ts": time.time() - skew}, separators=(",", ":")).encode()

    answer = post(broker, stamped, broker_protocol.sign(oauth["client_secret"], stamped))

    assert answer.status_code == 403 and answer.json()["error"] == "stale"
    assert jira_emulator.stats.token_refreshes == 0


def test_force_refreshes_and_an_absurd_min_valid_does_not(broker, oauth, jira_emulator):
    first = post(broker, *broker_protocol.signed_request(oauth["client_secret"], "jira_broker", min_valid=0))
    refreshes = jira_emulator.stats.token_refreshes
    huge = post(broker, *broker_protocol.signed_request(oauth["client_secret"], "jira_broker", min_valid=1e12))
    assert huge.status_code == 200 and jira_emulator.stats.token_refreshes == refreshes
    forced = post(broker, *broker_protocol.signed_request(oauth["client_secret"], "jira_broker", min_valid=0, force=True))
    assert forced.status_code == 200 and jira_emulator.stats.token_refreshes == refreshes + 1
    assert forced.json()["access_token"] != first.json()["access_token"]
