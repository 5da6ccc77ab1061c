"""The file store keeps to its token directory, whatever the connection id, and deletes only its own files.

Airflow accepts ``../../victim/settings`` as a connection id. The store used to build
``<token dir>/<conn_id>.json`` from it unchecked, read that path as a pre-0.2 token file, and
delete it after the first save: whoever may create a connection could make the process that
refreshes delete (or write) ``*.json`` files elsewhere. Now such an id is encoded into one file
name inside the token directory; a pre-0.2 file is read and deleted only when it is a regular
file in that directory recording this very connection id. Ordinary ids keep their file names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_jira_auth.auth.stores.file import FileTokenStore, default_path, token_directory, token_file_name
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraTokenStoreError
from airflow_provider_jira_auth.settings import JiraConnectionSettings
from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.db_connections import put_connection

ESCAPING_ID = "../../victim/settings"
PRECIOUS = '{"conn_id": "../../victim/settings", "refresh_token": "not-yours", "theme": "dark"}\n'


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$AIRFLOW_HOME`` for the token directory, with a victim file two levels above it."""
    airflow_home = tmp_path / "a" / "home"
    airflow_home.mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW_HOME", str(airflow_home))
    return airflow_home


def victim(home: Path) -> Path:
    """Where ``<token dir>/../../victim/settings.json`` lands: outside the token directory."""
    return (home / "jira_auth_tokens" / f"{ESCAPING_ID}.json").resolve()


def oauth_settings(conn_id: str, **extra: str) -> JiraConnectionSettings:
    base = {"auth_type": "oauth2", "client_id": "cid", "client_secret": "cs", "refresh_token": "rt-seed", "grant_store": "file"}
    return JiraConnectionSettings.from_connection(
        conn_id, host="https://acme.atlassian.net", login=None, password=None, extra={**base, **extra}
    )


def rotate(store: FileTokenStore) -> None:
    with store.refreshing() as refresh:
        refresh.commit(refresh.current.with_changes(refresh_token="rt-rotated", access_token="at-rotated"))


# -- the attack, as a person runs it ---------------------------------------------------------------


@pytest.mark.usefixtures("airflow_db")
def test_a_connection_id_climbing_out_of_the_token_directory_neither_reads_nor_deletes_the_file_it_names(
    jira_emulator: JiraCloudEmulator, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")  # this process refreshes itself
    target = victim(home)
    target.parent.mkdir(parents=True)
    target.write_text(PRECIOUS)
    put_connection(ESCAPING_ID, jira_emulator.connection_json("oauth2", grant_store="file"))

    me = JiraCloudHook(ESCAPING_ID).request("GET", "myself")  # refreshes, saves, used to delete

    assert me["emailAddress"] == jira_emulator.default_user.email
    assert jira_emulator.stats.token_refreshes == 1
    assert target.read_text() == PRECIOUS
    written = [p for p in (home / "jira_auth_tokens").iterdir() if p.suffix == ".json"]
    assert len(written) == 1 and written[0].name.startswith("grant-")
    assert json.loads(written[0].read_text())["conn_id"] == ESCAPING_ID


def test_without_a_grant_the_state_of_such_an_id_is_written_inside_the_token_directory(home: Path) -> None:
    settings_ = JiraConnectionSettings.from_connection(
        ESCAPING_ID, host="https://acme.atlassian.net", login=None, password=None,
        extra={"auth_type": "oauth2", "client_id": "cid", "client_secret": "cs", "grant_store": "file"},
    )
    target = victim(home)
    target.parent.mkdir(parents=True)
    target.write_text(PRECIOUS)
    store = FileTokenStore.from_settings(settings_)

    assert store.load() is None  # the file the id names is not read
    store.seed(TokenState(refresh_token="rt-consented"))

    assert store.path.parent == token_directory() and store.path.name == "%..%2F..%2Fvictim%2Fsettings.json"
    assert store.load() == TokenState(refresh_token="rt-consented")
    assert target.read_text() == PRECIOUS


# -- legacy files: only the store's own -----------------------------------------------------------


def write_legacy(conn_id: str, refresh_token: str = "rt-legacy", recorded: str | None = None) -> Path:
    path = token_directory() / f"{conn_id}.json"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps({"conn_id": recorded or conn_id, "refresh_token": refresh_token}))
    return path


def test_an_ordinary_ids_pre_0_2_file_is_still_read_then_deleted_after_the_first_save(home: Path) -> None:
    legacy = write_legacy("jira_prod")
    store = FileTokenStore.from_settings(oauth_settings("jira_prod"))

    assert store.legacy_path == legacy
    assert store.load().refresh_token == "rt-legacy"  # the live token, not the retired seed
    rotate(store)

    assert not legacy.exists()
    assert store.path.name.startswith("grant-") and store.load().refresh_token == "rt-rotated"


def test_a_legacy_named_file_holding_another_connections_state_is_neither_read_nor_deleted(home: Path) -> None:
    legacy = write_legacy("jira_prod", recorded="jira_other")
    store = FileTokenStore.from_settings(oauth_settings("jira_prod"))

    assert store.load() == TokenState(refresh_token="rt-seed")
    rotate(store)

    assert legacy.exists() and json.loads(legacy.read_text())["conn_id"] == "jira_other"


def test_a_link_at_the_legacy_name_is_neither_followed_nor_deleted(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"conn_id": "jira_prod", "refresh_token": "rt-planted"}))
    link = token_directory() / "jira_prod.json"
    link.parent.mkdir(mode=0o700, parents=True)
    link.symlink_to(elsewhere)
    store = FileTokenStore.from_settings(oauth_settings("jira_prod"))

    assert store.load() == TokenState(refresh_token="rt-seed")
    rotate(store)

    assert link.is_symlink() and elsewhere.exists()


def test_a_legacy_path_outside_the_stores_directory_is_never_deleted(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "jira_prod.json"
    outside.parent.mkdir()
    outside.write_text(json.dumps({"conn_id": "jira_prod", "refresh_token": "rt-outside"}))
    store = FileTokenStore("jira_prod", tmp_path / "tokens" / "grant-x.json", seed_refresh_token="rt-seed", legacy_path=outside)

    assert store.load() == TokenState(refresh_token="rt-seed")
    rotate(store)

    assert outside.exists()


def test_a_link_planted_at_the_lock_file_is_refused_naming_it_and_creates_nothing(tmp_path: Path) -> None:
    store = FileTokenStore("jira_prod", tmp_path / "tokens" / "grant-x.json", seed_refresh_token="rt-seed")
    store.path.parent.mkdir()
    created_elsewhere = tmp_path / "created-by-the-lock"
    store.lock_path.symlink_to(created_elsewhere)

    with pytest.raises(JiraTokenStoreError, match="lock file .*grant-x.json.lock.*symbolic link"):
        rotate(store)

    assert not created_elsewhere.exists() and not store.path.exists()


# -- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "conn_id", ["jira_cloud_default", "jira-prod.eu", "team:jira#1", "(jira)!", "jira\\ops", "naïve", "grant-0a1b2c"]
)
def test_ordinary_ids_keep_their_file_names(conn_id: str, home: Path) -> None:
    assert default_path(conn_id) == home / "jira_auth_tokens" / f"{conn_id}.json"


@pytest.mark.parametrize(
    ("conn_id", "name"),
    [
        ("../../victim/settings", "%..%2F..%2Fvictim%2Fsettings.json"),
        ("team/jira", "%team%2Fjira.json"),
        ("..", "%...json"),
        (".hidden", "%.hidden.json"),
        ("%2E%2E", "%%252E%252E.json"),
    ],
)
def test_ids_that_are_no_plain_file_name_are_encoded_into_one(conn_id: str, name: str, home: Path) -> None:
    assert default_path(conn_id) == home / "jira_auth_tokens" / name


ANY_ID = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300) | st.lists(
    st.sampled_from(["..", ".", "/", "%", "%2F", "a", "\\", "é"]), min_size=1, max_size=12
).map("".join)


@settings(max_examples=500, deadline=None)
@given(conn_id=ANY_ID, other=ANY_ID)
def test_every_id_maps_to_one_file_directly_in_the_token_directory_and_no_two_ids_share_one(conn_id, other) -> None:
    name = token_file_name(conn_id)

    assert "/" not in name and "\0" not in name and not name.startswith(".")
    assert name.endswith(".json") and len(name.encode()) <= 241
    assert os.path.normpath(os.path.join("/tokens", name)) == f"/tokens/{name}"
    if other != conn_id:
        assert token_file_name(other) != name
