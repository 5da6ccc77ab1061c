"""A captured request replayed to another api-server process is refused: the nonce memory is shared.

Two broker processes on one metadata database stand for two api-server replicas (or two
workers of one). Each database the provider supports in a deployment is tried: the session's
(PostgreSQL when the machine runs one) and SQLite, which the demo uses.
"""

from __future__ import annotations

import os
import pytest

from airflow_provider_jira_auth.auth import broker_protocol
from tests.db_connections import put_connection, signing_secret
from tests.security.conftest import airflow_cli

CONN_ID = "jira_sec_replay"


@pytest.fixture(params=["session-db", "sqlite"])
def shared_db(request, tmp_path, jira_emulator, airflow_db) -> tuple[dict[str, str], str]:
    """Environment overrides naming one metadata DB holding connection CONN_ID, for every server,
    and the connection (JSON)."""
    connection = jira_emulator.connection_json("oauth2")
    if request.param == "session-db":
        put_connection(CONN_ID, connection)
        return {}, connection
    home = tmp_path / "sqlite-home"
    home.mkdir()
    overrides = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    env = {**os.environ, **overrides}
    airflow_cli(env, "db", "migrate")
    airflow_cli(env, "connections", "add", CONN_ID, "--conn-json", connection)
    return overrides, connection


def test_a_request_accepted_by_one_process_is_refused_by_another(start_broker, shared_db, jira_emulator):
    overrides, connection = shared_db
    first, second = start_broker("first", "second", **overrides)
    client_secret = signing_secret(CONN_ID, connection)

    captured = broker_protocol.signed_request(client_secret, CONN_ID, min_valid=0, force=True)
    accepted = first.post(*captured)
    assert accepted.status_code == 200, accepted.text
    refreshes = jira_emulator.stats.token_refreshes

    replayed = second.post(*captured)
    assert replayed.status_code == 403, replayed.text
    assert replayed.json()["error"] == "stale"
    assert first.post(*captured).status_code == 403
    assert jira_emulator.stats.token_refreshes == refreshes, "the replay caused another refresh"

    # The second process serves requests of its own.
    fresh = second.post(*broker_protocol.signed_request(client_secret, CONN_ID, min_valid=0, force=True))
    assert fresh.status_code == 200, fresh.text
    assert jira_emulator.stats.token_refreshes == refreshes + 1
