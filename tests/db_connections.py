"""Read and write connections in the session's metadata DB the way ``airflow connections`` does."""

from __future__ import annotations

import json
from typing import Any


def put_connection(conn_id: str, connection_json: str, **extra_overrides: Any) -> None:
    """Create or replace connection ``conn_id`` from an ``AIRFLOW_CONN_*``-style JSON document."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    data = json.loads(connection_json)
    extra = {**data.get("extra", {}), **extra_overrides}
    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id == conn_id))
        session.add(
            Connection(
                conn_id=conn_id,
                conn_type=data["conn_type"],
                host=data.get("host"),
                login=data.get("login"),
                password=data.get("password"),
                extra=json.dumps(extra),
            )
        )


def connection_extra(conn_id: str) -> dict[str, Any]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        assert conn is not None, f"connection {conn_id} is not in the metadata DB"
        return conn.extra_dejson


def variable_value(key: str) -> str | None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalar(select(Variable).where(Variable.key == key))
        return None if row is None else row.val


def signing_secret(conn_id: str, connection_json: str | None = None) -> str:
    """What a task signs its token-broker requests for ``conn_id`` with, from the connection as it
    reads it: the metadata DB's, or ``connection_json`` (an ``AIRFLOW_CONN_*`` document)."""
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    if connection_json is None:
        return connection_settings(conn_id).broker_signing_secret
    data = json.loads(connection_json)
    return JiraConnectionSettings.from_connection(
        conn_id, host=data["host"], login=data.get("login"), password=data.get("password"), extra=data.get("extra")
    ).broker_signing_secret


def connection_settings(conn_id: str):  # -> JiraConnectionSettings
    """Connection ``conn_id`` of the metadata DB, read and validated as the hook reads it."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        assert conn is not None, f"connection {conn_id} is not in the metadata DB"
        return JiraConnectionSettings.of(conn_id, conn)
