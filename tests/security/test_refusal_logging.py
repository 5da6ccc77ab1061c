"""A flood of requests nobody signed does not write a log line per request.

Refusals are logged at debug; a warning sums them up at most once a minute. Airflow's own
``Connection.get_connection_from_secrets`` logs a warning (about the ``_`` in ``jira_cloud``) on
every lookup of an existing connection, so the broker looks connections up without it.
"""

from __future__ import annotations

import re

from airflow_provider_jira_auth.auth import broker_protocol
from tests.db_connections import put_connection, signing_secret

CONN_ID = "jira_sec_flood"
FLOOD = 40


def warnings_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"\[(warning|error|critical)\s*\]", line)]


def test_bad_signatures_and_unknown_connections_are_not_logged_per_request(start_broker, jira_emulator):
    put_connection(CONN_ID, jira_emulator.connection_json("oauth2"))
    put_connection("jira_sec_flood_basic", jira_emulator.connection_json("basic"))
    client_secret = signing_secret(CONN_ID)
    server = start_broker()
    # The connection's owner was served before: the broker knows its key.
    assert server.post(*broker_protocol.signed_request(client_secret, CONN_ID, min_valid=0)).status_code == 200
    before = len(server.log())

    for n in range(FLOOD):
        attempts = [
            broker_protocol.signed_request("not-the-secret", CONN_ID, min_valid=0),
            broker_protocol.signed_request(client_secret, f"jira_sec_unknown_{n}", min_valid=0),
            broker_protocol.signed_request(client_secret, "jira_sec_flood_basic", min_valid=0),
        ]
        # 403, or 429 once the flood has spent the broker's lookup budget.
        assert {server.post(*attempt).status_code for attempt in attempts} <= {403, 429}
    refused = warnings_in(server.log()[before:])
    assert len(refused) == 1, f"{len(refused)} warnings for {3 * FLOOD} refused requests:\n" + "\n".join(refused[:10])
    assert "Token broker: refused 1 request" in refused[0], "one warning should say that refusals began"

    # The connection's owner is still served at once, flood or not.
    answer = server.post(*broker_protocol.signed_request(client_secret, CONN_ID, min_valid=0))
    assert answer.status_code == 200, answer.text
