"""``TokenStore.refreshing`` and ``save_with_retries`` with a scripted store: what is saved, against
what, how often a failing save is tried again, and what the logs and errors say."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy.exc

from airflow_provider_jira_auth.auth.stores.base import TokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraGrantRevokedError, JiraTokenStoreError

SECRET = "rt-secret-in-the-statement"


class ScriptedStore(TokenStore):
    """Keeps the state; records every save; fails the first ``failures`` saves with ``error``."""

    kind = "scripted"

    def __init__(self, state: TokenState, *, failures: int = 0, error: Exception | None = None) -> None:
        super().__init__("jira_oauth")
        self.state = state
        self.failures = failures
        self.error = error or OSError("disk full")
        self.saves: list[tuple[TokenState, TokenState | None]] = []

    def load(self) -> TokenState | None:
        return self.state

    def save(self, new: TokenState, previous: TokenState | None) -> None:
        self.saves.append((new, previous))
        if self.failures:
            self.failures -= 1
            raise self.error
        self.state = new

    @contextmanager
    def lock(self) -> Iterator[None]:
        yield


OLD = TokenState(refresh_token="rt-old", access_token="at-old", expires_at=time.time() + 10, lifetime=3600.0)
NEW = TokenState(refresh_token="rt-new", access_token="at-new", expires_at=time.time() + 3600, lifetime=3600.0)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr("airflow_provider_jira_auth.auth.stores.base.time.sleep", waited.append)
    return waited


def test_a_refresh_writes_its_marker_then_the_new_state_each_against_what_was_read() -> None:
    store = ScriptedStore(OLD)

    with store.refreshing() as refresh:
        refresh.begin()
        assert refresh.commit(NEW) == NEW

    (marker, marker_previous), (saved, saved_previous) = store.saves
    assert marker.refresh_token == "rt-old" and marker.refresh_started_at is not None
    assert abs(marker.refresh_started_at - time.time()) < 60
    assert marker_previous == OLD
    assert (saved, saved_previous) == (NEW, OLD)  # compare-and-swap against the state read


def test_a_definite_refusal_clears_the_marker_against_what_was_read() -> None:
    store = ScriptedStore(OLD)

    with pytest.raises(JiraGrantRevokedError), store.refreshing() as refresh:
        refresh.begin()
        raise JiraGrantRevokedError("revoked")

    cleared, previous = store.saves[-1]
    assert cleared.refresh_started_at is None and previous == OLD


def test_a_refresh_that_died_midway_is_redone_from_a_state_without_its_access_token(caplog: pytest.LogCaptureFixture) -> None:
    marked = OLD.with_changes(refresh_started_at=time.time() - 42)
    store = ScriptedStore(marked)
    seen: list[TokenState] = []

    with caplog.at_level(logging.WARNING, logger="airflow_provider_jira_auth"), store.refreshing() as refresh:
        seen.append(refresh.current)

    (view,) = seen
    assert (view.access_token, view.expires_at, view.refresh_started_at) == (None, None, None)
    assert view.refresh_token == "rt-old"
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "connection 'jira_oauth'" in warning and "started 42 s ago" in warning


def test_a_failed_marker_write_sends_no_refresh_and_says_why_without_parameters() -> None:
    error = sqlalchemy.exc.OperationalError("UPDATE connection SET extra=%(x)s", {"x": SECRET}, OSError("server closed"))
    store = ScriptedStore(OLD, failures=1, error=error)
    sent: list[str] = []

    with pytest.raises(JiraTokenStoreError) as caught, store.refreshing() as refresh:
        refresh.begin()
        sent.append("refresh")

    assert sent == []
    assert str(caught.value) == (
        "could not write to the scripted store of connection 'jira_oauth' "
        "(OperationalError (builtins.OSError: server closed)); no refresh was sent"
    )


def test_a_failing_save_of_the_rotated_token_is_tried_four_times_with_doubling_waits(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    store = ScriptedStore(OLD, failures=99)

    with caplog.at_level(logging.WARNING, logger="airflow_provider_jira_auth"), pytest.raises(JiraTokenStoreError) as caught:
        store.save_with_retries(NEW, OLD)

    assert store.saves == [(NEW, OLD)] * 4
    assert sleeps == pytest.approx([0.2, 0.4, 0.8])
    assert str(caught.value) == (
        "could not save the rotated refresh token to the scripted store of connection 'jira_oauth' after 4 "
        "attempts (OSError: disk full); the previous one stays usable for about 10 minutes"
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "scripted store of connection 'jira_oauth'" in warnings[0] and "(OSError)" in warnings[0]
    assert "0.2s" in warnings[0] and "0.8s" in warnings[2]
    # The loud one names the connection, the store, the attempts, the cause and the deadline.
    (critical,) = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    for part in ("connection 'jira_oauth'", "the scripted store of", "after 4 attempts (OSError)", "about 10 minutes"):
        assert part in critical


def test_a_save_that_fails_once_is_saved_on_the_next_attempt(sleeps: list[float]) -> None:
    store = ScriptedStore(OLD, failures=1)

    store.save_with_retries(NEW, OLD)

    assert store.state == NEW
    assert store.saves == [(NEW, OLD), (NEW, OLD)]
    assert sleeps == pytest.approx([0.2])


def test_the_deprecated_update_still_refreshes_through_the_same_steps() -> None:
    store = ScriptedStore(OLD)

    def refresher(current: TokenState, begin) -> TokenState:  # type: ignore[no-untyped-def]
        begin()
        return NEW

    with pytest.warns(DeprecationWarning, match=r"store\.refreshing\(\)"):
        assert store.update(refresher) == NEW
    with pytest.warns(DeprecationWarning):
        assert store.update(lambda current, begin: None) == NEW

    (marker, _), (saved, previous) = store.saves
    assert marker.refresh_started_at is not None and (saved, previous) == (NEW, OLD)


def test_a_store_that_overrides_update_is_told_to_override_refreshing() -> None:
    # Refused at class definition: refreshes would otherwise skip the override's own locking.
    with pytest.raises(TypeError, match=r"OwnUpdate overrides TokenStore\.update.*override refreshing\(\)"):

        class OwnUpdate(ScriptedStore):
            def update(self, refresher):  # type: ignore[no-untyped-def]
                return super().update(refresher)

    class OwnBoth(ScriptedStore):  # a store with its own refreshing() may keep its update()
        def update(self, refresher):  # type: ignore[no-untyped-def]
            return super().update(refresher)

        @contextmanager
        def refreshing(self):  # type: ignore[no-untyped-def]
            with super().refreshing() as refresh:
                yield refresh

    assert issubclass(OwnBoth, ScriptedStore)
