"""Where a connection lives, writing a fresh consent there, and its token health (needs the metadata DB)."""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from airflow_provider_jira_auth.auth.token_state import TokenState


def find_connection(conn_id: str) -> tuple[Any, str | None]:
    """The connection and where it lives: ``"db"``, ``"env"``, ``"secrets"``, or ``(None, None)`` when new."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        if conn is not None:
            session.expunge(conn)
            return conn, "db"
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if value:
        if value.lstrip().startswith("{"):
            return Connection.from_json(value, conn_id=conn_id), "env"
        return Connection(conn_id=conn_id, uri=value), "env"
    try:
        # A configured secrets backend (Vault, AWS, ...): Airflow reads it before the DB.
        return Connection.get_connection_from_secrets(conn_id), "secrets"
    except Exception:
        return None, None


def save_consent(
    conn_id: str,
    fields: dict[str, Any],
    state: TokenState,
    *,
    existing: Any,
    where: str | None,
    print_only: bool = False,
) -> str:
    """Store the new grant where Airflow keeps the connection; say what was done."""
    from airflow_provider_jira_auth.auth.stores.airflow_db import state_into_extra
    from airflow_provider_jira_auth.hooks.token_provider import store_for
    from airflow_provider_jira_auth.settings import (
        JiraConnectionSettings,
        extra_value,
        grant_fingerprint,
        pin_broker_secret,
    )

    previous = existing.extra_dejson if existing is not None else {}
    # A null or empty value given for a field is no value: it must not hide the stored one.
    extra = {**previous, **{key: value for key, value in fields["extra"].items() if value not in (None, "")}}
    # Binds this connection's token-broker requests to it alone (docs/security.md). The form
    # saves "broker_secret": null, so a null or empty one is filled in as a missing one: with
    # the secret tasks already derive from the refresh token being replaced, else a random one.
    extra = pin_broker_secret(extra, conn_id)
    if not extra_value(extra, "broker_secret"):
        extra.pop("extra__jira_cloud__broker_secret", None)
        extra["broker_secret"] = secrets.token_urlsafe(32)
    # A consent starts a new grant: its own token state, apart from the previous grant's.
    extra = state_into_extra(extra, state, grant_fingerprint(str(extra_value(extra, "client_id")), state.refresh_token))
    settings = JiraConnectionSettings.from_connection(
        conn_id, host=fields["host"], login=None, password=None, extra=extra
    )
    store = store_for(settings)
    messages = []
    outside_airflow = where in ("env", "secrets")
    if print_only or (outside_airflow and store.kind == "connection"):
        # The person has to store it themselves; only the configuration and the refresh token,
        # not the cached access token or the store's bookkeeping.
        document = {
            "conn_type": "jira_cloud",
            "host": fields["host"],
            "extra": {**fields["extra"], "refresh_token": state.refresh_token, "broker_secret": extra_value(extra, "broker_secret")},
        }
        reason = "as asked" if print_only else f"because {conn_id!r} is defined outside the metadata database ({where})"
        messages.append(
            f"Not written to Airflow {reason}. Store this as the connection (env var AIRFLOW_CONN_{conn_id.upper()} "
            f"or your secrets backend); it holds secrets:\n{json.dumps(document)}"
        )
        if store.kind == "connection" and not print_only:
            messages.append(
                "Airflow cannot write such a connection back when Atlassian rotates its token: add "
                '"grant_store": "variable" to its extra so the provider keeps the live token in an Airflow Variable.'
            )
        return "\n".join(messages)
    # Under the lock of the grant being replaced, so that no refresh running now writes the old
    # grant back over it (the store's compare-and-swap then sees the new refresh token and keeps it).
    with _previous_grant_lock(conn_id, existing, settings.grant_id), store.lock():
        if not outside_airflow:
            _write_db_connection(conn_id, fields["host"], extra)
            messages.append(f"Connection {conn_id!r} {'updated' if existing is not None else 'created'} in the metadata database.")
        if store.kind != "connection":
            # The live token is the store's, not the connection's: a new grant must land there.
            store.save(state, None)
            messages.append(f"The new grant's tokens were written to the {store.describe()}.")
    return "\n".join(messages)


def _previous_grant_lock(conn_id: str, existing: Any, new_grant_id: str | None) -> Any:
    from contextlib import nullcontext

    from airflow_provider_jira_auth.hooks.token_provider import store_for
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    try:
        previous = JiraConnectionSettings.of(conn_id, existing) if existing is not None else None
    except Exception:  # a broken previous configuration has no refresh running
        return nullcontext()
    if previous is None or previous.auth_type != "oauth2" or previous.grant_id in (None, new_grant_id):
        return nullcontext()
    return store_for(previous).lock()


def _write_db_connection(conn_id: str, host: str, extra: dict[str, Any]) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id).with_for_update())
        if conn is None:
            conn = Connection(conn_id=conn_id, conn_type="jira_cloud")
            session.add(conn)
        conn.conn_type = "jira_cloud"
        conn.host = host
        conn.set_extra(json.dumps(extra))


def connection_status(conn_id: str) -> dict[str, Any]:
    """Auth type, site, cloud id, scopes, token expiry and age, store; never a secret, never a refresh."""
    from airflow_provider_jira_auth.auth.token_state import token_health
    from airflow_provider_jira_auth.hooks.token_provider import store_for
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    conn, where = find_connection(conn_id)
    if conn is None:
        from airflow_provider_jira_auth.client.errors import JiraConfigError

        raise JiraConfigError("conn_id", f"no connection {conn_id!r} in the metadata database or the environment")
    settings = JiraConnectionSettings.of(conn_id, conn)
    report: dict[str, Any] = {
        "connection": conn_id,
        "defined_in": {"db": "metadata database", "env": "environment variable"}.get(where or "", where),
        "auth_type": settings.auth_type,
        "site_url": settings.site_url,
        "cloud_id": settings.cloud_id,
        "route": "api gateway" if settings.uses_gateway else "site",
    }
    if settings.auth_type == "basic":
        report["login"] = settings.email
        return report
    store = store_for(settings)
    report["grant_store"] = store.describe()
    report["requested_scopes"] = list(settings.scopes)
    state = store.load()
    if state is None:
        report["grant"] = "none yet: run airflow-jira-auth authorize"
        return report
    report.update(token_health(state))
    if state.refresh_started_at is not None:
        report["unfinished_refresh"] = "a refresh started and never finished; the next use refreshes at once"
    return report
