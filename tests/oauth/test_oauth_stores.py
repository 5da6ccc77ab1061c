"""The memory and file token stores: what they keep, how they write, how they lock."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from oauth_support import CONN_ID

from airflow_provider_jira_auth.auth.stores.file import FileTokenStore
from airflow_provider_jira_auth.auth.stores.memory import MemoryTokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraTokenStoreError

STATE = TokenState(
    refresh_token="rt-secret-1",
    access_token="at-secret-1",
    expires_at=2_000_000_000.0,
    scopes=("read:jira-work", "offline_access"),
    rotated_at=1_900_000_000.0,
)


def test_file_store_round_trips_a_state(tmp_path: Path) -> None:
    store = FileTokenStore(CONN_ID, tmp_path / "t.json")
    store.seed(STATE)

    assert FileTokenStore(CONN_ID, tmp_path / "t.json").load() == STATE


def test_file_store_without_a_file_holds_nothing(tmp_path: Path) -> None:
    assert FileTokenStore(CONN_ID, tmp_path / "missing.json").load() is None


def test_file_store_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    store = FileTokenStore(CONN_ID, tmp_path / "private" / "t.json")
    store.seed(STATE)

    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.lock_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700


def test_file_store_replaces_the_file_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = FileTokenStore(CONN_ID, tmp_path / "t.json")
    store.seed(STATE)

    with open(store.path, encoding="utf-8") as old:
        with store.refreshing() as refresh:
            refresh.commit(refresh.current.with_changes(refresh_token="rt-secret-2"))

        # A new file was renamed over the old one; the old one was never rewritten in place.
        assert os.fstat(old.fileno()).st_nlink == 0
        assert "rt-secret-1" in old.read()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json", "t.json.lock"]
    assert store.load().refresh_token == "rt-secret-2"


def test_file_store_with_a_corrupt_file_says_which_file_without_its_content(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"refresh_token": "rt-secret-1", ')

    with pytest.raises(JiraTokenStoreError, match="is not a valid token state") as caught:
        FileTokenStore(CONN_ID, path).load()

    assert str(path) in str(caught.value) and "rt-secret-1" not in str(caught.value)


def test_file_store_lock_excludes_a_second_store_on_the_same_file(tmp_path: Path, monkeypatch) -> None:
    first = FileTokenStore(CONN_ID, tmp_path / "t.json")
    second = FileTokenStore(CONN_ID, tmp_path / "t.json")
    # A store that finds the lock taken gives up at once instead of waiting for it.
    monkeypatch.setattr("airflow_provider_jira_auth.auth.stores.file.LOCK_TIMEOUT", 0.0)

    with first.lock():
        with pytest.raises(JiraTokenStoreError, match="another process holds it"), second.lock():
            pass
    with second.lock():  # free once the first store let go
        pass


def test_memory_store_refreshing_persists_what_is_committed() -> None:
    store = MemoryTokenStore(CONN_ID, STATE)

    with store.refreshing() as refresh:
        new = refresh.commit(refresh.current.with_changes(access_token="at-secret-2"))

    assert store.load() == new and new.access_token == "at-secret-2"


def test_memory_store_refreshing_keeps_the_state_when_nothing_is_committed() -> None:
    store = MemoryTokenStore(CONN_ID, STATE)

    with store.refreshing() as refresh:
        assert refresh.stored == STATE
    assert store.load() == STATE


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_save_with_previous_refuses_to_overwrite_a_state_written_outside_the_lock(kind: str, tmp_path: Path) -> None:
    store = MemoryTokenStore(CONN_ID, STATE) if kind == "memory" else FileTokenStore(CONN_ID, tmp_path / "t.json")
    if isinstance(store, FileTokenStore):
        store.seed(STATE)
    stale = STATE.with_changes(refresh_token="rt-secret-0")

    with pytest.raises(JiraTokenStoreError, match="changed outside its lock") as caught:
        store.save(STATE.with_changes(refresh_token="rt-secret-9"), stale)

    assert store.load() == STATE and "rt-secret" not in str(caught.value)


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_save_with_previous_replaces_the_state_that_holds_it(kind: str, tmp_path: Path) -> None:
    store = MemoryTokenStore(CONN_ID, STATE) if kind == "memory" else FileTokenStore(CONN_ID, tmp_path / "t.json")
    if isinstance(store, FileTokenStore):
        store.seed(STATE)
    new = STATE.with_changes(refresh_token="rt-secret-2")

    store.save(new, STATE)

    assert store.load() == new


def test_store_reprs_hold_no_token(tmp_path: Path) -> None:
    file_store = FileTokenStore(CONN_ID, tmp_path / "t.json")
    file_store.seed(STATE)

    for text in (repr(file_store), file_store.describe(), repr(MemoryTokenStore(CONN_ID, STATE))):
        assert "secret" not in text


def test_file_store_starts_from_the_seed_refresh_token_until_the_first_save(tmp_path: Path) -> None:
    store = FileTokenStore(CONN_ID, tmp_path / "t.json", seed_refresh_token="rt-secret-seed")

    assert store.load() == TokenState(refresh_token="rt-secret-seed")
    with store.refreshing() as refresh:
        refresh.commit(refresh.current.with_changes(refresh_token="rt-secret-2", access_token="at-secret-2"))
    assert store.load().refresh_token == "rt-secret-2"


def test_file_store_from_settings_reads_grant_file_or_defaults_under_airflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    extra = {"auth_type": "oauth2", "client_id": "c", "client_secret": "s", "refresh_token": "rt-secret-seed"}

    def settings(**more: str) -> JiraConnectionSettings:
        return JiraConnectionSettings.from_connection(
            CONN_ID, host="https://x.atlassian.net", login=None, password=None, extra={**extra, **more}
        )

    chosen = FileTokenStore.from_settings(settings(grant_file=str(tmp_path / "mine.json")))
    default = FileTokenStore.from_settings(settings())

    assert chosen.path == tmp_path / "mine.json"
    # Named after the grant, so every connection holding it (and Airflow's Test copy) shares it.
    assert default.path == tmp_path / "jira_auth_tokens" / f"grant-{settings().grant_id}.json"
    assert default.load() == TokenState(refresh_token="rt-secret-seed")
