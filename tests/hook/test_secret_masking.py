"""The hook registers every secret it reads or receives with Airflow's log masker.

Airflow masks a connection's password and its extra as a whole by itself; what the hook derives
(the Basic ``Authorization`` value) or receives later (3LO access and refresh tokens) only Airflow
can hide from task logs if the hook tells it. Each value here is fresh, so no other test of the
session can have registered it already.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook


def logged(text: str) -> str:
    """``text`` as Airflow's masker lets it into a log."""
    from airflow_provider_jira_auth._compat import redact

    return redact(text)


def test_the_basic_authorization_header_is_masked(monkeypatch) -> None:
    email, token = f"bot-{secrets.token_hex(4)}@example.com", f"ATATT{secrets.token_hex(16)}"
    conn = {"conn_type": "jira_cloud", "host": "https://example.atlassian.net", "login": email, "password": token}
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_MASKED", json.dumps(conn))
    header_value = base64.b64encode(f"{email}:{token}".encode()).decode()

    JiraCloudHook("jira_masked").get_conn()

    line = logged(f"sending Basic {header_value} for {token}")
    assert header_value not in line and token not in line and "***" in line


def test_3lo_tokens_are_masked_as_they_arrive(jira_emulator, monkeypatch, tmp_path: Path) -> None:
    emu = jira_emulator
    token_file = tmp_path / "tokens.json"
    grant = emu.issue_grant(emu.default_app.client_id)
    monkeypatch.setenv(
        "AIRFLOW_CONN_JIRA_MASKED_3LO",
        emu.connection_json("oauth2", refresh_token=grant["refresh_token"], grant_store="file", grant_file=str(token_file)),
    )
    hook = JiraCloudHook("jira_masked_3lo")

    hook.request("GET", "myself")

    stored = json.loads(token_file.read_text())
    rotated, access = stored["refresh_token"], stored["access_token"]
    assert rotated != grant["refresh_token"]  # both arrived after the connection was read
    line = logged(f"rotated to {rotated}, now calling with {access}")
    assert rotated not in line and access not in line
