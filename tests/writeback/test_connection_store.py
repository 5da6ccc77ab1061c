"""3LO through the hook with the token state written back to Airflow (in-process, direct to the DB).

These run where Airflow allows the ORM (as the api-server, scheduler and CLI do); the same
stores reached from real task processes through the token broker are tested in
tests/executor/.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from airflow_provider_jira_auth.client.errors import JiraGrantRevokedError, JiraTokenStoreError
from airflow_provider_jira_auth.settings import grant_fingerprint
from tests.db_connections import connection_extra, put_connection, variable_value

pytestmark = pytest.mark.usefixtures("airflow_db", "server_context")


@pytest.fixture
def server_context(monkeypatch):
    # Outside a task, Airflow reads DB connections only in processes marked server-side.
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")


def hook(conn_id):
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    return JiraCloudHook(conn_id)


def token_calls(emu):
    return [r for r in emu.requests if r.path.endswith("/oauth/token")]


def test_first_call_refreshes_and_writes_the_rotated_token_back_to_the_connection(jira_emulator):
    emu = jira_emulator
    put_connection("jira_wb", emu.connection_json("oauth2"))
    seed = connection_extra("jira_wb")["refresh_token"]

    me = hook("jira_wb").request("GET", "myself")

    stored = connection_extra("jira_wb")
    assert me["accountId"]
    assert stored["refresh_token"] != seed
    assert stored["access_token"] and float(stored["access_expires_at"]) > time.time() + 3000
    assert stored["refresh_started_at"] is None
    assert len(token_calls(emu)) == 1


def test_a_second_hook_reuses_the_stored_access_token_without_refreshing(jira_emulator):
    emu = jira_emulator
    put_connection("jira_wb", emu.connection_json("oauth2"))
    hook("jira_wb").request("GET", "myself")
    hook("jira_wb").request("GET", "myself")
    assert len(token_calls(emu)) == 1


def test_the_stored_refresh_token_is_the_one_atlassian_accepts_next(jira_emulator):
    emu = jira_emulator
    put_connection("jira_wb", emu.connection_json("oauth2"))
    hook("jira_wb").request("GET", "myself")
    for _ in range(3):
        # Jira's clock passes the access token's hour (and the reuse leeway): the next hook's call
        # is refused, and it rotates with the refresh token the store holds.
        emu.advance(3600 + 60)
        hook("jira_wb").request("GET", "myself")
    assert len(token_calls(emu)) == 4  # one rotation each time, none more
    assert emu.stats.family_revocations == 0 and emu.stats.reuse_within_leeway == 0


def test_a_response_without_refresh_token_keeps_the_old_one(jira_emulator):
    emu = jira_emulator
    emu.oauth.omit_refresh_token_every = 1
    put_connection("jira_wb", emu.connection_json("oauth2"))
    seed = connection_extra("jira_wb")["refresh_token"]
    hook("jira_wb").request("GET", "myself")
    assert connection_extra("jira_wb")["refresh_token"] == seed


def test_a_revoked_grant_says_consent_again_and_is_not_retried(jira_emulator):
    emu = jira_emulator
    put_connection("jira_wb", emu.connection_json("oauth2"))
    emu.revoke_grant(connection_extra("jira_wb")["refresh_token"])
    with pytest.raises(JiraGrantRevokedError) as caught:
        hook("jira_wb").request("GET", "myself")
    assert "airflow-jira-auth authorize --conn-id jira_wb" in str(caught.value)
    assert len(token_calls(emu)) == 1
    assert connection_extra("jira_wb")["refresh_started_at"] is None  # nothing rotated: no crash marker


def test_an_unfinished_refresh_found_in_the_store_forces_a_refresh_at_once(jira_emulator):
    emu = jira_emulator
    put_connection("jira_wb", emu.connection_json("oauth2"))
    hook("jira_wb").request("GET", "myself")
    extra = connection_extra("jira_wb")
    # As a process killed between Atlassian's answer and the save leaves it: the marker set, the
    # access token apparently valid for an hour.
    put_connection("jira_wb", emu.connection_json("oauth2"), **{**extra, "refresh_started_at": time.time() - 5})

    hook("jira_wb").request("GET", "myself")

    assert len(token_calls(emu)) == 2
    assert connection_extra("jira_wb")["refresh_started_at"] is None


def test_an_env_var_connection_with_the_default_store_names_the_variable_store(jira_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_ENVONLY", jira_emulator.connection_json("oauth2"))
    with pytest.raises(JiraTokenStoreError, match="grant_store to .variable."):
        hook("jira_envonly").request("GET", "myself")
    assert token_calls(jira_emulator) == []  # failed before rotating anything


def test_the_variable_store_keeps_rotating_state_for_an_env_var_connection(jira_emulator, monkeypatch):
    emu = jira_emulator
    configured = emu.connection_json("oauth2", grant_store="variable")
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_ENVVAR", configured)
    seed = json.loads(configured)["extra"]["refresh_token"]
    key = "jira_cloud_token__grant_" + grant_fingerprint(json.loads(configured)["extra"]["client_id"], seed)
    hook("jira_envvar").request("GET", "myself")
    first = json.loads(variable_value(key))
    emu.advance(3600 + 1)  # the access token dies: the next call refreshes from the Variable
    hook("jira_envvar").request("GET", "myself")
    second = json.loads(variable_value(key))
    assert first["refresh_token"] != seed  # rotated away from the connection's seed...
    assert second["refresh_token"] not in (seed, first["refresh_token"])  # ...then from the Variable's own
    assert emu.stats.family_revocations == 0 and emu.stats.reuse_within_leeway == 0


@pytest.mark.parametrize("kind", ["connection", "variable"])
def test_a_save_refuses_to_overwrite_a_refresh_token_written_outside_the_lock(jira_emulator, kind):
    # A consent (or an edit) writes a new grant while a refresh that read the old one is under way:
    # the refresh's save compares against what it read, and the new grant stays.
    from airflow_provider_jira_auth.auth.stores.airflow_db import ConnectionTokenStore, VariableTokenStore

    conn_id = f"jira_cas_{kind}"
    put_connection(conn_id, jira_emulator.connection_json("oauth2"))
    seed = connection_extra(conn_id)["refresh_token"]
    if kind == "connection":
        store = ConnectionTokenStore(conn_id)
    else:
        store = VariableTokenStore(conn_id, seed_refresh_token=seed)
    read = store.load()
    assert read is not None and read.refresh_token == seed

    consented = read.with_changes(refresh_token="rt-consented-meanwhile", access_token=None)
    if kind == "connection":
        put_connection(conn_id, jira_emulator.connection_json("oauth2"), refresh_token=consented.refresh_token)
    else:
        VariableTokenStore(conn_id).save(consented, None)  # as a consent writes the store

    rotated = read.with_changes(refresh_token="rt-rotated-from-the-old-grant", access_token="at-rotated")
    with pytest.raises(JiraTokenStoreError, match="replaced outside the provider's lock") as caught:
        store.save(rotated, read)

    assert store.load().refresh_token == consented.refresh_token
    assert "rt-" not in str(caught.value) and seed not in str(caught.value)


def test_a_refresh_that_lost_to_a_new_consent_is_neither_retried_nor_called_a_store_failure(
    jira_emulator, monkeypatch, caplog
):
    # The compare-and-swap refusal is not a failing store: saving again would fail again and must
    # not win. One attempt, no wait, an error that says the newer grant is kept (no CRITICAL).
    from airflow_provider_jira_auth.auth.stores import base
    from airflow_provider_jira_auth.auth.stores.airflow_db import VariableTokenStore
    from airflow_provider_jira_auth.client.errors import JiraTokenStoreConflictError

    conn_id = "jira_cas_lost"
    put_connection(conn_id, jira_emulator.connection_json("oauth2"))
    store = VariableTokenStore(conn_id, seed_refresh_token=connection_extra(conn_id)["refresh_token"])
    read = store.load()
    VariableTokenStore(conn_id).save(read.with_changes(refresh_token="rt-consented", access_token=None), None)
    waits: list[float] = []
    monkeypatch.setattr(base.time, "sleep", waits.append)

    with caplog.at_level(logging.WARNING), pytest.raises(JiraTokenStoreConflictError):
        store.save_with_retries(read.with_changes(refresh_token="rt-rotated", access_token="at"), read)

    assert waits == []
    assert store.load().refresh_token == "rt-consented"
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert any("keeping the newer one" in r.getMessage() for r in caplog.records)
