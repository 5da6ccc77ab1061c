"""Bulk create and bulk fetch: chunking, and results that say what succeeded and what did not."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from airflow_provider_jira_auth.client.adf import ensure_adf

T = TypeVar("T")

#: Jira's limits per request (Atlassian's REST API reference, the operations' limits).
BULK_CREATE_CHUNK = 50
BULK_FETCH_CHUNK = 100

#: System fields that take ADF in API v3; plain strings given for them are converted.
RICH_TEXT_FIELDS = ("description", "environment")

_ISSUE_UPDATE_KEYS = frozenset({"fields", "update", "properties", "transition", "historyMetadata"})


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, read lazily from ``items``."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def with_rich_text(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with plain-text ``description``/``environment`` turned into ADF (copied only if needed)."""
    if not any(isinstance(fields.get(name), str) for name in RICH_TEXT_FIELDS):
        return fields
    converted = dict(fields)
    for name in RICH_TEXT_FIELDS:
        if isinstance(converted.get(name), str):
            converted[name] = ensure_adf(converted[name])
    return converted


def issue_update(item: dict[str, Any]) -> dict[str, Any]:
    """One element of ``issueUpdates``: ``item`` is a ``fields`` dict or already ``{"fields", "update", ...}``."""
    if not isinstance(item, dict):
        raise TypeError(f"each issue to create must be a dict of fields, got {type(item).__name__}")
    if isinstance(item.get("fields"), dict) and item.keys() <= _ISSUE_UPDATE_KEYS:
        return {**item, "fields": with_rich_text(item["fields"])}
    return {"fields": with_rich_text(item)}


@dataclass(frozen=True)
class BulkCreateErrorItem:
    """One issue of a bulk create that Jira did not create.

    :param index: position of the issue in the caller's input (0-based, across chunks).
    :param status: HTTP status Jira gave for it, if any.
    :param error_messages: Jira's ``errorMessages``.
    :param errors: Jira's ``errors``, field -> message.
    :param message: all of the above in one line.
    """

    index: int
    status: int | None
    error_messages: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass
class BulkCreateResult:
    """Outcome of :meth:`JiraClient.create_issues`.

    :param created: ``{"id", "key", "self", "index"}`` per created issue, ``index`` being its
        position in the input.
    :param errors: one :class:`BulkCreateErrorItem` per issue not created.
    """

    created: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BulkCreateErrorItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every issue was created."""
        return not self.errors

    @property
    def keys(self) -> list[str]:
        """Keys of the created issues, in input order."""
        return [issue["key"] for issue in self.created]


def error_item(
    index: int, status: int | None, error_messages: Iterable[Any] = (), errors: dict[str, Any] | None = None
) -> BulkCreateErrorItem:
    """A :class:`BulkCreateErrorItem` with its one-line ``message`` composed."""
    messages = [str(m) for m in error_messages]
    by_field = {str(k): str(v) for k, v in (errors or {}).items()}
    said = [*messages, *(f"{k}: {v}" for k, v in by_field.items())]
    message = "; ".join(said) or (f"HTTP {status}" if status else "not created")
    return BulkCreateErrorItem(index, status, messages, by_field, message)


def add_bulk_create_chunk(result: BulkCreateResult, body: Any, offset: int, size: int) -> None:
    """Record one ``issue/bulk`` answer for input items ``offset .. offset+size-1``.

    Jira lists the created issues in request order, leaving out the failed elements, whose
    ``failedElementNumber`` is their 0-based position in the chunk.
    """
    body = body if isinstance(body, dict) else {}
    failed: dict[int, BulkCreateErrorItem] = {}
    for entry in body.get("errors") or []:
        number = entry.get("failedElementNumber")
        if not isinstance(number, int) or not 0 <= number < size:
            continue
        element = entry.get("elementErrors") or {}
        failed[number] = error_item(
            offset + number,
            entry.get("status") or element.get("status"),
            element.get("errorMessages") or [],
            element.get("errors") or {},
        )
    succeeded = (n for n in range(size) if n not in failed)
    for issue, number in zip(body.get("issues") or [], succeeded, strict=False):
        result.created.append(
            {"id": issue.get("id"), "key": issue.get("key"), "self": issue.get("self"), "index": offset + number}
        )
    result.errors.extend(failed[n] for n in sorted(failed))


class BulkFetchResult(Iterator[dict[str, Any]]):
    """The issues of :meth:`JiraClient.bulk_fetch`, fetched 100 at a time as they are read.

    Jira leaves out issues that do not exist or that the user may not see, and reports others
    it could not return in ``issueErrors``. Neither stops the iteration; both are collected
    here, complete once the iterator is exhausted:

    * :attr:`issue_errors`: Jira's ``issueErrors`` entries (``{"id", "errorMessage"}``);
    * :attr:`missing`: requested keys or ids that came back neither as an issue nor as an
      error (not found or not visible). An issue moved to another project comes back under
      its new key, so its old key is listed here although the issue was returned.
    """

    def __init__(self, keys_or_ids: Iterable[str], fetch: Callable[[list[str]], Any]) -> None:
        self._chunks = chunked((str(k) for k in keys_or_ids), BULK_FETCH_CHUNK)
        self._fetch = fetch
        self._page: Iterator[dict[str, Any]] = iter(())
        self.issue_errors: list[dict[str, Any]] = []
        self.missing: list[str] = []

    def __iter__(self) -> BulkFetchResult:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            issue = next(self._page, None)
            if issue is not None:
                return issue
            chunk = next(self._chunks)  # StopIteration ends the iteration
            self._page = iter(self._read_chunk(chunk))

    def _read_chunk(self, chunk: list[str]) -> list[dict[str, Any]]:
        body = self._fetch(chunk) or {}
        issues = body.get("issues") or []
        errors = body.get("issueErrors") or []
        self.issue_errors.extend(errors)
        seen = {str(e.get("id")).upper() for e in errors}
        for issue in issues:
            seen.add(str(issue.get("id")))
            seen.add(str(issue.get("key")).upper())
        self.missing.extend(k for k in chunk if k.upper() not in seen)
        return issues
