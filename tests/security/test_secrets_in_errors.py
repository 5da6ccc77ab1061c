"""When the database refuses to store token state, no part of a secret reaches the answer or the log.

SQLAlchemy's errors print the statement's parameters: for ``UPDATE connection`` that is the
connection's extra, which holds the client id, the client secret and the refresh token (in
plain text when no Fernet key is configured, as here). The database is made to refuse the
write with a trigger on this test's connection only; the broker is then asked for a forced
refresh, whose first step writes the store.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_jira_auth.auth import broker_protocol
from tests.db_connections import connection_extra, put_connection

CONN_ID = "jira_sec_readonly"
REFUSAL = "connection jira_sec_readonly is read-only"

TRIGGERS = {
    "postgresql": (
        [
            "CREATE OR REPLACE FUNCTION jira_sec_refuse() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER jira_sec_readonly BEFORE UPDATE ON connection FOR EACH ROW "
            f"WHEN (OLD.conn_id = '{CONN_ID}') EXECUTE FUNCTION jira_sec_refuse()",
        ],
        ["DROP TRIGGER IF EXISTS jira_sec_readonly ON connection", "DROP FUNCTION IF EXISTS jira_sec_refuse()"],
    ),
    "sqlite": (
        [
            f"CREATE TRIGGER jira_sec_readonly BEFORE UPDATE ON connection WHEN OLD.conn_id = '{CONN_ID}' "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        ],
        ["DROP TRIGGER IF EXISTS jira_sec_readonly"],
    ),
}


def execute(statements: list[str], **params) -> None:
    from airflow.utils.session import create_session
    from sqlalchemy import text

    with create_session() as session:
        for statement in statements:
            session.execute(text(statement), params)


@pytest.fixture
def read_only_connection(jira_emulator, airflow_db) -> dict[str, str]:
    """Connection CONN_ID stored unencrypted, with a database that refuses any update of it."""
    from airflow import settings

    data = json.loads(jira_emulator.connection_json("oauth2"))
    put_connection(CONN_ID, json.dumps(data))
    # As a deployment without a Fernet key stores it: the extra in plain text.
    execute(["UPDATE connection SET extra = :extra, is_extra_encrypted = :no WHERE conn_id = :conn_id"],
            extra=json.dumps(data["extra"]), no=False, conn_id=CONN_ID)
    create, drop = TRIGGERS[settings.engine.dialect.name]
    execute(drop)
    execute(create)
    yield data["extra"]
    execute(drop)


def fragments(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def test_a_refused_write_answers_409_without_any_fragment_of_the_secrets(start_broker, read_only_connection, jira_emulator):
    extra = read_only_connection
    server = start_broker(AIRFLOW__CORE__FERNET_KEY="")
    refreshes = jira_emulator.stats.token_refreshes

    answer = server.post(*broker_protocol.signed_request(extra["client_secret"], CONN_ID, min_valid=0, force=True))

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "store"
    assert "read-only" in answer.json()["message"], "the answer should still say what the database said"
    assert jira_emulator.stats.token_refreshes == refreshes, "nothing may be sent to Atlassian when the store cannot be written"
    log = server.log()
    assert "Token broker" in log and "read-only" in log, "the failure should be logged:\n" + log[-3000:]
    for name in ("client_id", "client_secret", "refresh_token"):
        for where, text in (("answer", answer.text), ("server log", log)):
            leaked = [fragment for fragment in fragments(extra[name]) if fragment in text]
            assert not leaked, f"the {where} carries part of the {name}: {leaked[:3]}\n{text[-3000:]}"


@pytest.mark.parametrize(
    ("store", "status"), [("LeakyStore", 409), ("CrashingStore", 500)], ids=["store-error", "unexpected-error"]
)
def test_an_error_quoting_the_secrets_is_scrubbed_in_the_answer_and_the_log(start_broker, jira_emulator, airflow_db, store, status):
    conn_id = f"jira_sec_{store.lower()}"
    put_connection(conn_id, jira_emulator.connection_json("oauth2", token_store=f"tests.security.leaky_stores.{store}"))
    extra = connection_extra(conn_id)
    server = start_broker()

    answer = server.post(*broker_protocol.signed_request(extra["client_secret"], conn_id, min_valid=0, force=True))

    assert answer.status_code == status, answer.text + server.log()[-3000:]
    log = server.log()
    assert "Token broker" in log, log[-3000:]
    if status == 409:
        assert "vault refused [redacted]" in answer.text and "vault refused [redacted]" in log
    for name in ("client_id", "client_secret", "refresh_token"):
        for where, text in (("answer", answer.text), ("server log", log)):
            leaked = [fragment for fragment in fragments(extra[name]) if fragment in text]
            assert not leaked, f"the {where} carries part of the {name}: {leaked[:3]}\n{text[-3000:]}"
