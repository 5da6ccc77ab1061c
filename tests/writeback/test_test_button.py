"""Airflow's Test button on a 3LO connection, through a real api-server, never harms the grant.

Airflow tests a *copy* of the stored connection under a random id
(``POST /api/v2/connections/test``, Airflow's Test button). Before the token stores were keyed
by the grant, that copy found no state under its random id and refreshed with a refresh token
Atlassian had already rotated out: after the reuse leeway, that revokes the whole grant.

Each case: a stored connection, rotated once the way a task rotates it (through the token
broker), then tested after the reuse leeway and after its access token expired, so the test must
refresh. It must succeed, revoke nothing, leave no Variable behind, and the connection must keep
working afterwards.
"""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_jira_auth.auth import broker_protocol
from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.airflow_harness import AirflowEnvironment
from tests.db_connections import signing_secret

pytestmark = pytest.mark.airflow_executor

ENV_CONN = "jira_env_variable"
ACCESS_TTL = 2.0
LEEWAY = 1.0


@pytest.fixture(scope="module")
def emulator():
    with JiraCloudEmulator() as emu:
        emu.oauth.access_token_ttl = ACCESS_TTL
        emu.oauth.reuse_leeway = LEEWAY
        yield emu


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, emulator):
    root = tmp_path_factory.mktemp("airflow-test-button")
    (root / "dags").mkdir()
    env_conn = emulator.connection_json("oauth2", grant_store="variable", refresh_margin=0.5)
    env = AirflowEnvironment(
        root,
        dags_folder=root / "dags",
        parallelism=2,
        config={"core": {"test_connection": "Enabled"}},
        env={f"AIRFLOW_CONN_{ENV_CONN.upper()}": env_conn},
    )
    env.start()
    try:
        yield env
    finally:
        env.stop()


def add_oauth(airflow, emulator, conn_id: str, **extra) -> dict:
    connection = json.loads(emulator.connection_json("oauth2", refresh_margin=0.5, **extra))
    airflow.add_connection(conn_id, conn_type="jira_cloud", host=connection["host"], extra=connection["extra"])
    return connection["extra"]


def rotate_as_a_task_does(airflow, conn_id: str) -> str:
    """Ask the api-server's token broker for a refresh, signed as a task signs it (with the key of
    the connection as the task reads it)."""
    if conn_id == ENV_CONN:
        secret = signing_secret(conn_id, airflow.env[f"AIRFLOW_CONN_{ENV_CONN.upper()}"])
    else:
        stored = airflow.get_connection(conn_id)
        secret = signing_secret(conn_id, json.dumps({"host": stored["host"], "extra": stored["extra_dejson"]}))
    body, signature = broker_protocol.signed_request(secret, conn_id, min_valid=0, force=True)
    answer = requests.post(
        f"{airflow.api_url}/jira-auth{broker_protocol.PATH}",
        data=body,
        headers={"Content-Type": "application/json", broker_protocol.SIGNATURE_HEADER: signature},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def press_test(airflow, conn_id: str) -> dict:
    """What the UI's Test sends: the connection as the UI lists it (secrets masked as ***), and
    ``Number(port)``, which is 0 for a connection without a port (Airflow 3.3.2)."""
    shown = airflow.api("GET", f"/api/v2/connections/{conn_id}")
    body = {k: shown.get(k) for k in ("connection_id", "conn_type", "host", "login", "schema", "extra")}
    body["port"] = 0
    return airflow.api("POST", "/api/v2/connections/test", json_body=body)


def variable_keys(airflow) -> set[str]:
    return {v["key"] for v in airflow.api("GET", "/api/v2/variables", params={"limit": 100})["variables"]}


def myself(emulator, access_token: str) -> int:
    cloud_id = emulator.default_site.cloud_id
    return requests.get(
        f"{emulator.api_url}/ex/jira/{cloud_id}/rest/api/3/myself",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    ).status_code


@pytest.fixture(autouse=True)
def short_lived_tokens(emulator):
    emulator.oauth.access_token_ttl = ACCESS_TTL


def after_the_leeway_and_expiry(emulator) -> None:
    """Move the emulator's clock until every access token issued so far has expired and every
    retired refresh token is past its reuse leeway. Tokens issued from then on live two minutes:
    the Test must refresh once, and then not again because a loaded machine took seconds to use
    its token."""
    emulator.advance(max(ACCESS_TTL, LEEWAY) + 1.5)
    emulator.oauth.access_token_ttl = 120


@pytest.mark.parametrize("store", ["connection", "variable", "file"])
def test_testing_a_rotated_connection_succeeds_and_revokes_nothing(airflow, emulator, store):
    conn_id = f"jira_tested_{store}"
    add_oauth(airflow, emulator, conn_id, **({} if store == "connection" else {"grant_store": store}))
    rotate_as_a_task_does(airflow, conn_id)
    after_the_leeway_and_expiry(emulator)
    variables_before = variable_keys(airflow)
    revocations, refreshes = emulator.stats.family_revocations, emulator.stats.token_refreshes

    result = press_test(airflow, conn_id)

    assert result["status"] is True, result["message"]
    assert "Connected to" in result["message"] and "Granted scopes:" in result["message"]
    assert emulator.stats.token_refreshes == refreshes + 1  # the expired access token was renewed...
    assert emulator.stats.family_revocations == revocations == 0  # ...with the live refresh token
    assert variable_keys(airflow) == variables_before
    after_the_leeway_and_expiry(emulator)
    assert myself(emulator, rotate_as_a_task_does(airflow, conn_id)) == 200
    assert emulator.stats.family_revocations == 0


def test_testing_an_env_var_connection_with_the_variable_store_shares_its_live_state(airflow, emulator):
    rotate_as_a_task_does(airflow, ENV_CONN)
    after_the_leeway_and_expiry(emulator)
    variables_before = variable_keys(airflow)

    # Not listed by the UI (it lives in the environment): tested through the API by its id.
    result = airflow.api(
        "POST", "/api/v2/connections/test",
        json_body={"connection_id": ENV_CONN, "conn_type": "jira_cloud", "host": emulator.url},
    )

    assert result["status"] is True, result["message"]
    assert emulator.stats.family_revocations == 0
    assert variable_keys(airflow) == variables_before
    assert myself(emulator, rotate_as_a_task_does(airflow, ENV_CONN)) == 200


def test_a_duplicated_connection_shares_the_grant_instead_of_revoking_it(airflow, emulator):
    add_oauth(airflow, emulator, "jira_original")
    copy = airflow.api("GET", "/api/v2/connections/jira_original")
    stored = airflow.get_connection("jira_original")
    airflow.add_connection("jira_duplicate", conn_type="jira_cloud", host=copy["host"], extra=stored["extra_dejson"])
    rotate_as_a_task_does(airflow, "jira_original")
    after_the_leeway_and_expiry(emulator)

    token = rotate_as_a_task_does(airflow, "jira_duplicate")

    assert myself(emulator, token) == 200
    assert emulator.stats.family_revocations == 0
    # Both connections show the one live refresh token.
    assert airflow.get_connection("jira_original")["extra_dejson"]["refresh_token"] == (
        airflow.get_connection("jira_duplicate")["extra_dejson"]["refresh_token"]
    )
