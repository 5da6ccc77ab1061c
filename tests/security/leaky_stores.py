"""Token stores that fail with the connection's secrets in their error text (a careless custom store).

Named by ``grant_store`` in a connection's extra; the broker server imports them from here.
"""

from __future__ import annotations

from airflow_provider_jira_auth.auth.stores.memory import MemoryTokenStore
from airflow_provider_jira_auth.client.errors import JiraTokenStoreError


class _Leaky(MemoryTokenStore):
    error: type[Exception] = JiraTokenStoreError

    @classmethod
    def from_settings(cls, settings):
        store = cls(settings.conn_id)
        store.secrets = (settings.client_id, settings.client_secret, settings.refresh_token)
        return store

    def load(self):
        client_id, client_secret, refresh_token = self.secrets
        raise self.error(f"vault refused {client_id}:{client_secret} (refresh token {refresh_token})")


class LeakyStore(_Leaky):
    """Fails with a JiraTokenStoreError (the broker answers 409)."""


class CrashingStore(_Leaky):
    """Fails with an unexpected exception (the broker answers 500)."""

    error = RuntimeError
