"""The ``grant_store`` extra given as a class path: the store is imported, or the error names the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_jira_auth.client.errors import JiraConfigError
from airflow_provider_jira_auth.testing import JiraCloudEmulator

FILE_STORE = "airflow_provider_jira_auth.auth.stores.file.FileTokenStore"


def hook(conn_id: str):
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    return JiraCloudHook(conn_id)


def test_the_documented_file_store_class_path_refreshes_and_keeps_the_rotated_token_in_its_file(
    emu: JiraCloudEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "jira_by_class.json"
    configured = emu.connection_json("oauth2", grant_store=FILE_STORE, grant_file=str(token_file))
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_BY_CLASS", configured)
    seed = json.loads(configured)["extra"]["refresh_token"]

    me = hook("jira_by_class").request("GET", "myself")

    assert me["emailAddress"] == emu.default_user.email
    assert emu.stats.token_refreshes == 1
    stored = json.loads(token_file.read_text())
    assert stored["refresh_token"] not in ("", None, seed)
    assert str(token_file) in hook("jira_by_class").token_status()["grant_source"]


@pytest.mark.parametrize(
    ("class_path", "says"),
    [
        ("no_such_package.stores.VaultStore", "no_such_package"),
        ("airflow_provider_jira_auth.auth.stores.file.NoSuchStore", "NoSuchStore"),
        ("airflow_provider_jira_auth.auth.stores.file.json", "not a subclass"),
    ],
)
def test_a_bad_class_path_fails_naming_the_field_before_any_token_call(
    emu: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch, class_path: str, says: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_BAD_STORE", emu.connection_json("oauth2", grant_store=class_path))

    with pytest.raises(JiraConfigError) as raised:
        hook("jira_bad_store").request("GET", "myself")

    message = str(raised.value)
    assert "grant_store" in message and class_path in message and says in message
    assert "ModuleNotFoundError" not in message
    assert emu.requests == []


def test_a_store_class_without_a_from_settings_of_its_own_is_built_for_the_connection() -> None:
    from airflow_provider_jira_auth.auth.stores.memory import MemoryTokenStore
    from airflow_provider_jira_auth.hooks.token_provider import store_for
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    extra = {
        "auth_type": "oauth2",
        "client_id": "cid",
        "client_secret": "csecret-123",
        "refresh_token": "rt-seed-123",
        "grant_store": "airflow_provider_jira_auth.auth.stores.memory.MemoryTokenStore",
    }
    settings = JiraConnectionSettings.from_connection(
        "jira_own_store", host="https://acme.atlassian.net", login=None, password=None, extra=extra
    )

    store = store_for(settings)

    assert type(store) is MemoryTokenStore
    assert store.conn_id == "jira_own_store"
    assert store.describe() == "memory store of connection 'jira_own_store'"
