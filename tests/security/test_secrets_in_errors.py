"""When the database refuses to store token state, no part of a secret reaches the answer or the log.

SQLAlchemy's errors print the statement's parameters: for ``UPDATE connection`` that is the
connection's extra, which holds the client id, the client secret and the refresh token (in
plain text when no Fernet key is configured, as here). In a throwaway database, a trigger
refuses updates of this test's connection; the broker is then asked for a forced refresh, whose
first step writes the store.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

from airflow_provider_jira_auth.auth import broker_protocol
from tests.airflow_harness import DEFAULT_POSTGRES_ADMIN_DSN, _create_database, _drop_database, postgres_available
from tests.db_connections import connection_extra, put_connection, signing_secret
from tests.security.conftest import airflow_cli

CONN_ID = "jira_sec_readonly"
REFUSAL = "connection jira_sec_readonly is read-only"

# A refusal whose message quotes 12 characters from the middle of the client secret in the row
# being written (the plain-text extra): no whole secret, so only a scrub of fragments finds it.
QUOTING = (
    "CREATE FUNCTION jira_sec_refuse() RETURNS trigger AS $$ "
    f"BEGIN RAISE EXCEPTION '{REFUSAL}: %', "
    "substr(NEW.extra, strpos(NEW.extra, '\"client_secret\": \"') + 20, 12); END $$ LANGUAGE plpgsql"
)
TRIGGERS = {
    "postgresql": [
        "CREATE FUNCTION jira_sec_refuse() RETURNS trigger AS $$ "
        f"BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER jira_sec_readonly BEFORE UPDATE ON connection FOR EACH ROW "
        f"WHEN (OLD.conn_id = '{CONN_ID}') EXECUTE FUNCTION jira_sec_refuse()",
    ],
    "sqlite": [
        f"CREATE TRIGGER jira_sec_readonly BEFORE UPDATE ON connection WHEN OLD.conn_id = '{CONN_ID}' "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    ],
}


@pytest.fixture(params=["plain", "quoting"])
def read_only_db(request, tmp_path, jira_emulator) -> Iterator[tuple[dict[str, str], dict[str, str], bool]]:
    """A throwaway metadata DB without a Fernet key (extras in plain text) holding CONN_ID, whose
    updates the database refuses ("quoting": with a message that quotes part of the client secret
    from the row); yields (environment overrides, the connection's extra, whether it quotes).

    PostgreSQL when the machine runs one, as in the deployment this reproduces; SQLite otherwise
    (which cannot put a row's value into a trigger's message: "quoting" is skipped there).
    """
    from sqlalchemy import create_engine, text

    if request.param == "quoting" and not postgres_available():
        pytest.skip("a trigger message quoting the row needs PostgreSQL")

    home = tmp_path / "home"
    home.mkdir()
    database = None
    if postgres_available():
        database = f"jira_auth_sec_{uuid.uuid4().hex[:10]}"
        _create_database(DEFAULT_POSTGRES_ADMIN_DSN, database, "airflow-provider-jira-auth security test")
        url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"
    else:
        url = f"sqlite:///{home / 'airflow.db'}"
    overrides = {"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url, "AIRFLOW__CORE__FERNET_KEY": ""}
    env = {**os.environ, **overrides}
    data = json.loads(jira_emulator.connection_json("oauth2"))
    try:
        airflow_cli(env, "db", "migrate")
        airflow_cli(env, "connections", "add", CONN_ID, "--conn-json", json.dumps(data))
        engine = create_engine(url)
        with engine.begin() as connection:
            statements = list(TRIGGERS[engine.dialect.name])
            if request.param == "quoting":
                statements[0] = QUOTING
            for statement in statements:
                connection.execute(text(statement))
        engine.dispose()
        yield overrides, data["extra"], request.param == "quoting"
    finally:
        if database:
            _drop_database(DEFAULT_POSTGRES_ADMIN_DSN, database)


def fragments(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def test_a_refused_write_answers_409_without_any_fragment_of_the_secrets(start_broker, read_only_db, jira_emulator):
    overrides, extra, quoting = read_only_db
    server = start_broker(**overrides)
    refreshes = jira_emulator.stats.token_refreshes

    task_reads = json.dumps({"host": jira_emulator.url, "extra": extra})
    answer = server.post(*broker_protocol.signed_request(signing_secret(CONN_ID, task_reads), CONN_ID, min_valid=0, force=True))

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "store"
    assert "read-only" in answer.json()["message"], "the answer should still say what the database said"
    if quoting:  # the quoted piece was there, and is gone
        assert "read-only: [redacted]" in answer.json()["message"], answer.text
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
    put_connection(conn_id, jira_emulator.connection_json("oauth2", grant_store=f"tests.security.leaky_stores.{store}"))
    extra = connection_extra(conn_id)
    server = start_broker()

    answer = server.post(*broker_protocol.signed_request(signing_secret(conn_id), conn_id, min_valid=0, force=True))

    assert answer.status_code == status, answer.text + server.log()[-3000:]
    log = server.log()
    assert "Token broker" in log, log[-3000:]
    if status == 409:
        assert "vault refused [redacted]" in answer.text and "vault refused [redacted]" in log
    for name in ("client_id", "client_secret", "refresh_token"):
        for where, text in (("answer", answer.text), ("server log", log)):
            leaked = [fragment for fragment in fragments(extra[name]) if fragment in text]
            assert not leaked, f"the {where} carries part of the {name}: {leaked[:3]}\n{text[-3000:]}"
