"""A request signed for one connection cannot obtain another connection's tokens, even of one OAuth app.

Two connections of one app (team A, team B; different users' grants) share the client secret.
Each holds its own ``broker_secret``, which the consent step writes: a request for B signed with
what A's holders know is refused, and B's own holders still get B's token. Against a real broker
process over HTTP.
"""

from __future__ import annotations

import json

import requests

from airflow_provider_jira_auth.auth import broker_protocol
from tests.db_connections import put_connection


def settings_of(conn_json: str):
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    data = json.loads(conn_json)
    return JiraConnectionSettings.from_connection(
        "x", host=data["host"], login=None, password=None, extra=data["extra"]
    )


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
    a, b = settings_of(team_a), settings_of(team_b)
    assert a.client_secret == b.client_secret  # one OAuth app

    forged = broker.post(*broker_protocol.signed_request(a.broker_signing_secret, "jira_team_b", min_valid=0))
    app_only = broker.post(*broker_protocol.signed_request(b.client_secret, "jira_team_b", min_valid=0))
    own = broker.post(*broker_protocol.signed_request(b.broker_signing_secret, "jira_team_b", min_valid=0))

    assert forged.status_code == 403 and app_only.status_code == 403
    assert own.status_code == 200, own.text
    me = requests.get(
        f"{emu.api_url}/ex/jira/{emu.default_site.cloud_id}/rest/api/3/myself",
        headers={"Authorization": f"Bearer {own.json()['access_token']}"},
        timeout=30,
    ).json()
    assert me["displayName"] == "Bob"


def test_a_connection_without_its_own_secret_still_works_with_the_apps(broker, jira_emulator):
    legacy = jira_emulator.connection_json("oauth2")
    put_connection("jira_legacy_signing", legacy)
    settings = settings_of(legacy)
    assert settings.broker_secret is None
    answer = broker.post(*broker_protocol.signed_request(settings.client_secret, "jira_legacy_signing", min_valid=0))
    assert answer.status_code == 200, answer.text
