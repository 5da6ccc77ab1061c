"""A token store in this process's memory: for tests, including users' own unit tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_jira_auth.auth.stores.base import TokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraTokenStoreConflictError


class MemoryTokenStore(TokenStore):
    """Keeps the token state in a Python object, serialized by a :class:`threading.Lock`.

    One process only: another process (an Airflow worker, the triggerer) has its own copy and
    would refresh with a refresh token this one already rotated. Never use it in production.

    :param conn_id: the connection whose token state this store keeps.
    :param initial: the starting state, e.g. a refresh token from a test grant; ``None`` for an
        empty store.
    """

    kind = "memory"

    def __init__(self, conn_id: str, initial: TokenState | None = None) -> None:
        super().__init__(conn_id)
        self._state = initial
        self._lock = threading.Lock()
        #: how often a state was saved; for tests
        self.saves = 0

    def __repr__(self) -> str:
        return f"MemoryTokenStore({self.conn_id!r})"

    def load(self) -> TokenState | None:
        return self._state

    def save(self, new: TokenState, previous: TokenState | None) -> None:
        stored = self._state
        if previous is not None and (
            stored is None or stored.refresh_token not in (previous.refresh_token, new.refresh_token)
        ):
            raise JiraTokenStoreConflictError(
                f"the {self.describe()} was changed outside its lock (it no longer holds the refresh token "
                "this update read); not overwriting it"
            )
        self._state = new
        self.saves += 1

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield
