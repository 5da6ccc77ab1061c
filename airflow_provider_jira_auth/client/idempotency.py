"""Creating issues at most once across lost answers, client retries and task retries.

Jira offers no idempotency key on ``POST /issue`` or ``/issue/bulk``. When a create's answer is
lost (a 5xx, a dropped connection) Jira may or may not have created the issue, so the client
never resends blindly (client/retry.py). With an idempotency key, each issue carries a marker
label derived from it (``airflow-once-<hash>``); before a create is sent again, and before a task
retry creates anything, the issues already holding their marker are looked up and reused.

Comments work the same way with an entity property instead of a label (``airflow.once``, set
when the comment is created): :func:`add_comment_once` reads the issue's newest comments
(``GET issue/{key}/comment``, then their properties with ``POST comment/list``) before it posts,
and again after a lost answer, looking again over ``SETTLE_WAITS`` (Jira may still be saving a
send whose answer a gateway cut short). Those reads are not a search: no index lags behind them.
They look at the newest :data:`COMMENT_LOOKUP` comments: a retry that comes after that many
newer comments may add its comment again.

The guarantee for issues has one limit: Jira's search is eventually consistent. An issue created moments
ago may not be found yet, so a lookup after a lost answer waits for the index to catch up
(``SETTLE_WAITS``, about 7 s in all) before concluding that nothing was created. An index that
lags longer than that can still let a duplicate through.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from airflow_provider_jira_auth.client.bulk import (
    BULK_CREATE_CHUNK,
    BulkCreateResult,
    add_bulk_create_chunk,
    error_item,
    issue_update,
)
from airflow_provider_jira_auth.client.errors import JiraBulkError, JiraError, JiraServerError, JiraTransportError
from airflow_provider_jira_auth.client.jql import jql_list

log = logging.getLogger(__name__)

T = TypeVar("T")


class JiraClient(Protocol):
    """What this module needs of ``client.http.JiraClient`` (which calls into this module)."""

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None) -> Any: ...

    def comments_by_id(self, ids: Iterable[int | str], *, expand: str | Iterable[str] = ()) -> list[dict[str, Any]]: ...

    def search_issues(self, jql: str, *, fields: Iterable[str] | None = None, page_size: int = 100) -> Iterator[dict[str, Any]]: ...

    def bulk_create_chunk(self, chunk: list[dict[str, Any]]) -> Any: ...

MARKER_PREFIX = "airflow-once-"
#: waits between lookups of a marker after a lost answer (Jira's index catching up)
SETTLE_WAITS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
#: sends of one create (the first included) before its lost answers fail the call
MAX_SENDS = 4
# Labels per lookup: a JQL `labels in (...)` list stays well under URL and JQL limits.
_LOOKUP_BATCH = 50


#: The entity property that marks a comment added under an idempotency key.
COMMENT_PROPERTY = "airflow.once"
#: How many of an issue's newest comments a lookup reads (100 a page).
COMMENT_LOOKUP = 500


def marker_label(idempotency_key: str) -> str:
    """The label that marks the issue created under ``idempotency_key`` (no spaces, 33 chars)."""
    return MARKER_PREFIX + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def _unsure(exc: JiraError) -> bool:
    """A failure after which Jira may have created the issue anyway."""
    return isinstance(exc, (JiraTransportError, JiraServerError))


def find_marked(client: JiraClient, labels: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Issues holding each marker label: ``{label: {"id", "key", "self"}}`` (the oldest per label)."""
    wanted = list(dict.fromkeys(labels))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _LOOKUP_BATCH):
        batch = wanted[start : start + _LOOKUP_BATCH]
        jql = f"labels in {jql_list(batch)} ORDER BY created ASC"
        for issue in client.search_issues(jql, fields=["labels"], page_size=100):
            for label in (issue.get("fields") or {}).get("labels") or ():
                if label in batch and label not in found:
                    found[label] = {"id": issue.get("id"), "key": issue.get("key"), "self": issue.get("self")}
    return found


def _settle(look: Callable[[], T], done: Callable[[T], bool], sleep: Callable[[float], None]) -> T:
    """After a lost answer: look, and look again over ``SETTLE_WAITS`` until ``done`` says the
    lookup found all it wanted (Jira's index catching up, or Jira still saving the first send)."""
    found = look()
    for wait in SETTLE_WAITS:
        if done(found):
            break
        sleep(wait)
        found = look()
    return found


def _settled_markers(client: JiraClient, labels: list[str], sleep: Callable[[float], None]) -> dict[str, dict[str, Any]]:
    """The issues holding ``labels`` after settling; each look asks only for those still missing."""
    found: dict[str, dict[str, Any]] = {}

    def look() -> dict[str, dict[str, Any]]:
        found.update(find_marked(client, [label for label in labels if label not in found]))
        return found

    return _settle(look, lambda seen: len(seen) == len(labels), sleep)


def _send_once(
    send: Callable[[], dict[str, Any]],
    look: Callable[[], dict[str, Any] | None],
    what: str,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """``send`` until Jira answers; after each answer lost in a way that leaves it unsure whether
    Jira acted, ``look`` for the marked result (settling) and return it instead of sending again."""
    for attempt in range(1, MAX_SENDS + 1):
        try:
            return send()
        except JiraError as exc:
            if not _unsure(exc):
                raise
            found = _settle(look, lambda result: result is not None, sleep)
            if found is not None:
                log.info("The answer to %s was lost (%s); Jira had done it (%s)", what, exc, found.get("key") or found.get("id"))
                return found
            if attempt == MAX_SENDS:
                raise
            log.warning("No answer to %s (%s), and Jira holds nothing with its marker: sending again", what, exc)
    raise AssertionError("unreachable")


def with_marker(update: dict[str, Any], label: str) -> dict[str, Any]:
    fields = dict(update["fields"])
    fields["labels"] = [*(fields.get("labels") or ()), label]
    return {**update, "fields": fields}


def create_issue_once(
    client: JiraClient,
    payload: dict[str, Any],
    idempotency_key: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """``POST issue`` at most once for ``idempotency_key``; returns ``{"id", "key", "self"}``."""
    label = marker_label(idempotency_key)
    existing = find_marked(client, [label])
    if label in existing:
        log.info("Issue %s already holds idempotency marker %s: not creating it again", existing[label]["key"], label)
        return existing[label]
    payload = with_marker(payload, label)
    return _send_once(
        lambda: client.request("POST", "issue", json=payload),
        lambda: find_marked(client, [label]).get(label),
        f"creating an issue with marker {label}",
        sleep,
    )


def create_issues_once(
    client: JiraClient,
    items: Iterable[dict[str, Any]],
    idempotency_keys: Sequence[str],
    *,
    raise_on_error: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> BulkCreateResult:
    """``POST issue/bulk`` in chunks of 50, each issue at most once for its key (same order as ``items``)."""
    updates = [issue_update(item) for item in items]
    if len(idempotency_keys) != len(updates):
        raise ValueError(f"{len(idempotency_keys)} idempotency keys for {len(updates)} issues: give one per issue")
    labels = [marker_label(key) for key in idempotency_keys]
    if len(set(labels)) != len(labels):
        raise ValueError("idempotency keys must be distinct, one per issue")
    result = BulkCreateResult()
    already = find_marked(client, labels)
    pending = []
    for index, label in enumerate(labels):
        if label in already:
            result.created.append({**already[label], "index": index})
        else:
            pending.append(index)
    if already:
        log.info("%d of %d issues already hold their idempotency marker: not creating them again", len(already), len(labels))
    for start in range(0, len(pending), BULK_CREATE_CHUNK):
        chunk = pending[start : start + BULK_CREATE_CHUNK]
        _create_chunk_once(client, chunk, [with_marker(updates[i], labels[i]) for i in chunk], labels, result, sleep)
    result.created.sort(key=lambda issue: issue["index"])
    result.errors.sort(key=lambda error: error.index)
    if result.errors and raise_on_error:
        raise JiraBulkError(result)
    return result


def _create_chunk_once(
    client: JiraClient,
    indexes: list[int],
    updates: list[dict[str, Any]],
    labels: list[str],
    result: BulkCreateResult,
    sleep: Callable[[float], None],
) -> None:
    for send in range(1, MAX_SENDS + 1):
        try:
            body = client.bulk_create_chunk(updates)
        except JiraError as exc:
            if not _unsure(exc):
                result.errors.extend(error_item(i, getattr(exc, "status", None), [str(exc)]) for i in indexes)
                return
            found = _settled_markers(client, [labels[i] for i in indexes], sleep)
            for i in indexes:
                if labels[i] in found:
                    result.created.append({**found[labels[i]], "index": i})
            remaining = [(i, u) for i, u in zip(indexes, updates) if labels[i] not in found]
            if not remaining:
                return
            if send == MAX_SENDS:
                result.errors.extend(
                    error_item(i, None, [f"not created after {send} sends whose answers were lost: {exc}"])
                    for i, _ in remaining
                )
                return
            log.warning("A bulk create got no answer (%s); %d of its issues are not in Jira: sending them again", exc, len(remaining))
            indexes, updates = [i for i, _ in remaining], [u for _, u in remaining]
            continue
        part = BulkCreateResult()
        add_bulk_create_chunk(part, body, 0, len(indexes))
        result.created.extend({**issue, "index": indexes[issue["index"]]} for issue in part.created)
        result.errors.extend(
            error_item(indexes[e.index], e.status, e.error_messages, e.errors) for e in part.errors
        )
        return


def find_marked_comment(client: JiraClient, issue_key: str, marker: str) -> dict[str, Any] | None:
    """The comment of ``issue_key`` whose ``airflow.once`` property holds ``marker``, among the newest
    :data:`COMMENT_LOOKUP`; None if there is none. Pages advance by what Jira sent, which may be
    fewer than asked for."""
    path = f"issue/{quote(str(issue_key), safe='')}/comment"
    start = 0
    while start < COMMENT_LOOKUP:
        page = client.request("GET", path, params={"orderBy": "-created", "startAt": start, "maxResults": 100})
        comments = page.get("comments") or []
        for comment in client.comments_by_id([c["id"] for c in comments], expand="properties") if comments else ():
            for prop in comment.get("properties") or ():
                value = prop.get("value")
                if prop.get("key") == COMMENT_PROPERTY and isinstance(value, dict) and value.get("marker") == marker:
                    return comment
        start += len(comments)
        if not comments or start >= int(page.get("total") or 0):
            return None
    return None


def add_comment_once(
    client: JiraClient,
    issue_key: str,
    body: dict[str, Any],
    idempotency_key: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """``POST issue/{key}/comment`` at most once for ``idempotency_key``; returns the comment."""
    marker = marker_label(idempotency_key)
    existing = find_marked_comment(client, issue_key, marker)
    if existing is not None:
        log.info("Comment %s on %s already holds idempotency marker %s: not adding it again", existing.get("id"), issue_key, marker)
        return existing
    payload = {"body": body, "properties": [{"key": COMMENT_PROPERTY, "value": {"marker": marker}}]}
    path = f"issue/{quote(str(issue_key), safe='')}/comment"
    return _send_once(
        lambda: client.request("POST", path, json=payload),
        lambda: find_marked_comment(client, issue_key, marker),
        f"commenting on {issue_key} with marker {marker}",
        sleep,
    )
