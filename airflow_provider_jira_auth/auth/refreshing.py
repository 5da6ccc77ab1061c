"""Token providers: where an access token comes from. :class:`RefreshingTokenProvider` keeps one
grant's :class:`TokenState` current through a :class:`TokenStore`, refreshing under the store's
lock with the refresh token it just read there (Atlassian: "Implementing OAuth 2.0 (3LO)", rotating refresh tokens; docs/token-rotation.md).
No Airflow imports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from airflow_provider_jira_auth.auth.stores.base import TokenStore
from airflow_provider_jira_auth.auth.token_endpoint import OAuthTokenClient
from airflow_provider_jira_auth.auth.token_state import DEFAULT_EXPIRY_MARGIN, TokenState, iso_utc

log = logging.getLogger(__name__)


@runtime_checkable
class TokenProvider(Protocol):
    """Where :class:`JiraOAuth2Auth` gets access tokens."""

    def get_token(self, min_valid: float) -> TokenState:
        """A state whose access token stays valid at least ``min_valid`` more seconds."""
        ...

    def force_refresh(self, rejected_access_token: str) -> TokenState:
        """After a 401: refresh unless the current state already holds another access token."""
        ...

    def refresh_now(self) -> TokenState:
        """Refresh whatever the access token's age (keeping an idle grant alive)."""
        ...

    def describe(self) -> str:
        """Where the tokens come from, for logs and ``repr`` (no secrets)."""
        ...


class RefreshingTokenProvider:
    """One connection's access tokens, refreshed through its :class:`TokenStore`.

    The fast path is one ``store.load()``. A refresh runs inside ``store.refreshing()``: under the
    store's lock it re-reads the state, refreshes only if that state still needs it (another
    process may have refreshed while this one waited: double-checked locking), and the store
    persists the rotated refresh token before anyone uses the new access token. The provider
    keeps no token between calls, so it can never refresh with a refresh token it did not just
    read from the store.

    :param store: where the connection's state lives.
    :param token_client: the app's token endpoint.
    :param margin: refresh when the access token has less than this many seconds left.
    :param clock: "now" in epoch seconds; by default the token client's.
    """

    def __init__(
        self,
        store: TokenStore,
        token_client: OAuthTokenClient,
        *,
        margin: float = DEFAULT_EXPIRY_MARGIN,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.token_client = token_client
        self.margin = margin
        self.clock: Callable[[], float] = clock or getattr(token_client, "clock", time.time)

    def __repr__(self) -> str:
        return f"RefreshingTokenProvider({self.describe()})"

    def describe(self) -> str:
        return f"OAuth 2.0 tokens refreshed through the {self.store.describe()}"

    def get_token(self, min_valid: float | None = None) -> TokenState:
        want = self.margin if min_valid is None else min_valid
        state = self.store.load()
        # A refresh marker means a refresh is under way or died midway; the locked path tells
        # which (see TokenStore.refreshing), so only an unmarked state takes the fast path.
        if state is not None and state.refresh_started_at is None and state.is_fresh(want, self.clock()):
            return state
        return self._refresh_if(lambda current: not current.is_fresh(want, self.clock()), "expiring", want)

    def force_refresh(self, rejected_access_token: str) -> TokenState:
        return self._refresh_if(
            lambda current: (
                current.access_token == rejected_access_token or not current.is_fresh(self.margin, self.clock())
            ),
            "refused by Jira",
            self.margin,
        )

    def refresh_now(self) -> TokenState:
        return self._refresh_if(lambda current: True, "asked to", 0.0)

    def _refresh_if(self, needed: Callable[[TokenState], bool], why: str, min_valid: float) -> TokenState:
        with self.store.refreshing() as refresh:
            if not needed(refresh.current):
                return refresh.stored  # another process refreshed while this one waited for the lock
            refresh.begin()
            state = refresh.commit(self.token_client.refresh(refresh.current))
        log.info(
            "Refreshed the OAuth 2.0 access token of connection %r (%s) through the %s; it expires at %s (%s)",
            self.store.conn_id,
            why,
            self.store.describe(),
            iso_utc(state.expires_at) or "unknown",
            "new refresh token saved" if state.refresh_token != refresh.current.refresh_token
            else "Atlassian kept the refresh token",
        )
        if not state.is_fresh(min_valid, self.clock()):
            log.warning(
                "Atlassian issued an access token for connection %r valid %.0f s, less than the %.0f s "
                "refresh margin: every request will refresh. Lower the margin.",
                self.store.conn_id,
                state.access_token_valid_for(self.clock()),
                min_valid,
            )
        return state
