"""What the Jira connections page writes for each kind of connection (no server, no browser).

The browser tests (tests/ui) drive the page end to end; these pin the cells and buttons of cases
that need another Airflow configuration there (Test disabled, a user without connection rights).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.auth.token_state import token_health
from airflow_provider_jira_auth.plugins.consent_page import _health_cells, _page


def conn(conn_id: str = "jira_x", auth_type: str = "oauth2"):
    return SimpleNamespace(conn_id=conn_id, host="https://acme.atlassian.net", extra_dejson={"auth_type": auth_type})


def oauth_health(state: TokenState | None) -> dict:
    health = {"auth_type": "oauth2", "grant_store": "connection 'jira_x' in the metadata database"}
    if state is None:
        return {**health, "refresh_token": "none yet: run airflow-jira-auth authorize"}
    return {**health, **token_health(state)}


def test_a_refresh_token_stored_by_hand_has_an_unknown_age_not_a_dash():
    health = token_health(TokenState(refresh_token="rt"))
    assert health["refresh_origin"] == "stored by hand: its age is unknown until the first refresh"
    assert health["refresh_rotated_at"] is None and health["days_until_inactivity_expiry"] is None

    auth, store, token, expiry = _health_cells(conn(), oauth_health(TokenState(refresh_token="rt")))
    assert (auth, token, expiry) == (
        "OAuth 2.0 (3LO)",
        "held, stored by hand: its age is unknown until the first refresh",
        "unknown (at most 90 days)",
    )
    assert store == "connection 'jira_x' in the metadata database"


def test_a_refresh_token_the_provider_obtained_shows_when_and_the_days_left():
    issued = time.time() - 10 * 86400
    health = token_health(TokenState(refresh_token="rt", rotated_at=issued))
    assert health["refresh_origin"] == "obtained by the provider"
    _, _, token, expiry = _health_cells(conn(), oauth_health(TokenState(refresh_token="rt", rotated_at=issued)))
    assert token.startswith("obtained ") and token.endswith(" UTC")
    assert expiry == "80 days"


def test_basic_and_unconnected_and_broken_connections():
    assert _health_cells(conn(auth_type="basic"), {"auth_type": "basic"}) == ("API token", "-", "not used (API token)", "-")
    broken = {"problem": "Jira connection field 'extra.scoped_token': '***' is not a boolean; use true or false"}
    assert _health_cells(conn(auth_type="basic"), broken)[2] == broken["problem"]
    assert _health_cells(conn(), {"grant": "not connected yet"})[2:] == ("not connected yet", "-")


def row(conn_id: str, health: dict, *, editable: bool = True, testable: bool = True) -> dict:
    return {"conn": conn(conn_id), "health": health, "editable": editable, "testable": testable}


def test_buttons_follow_rights_and_the_test_connection_setting():
    held = oauth_health(TokenState(refresh_token="rt"))
    html = _page([row("jira_a", held), row("jira_b", {"grant": "not connected yet"})], "cb", "", "", csrf="c")
    assert 'action="connect/jira_a/test"' in html and 'action="connect/jira_a/start"' in html
    assert ">Reconnect<" in html and ">Connect to Jira<" in html  # jira_a holds a token, jira_b not yet
    assert html.count('name="csrf" value="c"') == 4

    disabled = _page([row("jira_a", held)], "cb", "", "", csrf="c", test_enabled=False)
    assert "connect/jira_a/test" not in disabled and "Test is disabled" in disabled

    reader = _page([row("jira_a", held, editable=False, testable=False)], "cb", "", "", csrf="c")
    assert "<form" not in reader
    assert "Test needs connection rights" in reader and "Connect needs edit rights" in reader


def test_connection_ids_and_messages_are_escaped():
    html = _page([row("<b>x</b>", {"auth_type": "basic"})], "cb", "<i>ok</i>", "", csrf="c")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html and "&lt;i&gt;ok&lt;/i&gt;" in html
    assert 'action="connect/%3Cb%3Ex%3C%2Fb%3E/test"' in html
