"""Token state belongs to the grant, not to a connection id (in-process, the session's metadata DB).

A connection and its copies (Airflow's Test button tests one under a random id; a person may
duplicate a connection) hold one grant: they must share its one live state, because the first
rotation retires the refresh token every other holder still has, and sending that one after
Atlassian's reuse leeway revokes the grant (Atlassian: "Implementing OAuth 2.0 (3LO)"). Connections of *different* grants
must never share a state, whatever their configuration says.
"""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_jira_auth.client.errors import JiraTokenStoreError
from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook
from airflow_provider_jira_auth.settings import grant_fingerprint
from tests.db_connections import connection_extra, put_connection, variable_value

pytestmark = pytest.mark.usefixtures("airflow_db", "server_context")


@pytest.fixture
def server_context(monkeypatch):
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")


@pytest.fixture
def leeway_emu(jira_emulator):
    emu = jira_emulator
    emu.oauth.reuse_leeway = 0.5
    return emu


def call_myself(conn_id):
    return JiraCloudHook(conn_id).request("GET", "myself")


def wait_past_leeway_and_expiry(emu):
    """Move the emulator's clock past every access token's expiry and every retired refresh token's
    reuse leeway, without sleeping, so a slow machine cannot change what happens. This process still
    holds the old access token as fresh: the next call sends it, Jira refuses it (401), and the
    client refreshes once, with whichever refresh token its store says is live."""
    emu.advance(max(emu.oauth.access_token_ttl, emu.oauth.reuse_leeway) + 60)


def test_a_copy_under_another_id_refreshes_with_the_stored_connections_live_token(leeway_emu, monkeypatch):
    emu = leeway_emu
    put_connection("jira_home", emu.connection_json("oauth2"))
    call_myself("jira_home")  # rotates: the seed is retired
    wait_past_leeway_and_expiry(emu)
    # What Airflow's Test button does: the stored connection, exported under a random id.
    monkeypatch.setenv("AIRFLOW_CONN_XQZRANDOM", json.dumps({"conn_type": "jira_cloud", "host": emu.url, "extra": connection_extra("jira_home")}))

    assert call_myself("xqzrandom")["accountId"]

    assert emu.stats.family_revocations == 0
    assert emu.stats.token_refreshes == 2
    # Written back to the stored connection, which refreshes with it past the leeway.
    emu.advance(60)
    JiraCloudHook("jira_home").keep_alive(max_age_days=0)
    assert emu.stats.token_refreshes == 3 and emu.stats.family_revocations == 0
    assert call_myself("jira_home")["accountId"]


def test_a_copy_of_a_consented_connection_made_before_it_rotated_shares_the_grant(leeway_emu):
    emu = leeway_emu
    put_connection("jira_first", emu.connection_json("oauth2"))
    put_connection("jira_second", json.dumps({"conn_type": "jira_cloud", "host": emu.url, "extra": connection_extra("jira_first")}))
    call_myself("jira_first")
    wait_past_leeway_and_expiry(emu)

    call_myself("jira_second")

    assert emu.stats.family_revocations == 0
    first, second = connection_extra("jira_first"), connection_extra("jira_second")
    assert first["refresh_token"] == second["refresh_token"]
    assert first["grant_id"] == second["grant_id"]


def test_a_copy_of_a_variable_store_connection_reads_the_grants_variable(leeway_emu, monkeypatch):
    emu = leeway_emu
    configured = emu.connection_json("oauth2", grant_store="variable")
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_VAR_HOME", configured)
    call_myself("jira_var_home")
    wait_past_leeway_and_expiry(emu)
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_VAR_COPY", configured)

    call_myself("jira_var_copy")

    assert emu.stats.family_revocations == 0
    extra = json.loads(configured)["extra"]
    assert variable_value("jira_cloud_token__grant_" + grant_fingerprint(extra["client_id"], extra["refresh_token"]))
    assert variable_value("jira_cloud_token__jira_var_copy") is None


def legacy_variable(emu, conn_id: str) -> tuple[str, dict]:
    """A variable-store connection's JSON and extra, with the state a release before 0.2 left:
    rotated once, under the Variable named after ``conn_id``."""
    from airflow.models.variable import Variable

    configured = emu.connection_json("oauth2", grant_store="variable")
    extra = json.loads(configured)["extra"]
    rotated = requests.post(
        f"{emu.auth_url}/oauth/token",
        json={"grant_type": "refresh_token", "client_id": extra["client_id"], "client_secret": extra["client_secret"],
              "refresh_token": extra["refresh_token"]},
        timeout=10,
    ).json()
    Variable.set(f"jira_cloud_token__{conn_id}", json.dumps({"refresh_token": rotated["refresh_token"]}))
    return configured, extra


def test_a_variable_named_after_the_connection_is_taken_over_and_removed(leeway_emu, monkeypatch):
    emu = leeway_emu
    configured, extra = legacy_variable(emu, "jira_legacy")
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_LEGACY", configured)
    wait_past_leeway_and_expiry(emu)

    call_myself("jira_legacy")

    assert emu.stats.family_revocations == 0
    assert variable_value("jira_cloud_token__jira_legacy") is None
    assert variable_value("jira_cloud_token__grant_" + grant_fingerprint(extra["client_id"], extra["refresh_token"]))


def test_a_copy_takes_over_the_variable_named_after_the_original_and_removes_it(leeway_emu, monkeypatch):
    """The legacy state may sit under another connection's id (the copy's own has none)."""
    emu = leeway_emu
    configured, extra = legacy_variable(emu, "jira_original")
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_ORIGINAL", configured)
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_DUPLICATE", configured)
    wait_past_leeway_and_expiry(emu)

    call_myself("jira_duplicate")

    assert emu.stats.family_revocations == 0
    assert variable_value("jira_cloud_token__jira_original") is None
    assert variable_value("jira_cloud_token__grant_" + grant_fingerprint(extra["client_id"], extra["refresh_token"]))


def test_a_token_file_shared_by_two_grants_is_refused_instead_of_lending_an_identity(leeway_emu, monkeypatch, tmp_path):
    emu = leeway_emu
    bob = emu.add_user("bob@example.com", display_name="Bob")
    shared = str(tmp_path / "tokens.json")
    ada_conn = emu.connection_json("oauth2", grant_store="file", grant_file=shared)
    bob_grant = emu.issue_grant(emu.default_app.client_id, user=bob)["refresh_token"]
    bob_conn = emu.connection_json("oauth2", grant_store="file", grant_file=shared, refresh_token=bob_grant)
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_ADA", ada_conn)
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_BOB", bob_conn)
    assert call_myself("jira_ada")["displayName"] == "Ada Lovelace"
    calls = len(emu.requests)

    with pytest.raises(JiraTokenStoreError, match="holds the tokens of another OAuth grant .*'jira_ada'.*own grant_file"):
        call_myself("jira_bob")
    assert len(emu.requests) == calls  # nothing was sent as anyone


def test_the_connection_store_reads_state_written_under_the_keys_airflow_masked(jira_emulator):
    emu = jira_emulator  # hour-long tokens: the cached one stays valid however slow the machine
    put_connection("jira_old_keys", emu.connection_json("oauth2"))
    call_myself("jira_old_keys")
    extra = connection_extra("jira_old_keys")
    renamed = {"access_token_expires_at": extra.pop("access_expires_at"), "refresh_token_rotated_at": extra.pop("refresh_rotated_at")}
    put_connection("jira_old_keys", json.dumps({"conn_type": "jira_cloud", "host": emu.url, "extra": {**extra, **renamed}}))

    call_myself("jira_old_keys")

    assert emu.stats.token_refreshes == 1  # the cached access token was found under its old key
    JiraCloudHook("jira_old_keys").keep_alive(max_age_days=0)  # a refresh now, which writes the state
    assert emu.stats.token_refreshes == 2 and emu.stats.family_revocations == 0
    assert {"access_token_expires_at", "refresh_token_rotated_at"}.isdisjoint(connection_extra("jira_old_keys"))
