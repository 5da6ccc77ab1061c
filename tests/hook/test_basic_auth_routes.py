"""Basic auth through the hook, both kinds of API token, against the emulator over real HTTP."""

from __future__ import annotations

import json

from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook


def connect(monkeypatch, conn_json: str) -> JiraCloudHook:
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_ROUTE", conn_json)
    return JiraCloudHook("jira_route")


def test_a_classic_token_calls_the_site_url(jira_emulator, monkeypatch):
    hook = connect(monkeypatch, jira_emulator.connection_json("basic"))
    assert hook.request("GET", "myself")["emailAddress"] == jira_emulator.default_user.email
    assert [(r.via, r.path) for r in jira_emulator.requests] == [("site", "/rest/api/3/myself")]


def test_a_scoped_token_flag_looks_up_the_cloud_id_and_calls_the_gateway(jira_emulator, monkeypatch):
    emu = jira_emulator
    conn = json.loads(emu.connection_json("scoped"))
    conn["extra"] = {"scoped_credential": True, "api_url": emu.api_url}  # no cloud_id: looked up
    hook = connect(monkeypatch, json.dumps(conn))

    assert hook.request("GET", "myself")["emailAddress"] == emu.default_scoped_user.email
    assert [(r.via, r.path) for r in emu.requests] == [
        ("site", "/_edge/tenant_info"),
        ("gateway", f"/ex/jira/{emu.cloud_id}/rest/api/3/myself"),
    ]


def test_a_cloud_id_in_the_connection_skips_the_lookup(jira_emulator, monkeypatch):
    hook = connect(monkeypatch, jira_emulator.connection_json("scoped"))
    hook.request("GET", "myself")
    assert [r.via for r in jira_emulator.requests] == ["gateway"]
