"""A token store whose backend fails with an error of its own (not a Jira error): for the tests."""

from __future__ import annotations

from airflow_provider_jira_auth.auth.stores.base import TokenStore


class SealedVaultError(RuntimeError):
    pass


class SealedVaultStore(TokenStore):
    kind = "sealed vault"
    works_in_workers = True

    @classmethod
    def from_settings(cls, settings):
        raise SealedVaultError("the vault is sealed")

    def load(self):  # pragma: no cover - never built
        return None

    def save(self, new, previous):  # pragma: no cover
        pass

    def lock(self):  # pragma: no cover
        raise NotImplementedError
