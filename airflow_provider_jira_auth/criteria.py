"""What the Jira sensors and triggers wait for: JQL outcomes and issue criteria, as plain data.

Shared by ``sensors/`` (which poke) and ``triggers/`` (which poll in the triggerer), so that
neither imports the other. No Airflow imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["IssueCriteria", "field_matches", "import_callable", "jql_outcome", "jql_search_size"]


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
