"""Sensors for Jira Cloud: wait for a JQL query to match, or for an issue to reach a state.

Both work in the three ways Airflow sensors do: ``mode="poke"`` (hold a worker slot and sleep
between pokes), ``mode="reschedule"`` (free the slot between pokes) and ``deferrable=True``
(after one poke, hand the waiting to a trigger in the triggerer, see
:mod:`airflow_provider_jira_auth.triggers.jira_cloud`). ``timeout`` ends the wait with
``AirflowSensorTimeout``, or skips the task with ``soft_fail=True``, in every mode.

What a sensor waits for is decided by the plain functions and :class:`IssueCriteria` below,
shared by ``poke()`` and the triggers, so the three modes cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_jira_auth.connection_fields import DEFAULT_CONN_ID
from airflow_provider_jira_auth.criteria import IssueCriteria, jql_outcome, jql_search_size
from airflow_provider_jira_auth.operators.jira_cloud import JiraOperatorMixin

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

__all__ = ["IssueCriteria", "JiraIssueSensor", "JiraJqlSensor", "jql_outcome"]

#: Extra seconds the deferral's own timeout waits past the trigger's deadline: the trigger
#: reports the timeout itself (after a last look), Airflow's deferral timeout is the backstop.
DEFERRAL_GRACE = 60.0


def _default_deferrable() -> bool:
    from airflow_provider_jira_auth._compat import task_conf

    return task_conf().getboolean("operators", "default_deferrable", fallback=False)


# -- sensors ----------------------------------------------------------------------------------------


class _JiraSensor(JiraOperatorMixin, BaseSensorOperator):
    """Deferral plumbing shared by the Jira sensors."""

    def __init__(self, *, jira_conn_id: str = DEFAULT_CONN_ID, deferrable: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jira_conn_id = jira_conn_id
        self.deferrable = _default_deferrable() if deferrable is None else deferrable

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        # One look first: no trip through the triggerer when the condition already holds.
        first = self.poke(context)
        if first:
            return first.xcom_value if isinstance(first, PokeReturnValue) else None
        self.defer(
            trigger=self.trigger(timeout_at=time.time() + self.timeout),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE),
        )

    def trigger(self, *, timeout_at: float) -> BaseTrigger:
        raise NotImplementedError

    def trigger_retry(self) -> dict[str, Any] | None:
        """``jira_retry`` as the trigger takes it: a mapping travels to the triggerer; a
        ``RetryPolicy`` object cannot (a trigger's arguments are stored as JSON), so the trigger
        then retries as the connection says, and the log says so."""
        if self.jira_retry is None or isinstance(self.jira_retry, dict):
            return self.jira_retry
        self.log.warning(
            "jira_retry is a %s, which cannot be handed to the triggerer: while deferred, calls are retried "
            "as the connection %r says. Give jira_retry as a mapping (e.g. {'retry_attempts': 3}) to apply it there too",
            type(self.jira_retry).__name__,
            self.jira_conn_id,
        )
        return None

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        from airflow_provider_jira_auth._compat import resume_sensor

        return resume_sensor(super().resume_execution, self, next_method, next_kwargs, context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resumes the task when the trigger fires (timeout and soft_fail as in poke mode)."""
        status = event.get("status")
        if status == "success":
            self.log.info("Success criteria met. Exiting.")
            return event.get("xcom")
        if status == "timeout":
            from airflow_provider_jira_auth._compat import AirflowSensorTimeout

            # BaseSensorOperator.resume_execution turns this into a skip when soft_fail is set.
            raise AirflowSensorTimeout(event.get("message") or "Sensor has timed out")
        from airflow_provider_jira_auth.client.errors import JiraTriggerError

        raise JiraTriggerError(str(event.get("error_type") or "JiraError"), str(event.get("message")))


class JiraJqlSensor(_JiraSensor):
    """Wait until a JQL query matches at least ``min_count`` issues, or none with ``expect_none=True``.

    Each poke asks ``search/jql`` for at most ``min_count`` issues (one with ``expect_none``),
    so it stays cheap however many match. Returns ``{"count", "keys"}`` (``count`` capped at
    ``min_count``). Jira's search is eventually consistent: an issue changed a second ago may
    not match yet.

    .. code-block:: python

        wait_for_release_tickets = JiraJqlSensor(
            task_id="release_ready",
            jql='project = ENG AND fixVersion = "2.4" AND statusCategory != Done',
            expect_none=True,       # until nothing is left open
            poke_interval=300,
            timeout=6 * 3600,
            deferrable=True,        # wait in the triggerer, not a worker slot
        )

    :param jql: a bounded JQL query (templated).
    :param min_count: how many issues must match (default 1).
    :param expect_none: wait until *no* issue matches instead.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = ("jql",)
    jira_operations = ("search_issues",)

    def __init__(
        self,
        *,
        jql: str,
        min_count: int = 1,
        expect_none: bool = False,
        jira_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(jira_conn_id=jira_conn_id, deferrable=deferrable, **kwargs)
        if min_count < 1:
            raise ValueError(
                f"min_count must be at least 1 (use expect_none=True to wait for no match), got {min_count}"
            )
        self.jql = jql
        self.min_count = min_count
        self.expect_none = expect_none

    def poke(self, context: Context) -> PokeReturnValue:
        size = jql_search_size(min_count=self.min_count, expect_none=self.expect_none)
        keys = [issue["key"] for issue in self.jira_client().search_issues(self.jql, page_size=size, max_results=size)]
        done, xcom = jql_outcome(keys, min_count=self.min_count, expect_none=self.expect_none)
        if not done:
            wanted = "no match" if self.expect_none else f"at least {self.min_count}"
            self.log.info("JQL %r: %d match(es) so far, waiting for %s", self.jql, len(keys), wanted)
        return PokeReturnValue(done, xcom if done else None)

    def trigger(self, *, timeout_at: float) -> BaseTrigger:
        from airflow_provider_jira_auth.triggers.jira_cloud import JiraJqlTrigger

        return JiraJqlTrigger(
            jira_conn_id=self.jira_conn_id,
            jql=self.jql,
            min_count=self.min_count,
            expect_none=self.expect_none,
            poke_interval=self.poke_interval,
            timeout_at=timeout_at,
            jira_retry=self.trigger_retry(),
        )


class JiraIssueSensor(_JiraSensor):
    """Wait until an issue reaches a status, a status category, a field value, or a condition.

    Every criterion given must hold. Returns ``{"issue_key", "status", "status_category"}``
    (plus the watched field).

    .. code-block:: python

        JiraIssueSensor(task_id="approved", issue_key="ENG-42", status="Approved")
        JiraIssueSensor(task_id="closed", issue_key="ENG-42", status_category="done", mode="reschedule")
        JiraIssueSensor(task_id="deployed", issue_key="ENG-42", field="labels", value="deployed")
        JiraIssueSensor(
            task_id="has_fix_version",
            issue_key="ENG-42",
            condition="my_package.jira_checks.has_fix_version",  # called with the issue dict
            fields=["fixVersions"],
            deferrable=True,
        )

    In deferrable mode the condition runs in the triggerer: it must be importable there (a
    module-level function of a module on its Python path, not one defined in the DAG file) and
    quick (it runs in the triggerer's event loop).

    :param issue_key: the issue (templated).
    :param status: status name (templated, case-insensitive).
    :param status_category: ``"new"``/``"To Do"``, ``"indeterminate"``/``"In Progress"`` or
        ``"done"``/``"Done"`` (templated).
    :param field: a field id the issue must have set, or set to ``value`` (templated).
    :param value: the value ``field`` must have: equal, contained (lists) or named (objects);
        ``None``: any non-empty value (templated).
    :param condition: a callable (or its dotted path) taking the issue dict, true when done.
    :param fields: more fields to fetch for ``condition``.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = ("issue_key", "status", "status_category", "field", "value")
    jira_operations = ("get_issue",)

    def __init__(
        self,
        *,
        issue_key: str,
        status: str | None = None,
        status_category: str | None = None,
        field: str | None = None,
        value: Any = None,
        condition: Callable[[dict[str, Any]], Any] | str | None = None,
        fields: Iterable[str] = (),
        jira_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(jira_conn_id=jira_conn_id, deferrable=deferrable, **kwargs)
        self.issue_key = issue_key
        self.status = status
        self.status_category = status_category
        self.field = field
        self.value = value
        self.condition = condition
        self.fields = tuple(fields)
        self.criteria()  # fail at parse time on a sensor that waits for nothing

    def criteria(self) -> IssueCriteria:
        return IssueCriteria(
            status=self.status,
            status_category=self.status_category,
            field=self.field,
            value=self.value,
            condition=self.condition,
            fields=self.fields,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        criteria = self.criteria()
        issue = self.jira_client().get_issue(self.issue_key, fields=criteria.fields_to_fetch())
        done = criteria.matches(issue)
        if not done:
            self.log.info(
                "%s: status %r, waiting", self.issue_key, ((issue.get("fields") or {}).get("status") or {}).get("name")
            )
        return PokeReturnValue(done, criteria.xcom(issue) if done else None)

    def trigger(self, *, timeout_at: float) -> BaseTrigger:
        from airflow_provider_jira_auth.triggers.jira_cloud import JiraIssueTrigger

        return JiraIssueTrigger(
            jira_conn_id=self.jira_conn_id,
            issue_key=self.issue_key,
            criteria=self.criteria().serialize(),
            poke_interval=self.poke_interval,
            timeout_at=timeout_at,
            jira_retry=self.trigger_retry(),
        )
