"""Bad input meets a clear error at the first use of the connection, naming the field and the fix.

One table, run through JiraCloudHook against the emulator over real HTTP.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_jira_auth.client.errors import (
    JiraAuthenticationError,
    JiraConfigError,
    JiraGoneError,
    JiraResponseError,
    JiraValidationError,
)
from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook


def basic(emu, **changes):
    data = json.loads(emu.connection_json("basic"))
    extra = {**data.pop("extra"), **changes.pop("extra", {})}
    return json.dumps({**data, **changes, "extra": extra})


CASES = {
    # name: (connection(emu), emulator set-up, call, exception, words the message must hold)
    "missing host": (
        lambda emu: basic(emu, host=""), None, ("GET", "myself"), JiraConfigError, ["'Site URL' (host)", "https://your-site.atlassian.net"],
    ),
    "host that is not a URL": (
        lambda emu: basic(emu, host="not a url"), None, ("GET", "myself"), JiraConfigError, ["'Site URL' (host)"],
    ),
    "http to a non-loopback host": (
        lambda emu: basic(emu, host="http://acme.atlassian.net"), None, ("GET", "myself"), JiraConfigError, ["'Site URL' (host)", "https://"],
    ),
    "unknown auth_type": (
        lambda emu: basic(emu, extra={"auth_type": "token"}), None, ("GET", "myself"), JiraConfigError, ["'Auth type' (extra.auth_type)", "'basic'", "'oauth2'"],
    ),
    "basic without email": (
        lambda emu: basic(emu, login=""), None, ("GET", "myself"), JiraConfigError, ["'Email (basic auth)' (login)", "email"],
    ),
    "basic without token": (
        lambda emu: basic(emu, password=""), None, ("GET", "myself"), JiraConfigError, ["'API token (basic auth)' (password)", "API token"],
    ),
    "scoped token against the site URL": (
        lambda emu: basic(emu, login=emu.default_scoped_user.email, password=emu.default_scoped_user.api_token),
        None, ("GET", "myself"), JiraAuthenticationError, ["401", "scoped API token", "'Scoped API token' (extra scoped_credential)", "'Cloud ID'"],
    ),
    "an extra that is not JSON": (
        lambda emu: json.dumps({**json.loads(basic(emu)), "extra": '{"auth_type": "oauth2", client_id: 1}'}),
        None, ("GET", "myself"), JiraConfigError, ["'Extra' (extra)", "not valid JSON (line 1, column 25"],
    ),
    "a port that is not a number": (
        lambda emu: basic(emu, port="443x"), None, ("GET", "myself"), JiraConfigError, ["field 'port'", "'443x'", "AIRFLOW_CONN_JIRA_BAD", "leave it out"],
    ),
    "a broker URL in clear text over the network": (
        lambda emu: json.dumps({**json.loads(emu.connection_json("oauth2", broker_url="http://10.0.0.5:8080/jira-auth"))}),
        None, "broker_url", JiraConfigError, ["'Token broker URL' (extra.broker_url)", "https://"],
    ),
    "a broker URL that is not http(s)": (
        lambda emu: json.dumps({**json.loads(emu.connection_json("oauth2", broker_url="file:///etc/passwd"))}),
        None, "broker_url", JiraConfigError, ["'Token broker URL' (extra.broker_url)", "https://"],
    ),
    "bad JQL shows Jira's message": (
        lambda emu: basic(emu), None, ("POST", "search/jql", {"jql": "project = ENG AND nonsense ~~ x"}),
        JiraValidationError, ["400", "Error in the JQL Query"],
    ),
    "the removed /search endpoint": (
        lambda emu: basic(emu), None, ("GET", "search", None, {"jql": "project = ENG"}), JiraGoneError, ["410", "search/jql"],
    ),
    "a proxy's HTML page instead of JSON": (
        lambda emu: basic(emu),
        lambda emu: emu.fail_next("GET", r"/myself$", status=200, body="<html><body>Sign in to the proxy</body></html>"),
        ("GET", "myself"), JiraResponseError, ["non-JSON", "proxy", "host"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_clear_error(case, jira_emulator, monkeypatch):
    emu = jira_emulator
    connection, setup, call, error, words = CASES[case]
    conn_json = connection(emu)
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_BAD", conn_json)
    if setup:
        setup(emu)
    with pytest.raises(error) as caught:
        if call == "broker_url":  # what a task asks first: where its token broker is
            from airflow_provider_jira_auth.hooks.token_provider import broker_url

            broker_url(JiraCloudHook("jira_bad").settings)
        else:
            method, path, *rest = call
            body = rest[0] if rest else None
            params = rest[1] if len(rest) > 1 else None
            JiraCloudHook("jira_bad").request(method, path, json=body, params=params)

    message = str(caught.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"
    for secret in (emu.default_user.api_token, emu.default_scoped_user.api_token):
        assert secret not in message


def test_the_test_button_reports_the_problem_instead_of_raising(jira_emulator, monkeypatch):
    emu = jira_emulator
    monkeypatch.setenv(
        "AIRFLOW_CONN_JIRA_BAD",
        basic(emu, login=emu.default_scoped_user.email, password=emu.default_scoped_user.api_token),
    )
    ok, message = JiraCloudHook("jira_bad").test_connection()
    assert not ok and "'Cloud ID'" in message

    monkeypatch.setenv("AIRFLOW_CONN_JIRA_BAD", basic(emu))
    ok, message = JiraCloudHook("jira_bad").test_connection()
    assert ok and emu.url in message
