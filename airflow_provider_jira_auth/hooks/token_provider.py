"""Which token store a 3LO connection uses, and how this process reaches it.

Processes that may use Airflow's ORM (api-server, scheduler, CLI, ``dag.test()``) refresh
directly through the store. Task and trigger processes under a real executor cannot: they ask
the token broker on the api-server (``plugins/token_broker.py``), unless the store declares
that it works from workers itself.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import TYPE_CHECKING

from airflow_provider_jira_auth.client.errors import JiraConfigError

if TYPE_CHECKING:
    from airflow_provider_jira_auth.auth.oauth2 import RefreshingTokenProvider, TokenProvider
    from airflow_provider_jira_auth.auth.stores.base import TokenStore
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

log = logging.getLogger(__name__)

_announced: set[tuple[str, str]] = set()

#: where the provider's api-server plugin mounts the token broker
BROKER_URL_PREFIX = "/jira-auth"
BROKER_TIMEOUT = 300.0


def store_for(settings: JiraConnectionSettings) -> TokenStore:
    """The store named by the connection's ``grant_store`` extra (default: the connection).

    Built-in stores key the state by the grant (``settings.grant_id``), so every connection that
    holds one grant, including the copy Airflow's Test button makes, shares one live state.
    """
    from airflow_provider_jira_auth.auth.stores.base import TokenStore

    name = (settings.grant_store or "connection").strip()
    if name == "connection":
        from airflow_provider_jira_auth.auth.stores.airflow_db import ConnectionTokenStore

        return ConnectionTokenStore(settings.conn_id, grant_id=settings.grant_id)
    if name == "variable":
        from airflow_provider_jira_auth.auth.stores.airflow_db import VariableTokenStore

        return VariableTokenStore(settings.conn_id, seed_refresh_token=settings.refresh_token, grant_id=settings.grant_id)
    if name == "file":
        from airflow_provider_jira_auth.auth.stores.file import FileTokenStore

        return FileTokenStore.from_settings(settings)
    if "." not in name:
        raise JiraConfigError(
            "extra.grant_store",
            f"{name!r} is not a store; use 'connection', 'variable', 'file' or a class path like 'my_pkg.stores.VaultStore'",
        )
    try:
        store_class = import_string(name)
    except ImportError as exc:
        raise JiraConfigError("extra.grant_store", f"cannot import {name!r}: {exc}") from None
    if not (isinstance(store_class, type) and issubclass(store_class, TokenStore)):
        raise JiraConfigError("extra.grant_store", f"{name!r} is not a subclass of {TokenStore.__module__}.TokenStore")
    return store_class.from_settings(settings)


def import_string(dotted_path: str) -> object:
    """The attribute ``dotted_path`` names (``package.module.Name``), imported with importlib.

    :raises ImportError: saying whether the module or the attribute is missing.
    """
    module_path, _, attribute = dotted_path.rpartition(".")
    try:
        module = importlib.import_module(module_path)
    except (ImportError, TypeError, ValueError) as exc:  # TypeError, ValueError: an empty or relative name
        raise ImportError(f"module {module_path!r} cannot be imported ({exc})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"module {module_path!r} has no attribute {attribute!r}") from None


def direct_token_provider(settings: JiraConnectionSettings, *, margin: float | None = None) -> RefreshingTokenProvider:
    """Refresh through the store from this process (it must be allowed to write the store)."""
    from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient, RefreshingTokenProvider

    assert settings.client_id and settings.client_secret
    client = OAuthTokenClient(
        settings.auth_url,
        settings.client_id,
        settings.client_secret,
        timeout=settings.timeout,
        verify=settings.verify,
        conn_id=settings.conn_id,
    )
    kwargs = {} if margin is None else {"margin": margin}
    return RefreshingTokenProvider(store_for(settings), client, **kwargs)


def in_worker_process() -> bool:
    """True in a task or trigger process whose ORM access Airflow blocks.

    ``dag.test()`` runs tasks in-process with an in-process supervisor and a working ORM: there
    the store is used directly.
    """
    if os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "client":  # the triggerer's runner
        return True
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return False
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return comms is not None and type(comms).__name__ != "InProcessSupervisorComms"


def token_provider_for(settings: JiraConnectionSettings, *, margin: float | None = None) -> TokenProvider:
    """The provider for this process: the store directly, or the api-server's token broker."""
    store = store_for(settings)
    if in_worker_process() and not store.works_in_workers:
        from airflow_provider_jira_auth.auth.broker_client import BrokerTokenProvider

        provider: TokenProvider = BrokerTokenProvider(
            settings.conn_id,
            settings.broker_signing_secret,
            broker_url(settings),
            store_description=store.describe(),
            # The broker may wait for another refresh (the store's lock, up to 150 s) and retry
            # Atlassian (up to 2 min): a read timeout shorter than that would only abandon it.
            timeout=max(settings.timeout, BROKER_TIMEOUT),
        )
    else:
        provider = direct_token_provider(settings, margin=margin)
    key = (settings.conn_id, provider.describe())
    if key not in _announced:
        _announced.add(key)
        log.info("Jira connection %r: %s", settings.conn_id, provider.describe())
    return provider


def broker_url(settings: JiraConnectionSettings) -> str:
    """``broker_url`` from the extra, else the api-server this worker already talks to.

    The broker answers with access tokens: like every other URL of a connection it must be
    ``https://`` unless it is on a loopback host.
    """
    from airflow_provider_jira_auth.client.urls import is_loopback_host, normalize_base_url
    from airflow_provider_jira_auth.settings import extra_value

    configured = extra_value(settings.extra, "broker_url")
    if configured:
        return normalize_base_url(str(configured), "extra.broker_url")
    from airflow.configuration import conf

    base = (conf.get("core", "execution_api_server_url", fallback=None) or "").rstrip("/")
    if base.endswith("/execution"):
        base = base[: -len("/execution")]
    base = base or (conf.get("api", "base_url", fallback=None) or "http://localhost:8080").rstrip("/")
    url = base + BROKER_URL_PREFIX
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        key = ("broker-http", url)
        if key not in _announced:
            _announced.add(key)
            log.warning(
                "Jira connection %r: the token broker at %s is reached over plain http, so access tokens cross "
                "the network in clear text: serve the api-server over https, or set broker_url to an https URL",
                settings.conn_id, url,
            )
    return url
