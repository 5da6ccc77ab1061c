"""``RefreshingTokenProvider`` with a scripted token endpoint: the fast path, the margin it
defaults to, and what it tells the log about each refresh."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta

import pytest

from airflow_provider_jira_auth.auth.oauth2 import RefreshingTokenProvider
from airflow_provider_jira_auth.auth.stores.memory import MemoryTokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState


class ScriptedTokenClient:
    def __init__(self, *, expires_in: float = 3600.0, rotate: bool = True, report_lifetime: bool = True) -> None:
        self.expires_in = expires_in
        self.rotate = rotate
        self.report_lifetime = report_lifetime
        self.refreshed: list[TokenState] = []

    def refresh(self, state: TokenState) -> TokenState:
        self.refreshed.append(state)
        n = len(self.refreshed)
        return TokenState(
            refresh_token=f"rt-{n}" if self.rotate else state.refresh_token,
            access_token=f"at-{n}",
            expires_at=time.time() + self.expires_in,
            lifetime=self.expires_in if self.report_lifetime else None,
        )


class CountingStore(MemoryTokenStore):
    updates = 0

    def refreshing(self):  # type: ignore[no-untyped-def]
        self.updates += 1
        return super().refreshing()


def _provider(valid_for: float, *, margin: float = 300.0, **client: object) -> tuple[RefreshingTokenProvider, CountingStore, ScriptedTokenClient]:
    store = CountingStore("jira_oauth", TokenState(refresh_token="rt-0", access_token="at-0", expires_at=time.time() + valid_for))
    token_client = ScriptedTokenClient(**client)  # type: ignore[arg-type]
    return RefreshingTokenProvider(store, token_client, margin=margin), store, token_client  # type: ignore[arg-type]


def test_a_fresh_token_is_served_from_one_load_without_the_lock() -> None:
    provider, store, token_client = _provider(3600)

    assert provider.get_token(60).access_token == "at-0"
    assert store.updates == 0 and token_client.refreshed == []


def test_without_a_minimum_the_providers_own_margin_applies() -> None:
    provider, _, token_client = _provider(400, margin=600)

    assert provider.get_token(60).access_token == "at-0"  # 400 s left, 60 asked
    assert provider.get_token().access_token == "at-1"  # 400 s left, 600 by default
    assert len(token_client.refreshed) == 1


def test_each_refresh_is_logged_with_its_reason_expiry_and_whether_the_token_rotated(caplog: pytest.LogCaptureFixture) -> None:
    provider, _, _ = _provider(10)
    kept, _, _ = _provider(3600, rotate=False)

    with caplog.at_level(logging.INFO, logger="airflow_provider_jira_auth"):
        provider.get_token(60)
        provider.force_refresh("at-1")
        kept.refresh_now()

    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(messages) == 3
    assert messages[0].startswith("Refreshed the OAuth 2.0 access token of connection 'jira_oauth' (expiring) through the ")
    assert messages[0].endswith("(new refresh token saved)")
    assert "(refused by Jira)" in messages[1]
    assert "(asked to)" in messages[2] and messages[2].endswith("(Atlassian kept the refresh token)")
    expires_at = datetime.fromisoformat(re.search(r"it expires at (\S+?)[ ;]", messages[0])[1])
    assert 0 < expires_at.timestamp() - time.time() <= 3600  # the new token's expiry, in UTC
    assert expires_at.utcoffset() == timedelta(0)


def test_a_token_shorter_than_the_margin_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    # Without a known lifetime the margin is not scaled down to the token's.
    provider, _, _ = _provider(10, expires_in=120.0, report_lifetime=False)
    roomy, _, _ = _provider(10, report_lifetime=False)

    with caplog.at_level(logging.WARNING, logger="airflow_provider_jira_auth"):
        roomy.get_token(300)
        assert not [r for r in caplog.records if r.levelno == logging.WARNING]
        provider.get_token(300)

    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("Atlassian issued an access token for connection 'jira_oauth' valid 1")
    assert warning.endswith("s, less than the 300 s refresh margin: every request will refresh. Lower the margin.")
