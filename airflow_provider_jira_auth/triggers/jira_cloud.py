"""Triggers behind the deferrable Jira sensors: poll Jira from the triggerer's event loop.

A trigger shares one event loop with every other trigger of its triggerer, so it must never
block. How this one keeps that promise:

* the connection comes from ``await aget_connection(conn_id)`` (``_compat``: ``BaseHook.aget_connection`` from Airflow 3.1);
* the Jira calls go through :class:`~airflow_provider_jira_auth.client.async_http.AsyncJiraClient`
  (``httpx.AsyncClient``);
* what is blocking by nature runs in a worker thread (``asyncio.to_thread``): building the
  client (imports, the 3LO token and cloud-id lookups), and the auth of each request. The auth
  is the hook's own, so credentials come exactly as in a task: Basic directly, 3LO through the
  same token store and refresh lock. In a triggerer (``_AIRFLOW_PROCESS_CONTEXT=client``) that
  means the api-server's token broker, since the triggerer may not write connections; in
  ``dag.test()``, which runs triggers inline, the store directly. See hooks/token_provider.py.

Re-implementing the 3LO token lifecycle on asyncio would give the most delicate part of the
provider two versions to keep in step; a thread hop per request (one poke per
``poke_interval``) is a small price for one.

Events: ``{"status": "success", "xcom": ...}``, ``{"status": "timeout", "message": ...}`` when
``timeout_at`` passes (the sensor raises ``AirflowSensorTimeout``, or skips with
``soft_fail``), ``{"status": "error", "error_type", "message"}`` for a Jira error (the
sensor fails with it, as a poke would).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_jira_auth.client.errors import JiraError, JiraTriggerError
from airflow_provider_jira_auth.connection_fields import DEFAULT_CONN_ID
from airflow_provider_jira_auth.triggers._client import open_async_client

if TYPE_CHECKING:
    from airflow_provider_jira_auth.client.async_http import AsyncJiraClient

__all__ = ["JiraIssueTrigger", "JiraJqlTrigger", "JiraTriggerError"]


class _JiraPollingTrigger(BaseTrigger):
    """Poll until :meth:`check` says done, or ``timeout_at`` (epoch seconds) passes."""

    #: client operations the check calls (``scopes.OPERATIONS``): their scopes are checked first (3LO)
    jira_operations: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        jira_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 60.0,
        timeout_at: float | None = None,
        jira_retry: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.jira_conn_id = jira_conn_id
        self.poke_interval = float(poke_interval)
        self.timeout_at = None if timeout_at is None else float(timeout_at)
        self.jira_retry = dict(jira_retry) if jira_retry else None

    def _common_kwargs(self) -> dict[str, Any]:
        kwargs = {"jira_conn_id": self.jira_conn_id, "poke_interval": self.poke_interval, "timeout_at": self.timeout_at}
        if self.jira_retry:  # absent otherwise: what earlier releases stored still deserializes alike
            kwargs["jira_retry"] = self.jira_retry
        return kwargs

    async def check(self, client: AsyncJiraClient) -> tuple[bool, Any]:
        """Whether the wait is over, and the XCom value to hand the task."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client: AsyncJiraClient | None = None
        try:
            client = await open_async_client(
                self.jira_conn_id, self.jira_operations, type(self).__name__, self.jira_retry
            )
            while True:
                done, xcom = await self.check(client)
                if done:
                    yield TriggerEvent({"status": "success", "xcom": xcom})
                    return
                now = time.time()
                if self.timeout_at is not None and now >= self.timeout_at:
                    message = f"Sensor has timed out: {self.describe()} did not happen before the sensor's timeout"
                    yield TriggerEvent({"status": "timeout", "message": message})
                    return
                delay = (
                    self.poke_interval if self.timeout_at is None else min(self.poke_interval, self.timeout_at - now)
                )
                self.log.info("%s: not yet; next look in %.3g s", self.describe(), delay)
                await asyncio.sleep(max(delay, 0.0))
        except JiraError as exc:
            yield TriggerEvent({"status": "error", "error_type": type(exc).__name__, "message": str(exc)})
        finally:
            if client is not None:
                await client.aclose()


class JiraJqlTrigger(_JiraPollingTrigger):
    """Fires when a JQL query matches at least ``min_count`` issues (or none, with ``expect_none``).

    :param jira_conn_id: the ``jira_cloud`` connection.
    :param jql: a bounded JQL query.
    :param min_count: how many issues must match.
    :param expect_none: fire when no issue matches instead.
    :param poke_interval: seconds between looks.
    :param timeout_at: when to give up (epoch seconds); ``None``: never.
    :param jira_retry: the deferring sensor's ``jira_retry`` mapping (over the connection's retry extras).
    """

    jira_operations = ("search_issues",)

    def __init__(
        self,
        *,
        jql: str,
        min_count: int = 1,
        expect_none: bool = False,
        jira_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 60.0,
        timeout_at: float | None = None,
        jira_retry: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            jira_conn_id=jira_conn_id, poke_interval=poke_interval, timeout_at=timeout_at, jira_retry=jira_retry
        )
        self.jql = jql
        self.min_count = int(min_count)
        self.expect_none = bool(expect_none)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"jql": self.jql, "min_count": self.min_count, "expect_none": self.expect_none, **self._common_kwargs()},
        )

    def describe(self) -> str:
        wanted = "no issue" if self.expect_none else f"at least {self.min_count} issue(s)"
        return f"JQL {self.jql!r} matching {wanted}"

    async def check(self, client: AsyncJiraClient) -> tuple[bool, Any]:
        from airflow_provider_jira_auth.criteria import jql_outcome, jql_search_size

        size = jql_search_size(min_count=self.min_count, expect_none=self.expect_none)
        issues = await client.search_issues(self.jql, max_results=size, page_size=size)
        return jql_outcome([issue["key"] for issue in issues], min_count=self.min_count, expect_none=self.expect_none)


class JiraIssueTrigger(_JiraPollingTrigger):
    """Fires when an issue meets :class:`~airflow_provider_jira_auth.sensors.jira_cloud.IssueCriteria`.

    :param jira_conn_id: the ``jira_cloud`` connection.
    :param issue_key: the issue.
    :param criteria: ``IssueCriteria.serialize()``: plain data, a condition as its dotted path.
    :param poke_interval: seconds between looks.
    :param timeout_at: when to give up (epoch seconds); ``None``: never.
    :param jira_retry: the deferring sensor's ``jira_retry`` mapping (over the connection's retry extras).
    """

    jira_operations = ("get_issue",)

    def __init__(
        self,
        *,
        issue_key: str,
        criteria: dict[str, Any],
        jira_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 60.0,
        timeout_at: float | None = None,
        jira_retry: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            jira_conn_id=jira_conn_id, poke_interval=poke_interval, timeout_at=timeout_at, jira_retry=jira_retry
        )
        from airflow_provider_jira_auth.criteria import IssueCriteria

        self.issue_key = issue_key
        self.criteria = dict(criteria)
        self._criteria = IssueCriteria.deserialize(self.criteria)  # refuses a criteria that waits for nothing

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"issue_key": self.issue_key, "criteria": self.criteria, **self._common_kwargs()},
        )

    def describe(self) -> str:
        wanted = {k: v for k, v in self.criteria.items() if v not in (None, [], ())}
        return f"{self.issue_key} reaching {wanted}"

    async def check(self, client: AsyncJiraClient) -> tuple[bool, Any]:
        issue = await client.get_issue(self.issue_key, fields=self._criteria.fields_to_fetch())
        # A condition given as a dotted path is imported on first use: a blocking import, once.
        if isinstance(self._criteria.condition, str):
            from airflow_provider_jira_auth.criteria import import_callable

            check = await asyncio.to_thread(import_callable, self._criteria.condition)
            self._criteria = replace(self._criteria, condition=check)
        done = self._criteria.matches(issue)
        return done, self._criteria.xcom(issue) if done else None
