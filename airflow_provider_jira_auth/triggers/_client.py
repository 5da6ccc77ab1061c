"""Opening a trigger's async Jira client: one way for every trigger of this provider.

The connection comes from ``await aget_connection(conn_id)`` (``_compat``: Airflow 3.0 has no
``BaseHook.aget_connection``); building the client and checking its scopes run in a worker
thread, because a 3LO grant may fetch its first access token (blocking I/O). A client whose
scope check fails is closed before the error propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_jira_auth._compat import aget_connection

if TYPE_CHECKING:
    from airflow_provider_jira_auth.client.async_http import AsyncJiraClient


def build_async_client(conn_id: str, conn: Any, jira_retry: Mapping[str, Any] | None = None) -> AsyncJiraClient:
    """In a worker thread: an async client with the hook's auth and retry policy for this connection.

    :param jira_retry: the deferring operator's ``jira_retry`` mapping, laid over the connection's
        retry extras as in the task.
    """
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    hook = JiraCloudHook.from_connection(conn_id, conn, retry_policy=dict(jira_retry) if jira_retry else None)
    hook.retry_argument = "jira_retry"
    return hook.get_async_conn()


def check_scopes(client: AsyncJiraClient, conn_id: str, operations: Sequence[str], what: str) -> None:
    """Fail before polling when the grant lacks a scope the operations need (3LO; Basic auth is not checked)."""
    from airflow_provider_jira_auth.scopes import check_granted, granted_by, scopes_for

    check_granted(scopes_for(*operations), granted_by(client.auth), conn_id=conn_id, what=what)


async def open_async_client(
    conn_id: str, operations: Sequence[str], what: str, jira_retry: Mapping[str, Any] | None = None
) -> AsyncJiraClient:
    """The connection's async client, its scopes checked for ``operations``; ``what`` names the caller in errors."""
    conn = await aget_connection(conn_id)
    client = await asyncio.to_thread(build_async_client, conn_id, conn, jira_retry)
    try:
        await asyncio.to_thread(check_scopes, client, conn_id, operations, what)
    except BaseException:
        await client.aclose()
        raise
    return client
