"""A request signed for one connection cannot obtain another connection's tokens, even of one OAuth app.

Two connections of one app (team A, team B; different users' grants) share the client secret.
Each is bound to its own broker secret: the ``broker_secret`` the consent step writes, or, for a
connection without one (the UI's form saves ``"broker_secret": null``; a connection written by
hand, from an environment variable or a secrets backend), one derived from its own refresh
token. A request for B signed with what A's holders know is refused, and B's own holders still
get B's token. Against a real broker process over HTTP.
"""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_jira_auth.auth import broker_protocol
from tests.db_connections import connection_extra, put_connection, signing_secret


def settings_of(conn_id: str, conn_json: str):
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    data = json.loads(conn_json)
    return JiraConnectionSettings.from_connection(conn_id, host=data["host"], login=None, password=None, extra=data["extra"])


def display_name(emu, access_token: str) -> str:
    return requests.get(
        f"{emu.api_url}/ex/jira/{emu.default_site.cloud_id}/rest/api/3/myself",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    ).json()["displayName"]


def what_as_holders_can_sign_with(a) -> list[str]:
    """Every key a holder of connection A (and of the app's client secret) can compute."""
    return [a.broker_signing_secret, a.client_secret, f"{a.client_secret}\0{a.broker_key_material}"]


def test_a_request_for_b_signed_with_as_credential_is_refused(broker, jira_emulator):
    emu = jira_emulator
    bob = emu.add_user("bob@example.com", display_name="Bob")
    team_a = emu.connection_json("oauth2", broker_secret="team-a-" + "a" * 40)
    team_b = emu.connection_json(
        "oauth2",
        broker_secret="team-b-" + "b" * 40,
        refresh_token=emu.issue_grant(emu.default_app.client_id, user=bob)["refresh_token"],
    )
    put_connection("jira_team_a", team_a)
    put_connection("jira_team_b", team_b)
    a, b = settings_of("jira_team_a", team_a), settings_of("jira_team_b", team_b)
    assert a.client_secret == b.client_secret  # one OAuth app

    forged = broker.post(*broker_protocol.signed_request(a.broker_signing_secret, "jira_team_b", min_valid=0))
    app_only = broker.post(*broker_protocol.signed_request(b.client_secret, "jira_team_b", min_valid=0))
    own = broker.post(*broker_protocol.signed_request(b.broker_signing_secret, "jira_team_b", min_valid=0))

    assert forged.status_code == 403 and app_only.status_code == 403
    assert own.status_code == 200, own.text
    assert display_name(emu, own.json()["access_token"]) == "Bob"


@pytest.mark.parametrize("saved_as", [None, ""], ids=["null", "empty"])
def test_connections_saved_without_a_broker_secret_are_bound_to_themselves(broker, jira_emulator, saved_as):
    """As the connection form saves them: ``"broker_secret": null`` (or an empty field)."""
    emu = jira_emulator
    a_id, b_id = ("jira_form_a", "jira_form_b") if saved_as is None else ("jira_empty_a", "jira_empty_b")
    carol = emu.add_user(f"carol-{saved_as!r}@example.com", display_name="Carol")
    team_a = emu.connection_json("oauth2", broker_secret=saved_as)
    team_b = emu.connection_json(
        "oauth2", broker_secret=saved_as, refresh_token=emu.issue_grant(emu.default_app.client_id, user=carol)["refresh_token"]
    )
    put_connection(a_id, team_a)
    put_connection(b_id, team_b)
    a, b = settings_of(a_id, team_a), settings_of(b_id, team_b)
    assert a.broker_secret is None and b.broker_secret is None and a.client_secret == b.client_secret

    refused = [
        broker.post(*broker_protocol.signed_request(secret, b_id, min_valid=0)).status_code
        for secret in what_as_holders_can_sign_with(a)
    ]
    own = broker.post(*broker_protocol.signed_request(signing_secret(b_id), b_id, min_valid=0))

    assert refused == [403, 403, 403]
    assert own.status_code == 200, own.text
    assert display_name(emu, own.json()["access_token"]) == "Carol"
    # The broker wrote the key it verified into B's extra: B is bound from now on whatever rotates.
    assert connection_extra(b_id)["broker_secret"] == b.broker_key_material


def test_a_tasks_key_survives_the_rotations_of_a_connection_without_a_broker_secret(broker, jira_emulator):
    """The connection store rewrites the refresh token the key was derived from: it pins the key first."""
    put_connection("jira_form_rotating", jira_emulator.connection_json("oauth2", broker_secret=None))
    read_by_the_task = signing_secret("jira_form_rotating")

    for _ in range(3):
        forced = broker.post(*broker_protocol.signed_request(read_by_the_task, "jira_form_rotating", min_valid=0, force=True))
        assert forced.status_code == 200, forced.text
    extra = connection_extra("jira_form_rotating")
    assert extra["broker_secret"] and signing_secret("jira_form_rotating") == read_by_the_task


def test_a_connection_from_an_environment_variable_is_bound_to_itself(start_broker, jira_emulator):
    """Airflow cannot write it: its key is derived from its own refresh token on both sides."""
    emu = jira_emulator
    dave = emu.add_user("dave@example.com", display_name="Dave")
    team_a = emu.connection_json("oauth2", broker_secret=None)
    env_b = emu.connection_json(
        "oauth2", grant_store="variable", refresh_token=emu.issue_grant(emu.default_app.client_id, user=dave)["refresh_token"]
    )
    put_connection("jira_env_a", team_a)
    server = start_broker(AIRFLOW_CONN_JIRA_ENV_B=env_b)
    a = settings_of("jira_env_a", team_a)

    refused = [
        server.post(*broker_protocol.signed_request(secret, "jira_env_b", min_valid=0)).status_code
        for secret in what_as_holders_can_sign_with(a)
    ]
    own = server.post(*broker_protocol.signed_request(signing_secret("jira_env_b", env_b), "jira_env_b", min_valid=0))

    assert refused == [403, 403, 403]
    assert own.status_code == 200, own.text
    assert display_name(emu, own.json()["access_token"]) == "Dave"


def test_a_connection_with_nothing_of_its_own_is_served_to_nobody(broker, jira_emulator):
    """Its store holds the grant and its extra neither broker_secret nor refresh_token: only the
    app's client secret would be left, which every connection of the app holds."""
    from airflow_provider_jira_auth.auth.broker_client import BrokerTokenProvider
    from airflow_provider_jira_auth.client.errors import JiraConfigError

    data = json.loads(jira_emulator.connection_json("oauth2", grant_store="variable"))
    del data["extra"]["refresh_token"]
    put_connection("jira_keyless", json.dumps(data))
    settings = settings_of("jira_keyless", json.dumps(data))
    assert settings.broker_signing_secret == ""

    answer = broker.post(*broker_protocol.signed_request(settings.client_secret, "jira_keyless", min_valid=0))
    assert answer.status_code == 403
    with pytest.raises(JiraConfigError, match=r"\(extra\.broker_secret\).*consent step"):
        BrokerTokenProvider("jira_keyless", settings.broker_signing_secret, broker.url)
