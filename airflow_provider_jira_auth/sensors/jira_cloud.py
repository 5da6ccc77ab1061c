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

import importlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_jira_auth.connection_fields import DEFAULT_CONN_ID
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


# -- what the sensors wait for (shared with the triggers) -------------------------------------------


def jql_outcome(keys: Sequence[str], *, min_count: int, expect_none: bool) -> tuple[bool, dict[str, Any]]:
    """Whether a JQL sensor is done, given the keys its search returned, and its XCom value.

    The search asks for at most ``min_count`` issues (1 with ``expect_none``), so ``count`` is
    capped there.
    """
    done = not keys if expect_none else len(keys) >= min_count
    return done, {"count": len(keys), "keys": list(keys)}


def jql_search_size(*, min_count: int, expect_none: bool) -> int:
    """How many issues a poke needs to see to decide."""
    return 1 if expect_none else min_count


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.strip().casefold() == expected.strip().casefold()
    if isinstance(actual, (int, float)) and isinstance(expected, str):
        return str(actual) == expected.strip()
    return actual == expected


# Keys of Jira's object values (options, users, priorities, statuses, ...) a plain value may name.
_OBJECT_NAMES = ("value", "name", "key", "id", "displayName", "accountId", "emailAddress")


def field_matches(actual: Any, expected: Any) -> bool:
    """Whether a Jira field value is ``expected``: equal (strings case-insensitively), a list that
    contains it, or an object (option, user, priority, ...) whose value/name/key/id is it."""
    if isinstance(actual, list):
        if isinstance(expected, list):
            return len(actual) == len(expected) and all(
                field_matches(a, e) for a, e in zip(actual, expected, strict=True)
            )
        return any(field_matches(item, expected) for item in actual)
    if isinstance(actual, Mapping) and not isinstance(expected, Mapping):
        return any(_same(actual.get(name), expected) for name in _OBJECT_NAMES if actual.get(name) is not None)
    return _same(actual, expected)


def _is_set(value: Any) -> bool:
    return value not in (None, "", [], {})


def _callable_path(condition: Callable[..., Any] | str) -> str:
    """The dotted path a triggerer can import ``condition`` by; refuses what it could not."""
    if isinstance(condition, str):
        return condition
    module, qualname = getattr(condition, "__module__", None), getattr(condition, "__qualname__", "")
    path = f"{module}.{qualname}"
    # Airflow loads DAG files under generated module names the triggerer does not have.
    if not module or "<" in qualname or module == "__main__" or module.startswith("unusual_prefix_"):
        raise ValueError(
            f"deferrable=True needs a condition the triggerer can import, got {condition!r}: define it as a "
            "module-level function in a module on the triggerer's Python path (not in the DAG file), or pass "
            "its dotted path as a string, e.g. 'my_package.checks.is_ready'"
        )
    return path


def import_callable(path: str) -> Callable[[dict[str, Any]], Any]:
    """The callable at ``path`` (``package.module.function``)."""
    module_name, _, name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{path!r} is not a dotted path like 'my_package.checks.is_ready'")
    target = getattr(importlib.import_module(module_name), name)
    if not callable(target):
        raise TypeError(f"{path!r} is not callable")
    return target


@dataclass(frozen=True)
class IssueCriteria:
    """The state a :class:`JiraIssueSensor` waits for; every criterion given must hold.

    :param status: status name, e.g. ``"Done"`` (case-insensitive).
    :param status_category: ``"To Do"``/``"new"``, ``"In Progress"``/``"indeterminate"`` or
        ``"Done"``/``"done"``: any status of that category.
    :param field: a field id, e.g. ``"labels"``, ``"assignee"``, ``"customfield_10010"``.
    :param value: what ``field`` must be (see :func:`field_matches`); ``None``: any non-empty value.
    :param condition: called with the issue (``{"key", "fields": {...}}``), true when done; a
        callable, or a dotted path to one.
    :param fields: more fields to fetch for ``condition``; default ``*navigable`` when a
        condition is given.
    """

    status: str | None = None
    status_category: str | None = None
    field: str | None = None
    value: Any = None
    condition: Callable[[dict[str, Any]], Any] | str | None = None
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.status or self.status_category or self.field or self.condition):
            raise ValueError("JiraIssueSensor needs status, status_category, field or condition")
        if self.value is not None and not self.field:
            raise ValueError("JiraIssueSensor: value needs field (the field that must hold it)")

    def fields_to_fetch(self) -> list[str]:
        wanted = ["status"]
        if self.field:
            wanted.append(self.field)
        wanted.extend(self.fields or (("*navigable",) if self.condition else ()))
        return list(dict.fromkeys(wanted))

    def matches(self, issue: Mapping[str, Any]) -> bool:
        fields = issue.get("fields") or {}
        status = fields.get("status") or {}
        if self.status and not _same(status.get("name"), self.status):
            return False
        if self.status_category:
            category = status.get("statusCategory") or {}
            if not (
                _same(category.get("key"), self.status_category) or _same(category.get("name"), self.status_category)
            ):
                return False
        if self.field:
            actual = fields.get(self.field)
            if not (_is_set(actual) if self.value is None else field_matches(actual, self.value)):
                return False
        if self.condition is not None:
            check = import_callable(self.condition) if isinstance(self.condition, str) else self.condition
            if not check(dict(issue)):
                return False
        return True

    def xcom(self, issue: Mapping[str, Any]) -> dict[str, Any]:
        """What the sensor returns: the issue's key, status and the watched field."""
        fields = issue.get("fields") or {}
        status = fields.get("status") or {}
        summary: dict[str, Any] = {
            "issue_key": issue.get("key"),
            "status": status.get("name"),
            "status_category": (status.get("statusCategory") or {}).get("key"),
        }
        if self.field:
            summary[self.field] = fields.get(self.field)
        return summary

    def serialize(self) -> dict[str, Any]:
        """Plain data for a trigger's kwargs (a condition becomes its dotted path)."""
        return {
            "status": self.status,
            "status_category": self.status_category,
            "field": self.field,
            "value": self.value,
            "fields": list(self.fields),
            "condition": None if self.condition is None else _callable_path(self.condition),
        }

    @classmethod
    def deserialize(cls, data: Mapping[str, Any]) -> IssueCriteria:
        return cls(
            status=data.get("status"),
            status_category=data.get("status_category"),
            field=data.get("field"),
            value=data.get("value"),
            condition=data.get("condition"),
            fields=tuple(data.get("fields") or ()),
        )


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
        from airflow_provider_jira_auth.triggers.jira_cloud import JiraTriggerError

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
        )
