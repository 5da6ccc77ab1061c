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

**Jira's index.** Jira's search is eventually consistent: an issue created moments ago may not
be found yet. So wherever an earlier send may have created the issue -- after a lost answer, and
on a task retry (``retrying=True``) before anything is sent -- the lookup looks again, waiting
0.5 s, 1 s, 2 s ... (at most 8 s a wait) until ``index_lag`` seconds (:data:`INDEX_LAG`, 30 s by
default) have passed, before it concludes that nothing was created. A first try pays nothing
for it: one search. The bound is the guarantee's limit: an index that lags longer than
``index_lag`` can still let a duplicate through.

**Whose marker counts.** A label or a comment property is data any Jira user may write. An issue
counts as the one created under a key only if it holds the marker *and* was created by the
connection's own account (``creator`` is the account of ``GET /myself``) in the project the
create names; a comment only if its author is that account. A marker anywhere else is ignored
and logged at WARNING, naming the issue and its creator (or the comment and its author). Whoever
holds the connection's own credentials can still act as the bot: see docs/security.md.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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

    def myself(self) -> dict[str, Any]: ...

MARKER_PREFIX = "airflow-once-"
#: How long (seconds) Jira's search may take to show a created issue: a lookup that may follow a
#: create (a lost answer, a task retry) keeps looking this long before it creates the issue. Jira
#: documents its search as eventually consistent without a bound; seconds are usual, and 30 s
#: leaves room for a loaded site at the cost of that wait on a retry that finds nothing.
INDEX_LAG = 30.0
#: the first and the longest wait between two looks for a marked issue
FIRST_WAIT, LONGEST_WAIT = 0.5, 8.0
#: waits between looks for a marked comment after a lost answer (Jira finishing its save; the
#: comment reads are not a search, no index lags behind them)
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


def wait(seconds: float) -> None:
    """How a lookup waits between looks when its caller gives no ``sleep`` (read at each call, so
    a test can run the waits on the emulator's clock)."""
    time.sleep(seconds)


def index_waits(within: float) -> Iterator[float]:
    """Waits between looks that add up to ``within`` seconds: 0.5, 1, 2, 4, 8, 8 ... (the last one cut short)."""
    spent, wait = 0.0, FIRST_WAIT
    while spent < within:
        step = min(wait, within - spent)
        yield step
        spent += step
        wait = min(wait * 2, LONGEST_WAIT)


def _project_matches(issue_project: Any, wanted: Any) -> bool:
    """Whether an issue's ``project`` is the one a create names (``{"key"}`` or ``{"id"}``); a
    create that names none matches any."""
    if not isinstance(wanted, Mapping):
        return wanted is None or str(wanted).upper() == str((issue_project or {}).get("key", "")).upper()
    have = issue_project if isinstance(issue_project, Mapping) else {}
    if wanted.get("id") is not None:
        return str(wanted["id"]) == str(have.get("id"))
    if wanted.get("key") is not None:
        return str(wanted["key"]).upper() == str(have.get("key", "")).upper()
    return True


def _who(user: Any) -> str:
    """A Jira user as a log line names them: display name and account id (no email)."""
    if not isinstance(user, Mapping):
        return "an unknown account"
    return f"{user.get('displayName') or '?'} ({user.get('accountId') or '?'})"


class _OwnAccount:
    """The connection's own account id, read from ``GET /myself`` the first time it is needed."""

    def __init__(self, client: JiraClient) -> None:
        self._client = client
        self._id: str | None = None

    def __call__(self) -> str:
        if self._id is None:
            self._id = str(self._client.myself().get("accountId") or "")
            if not self._id:
                raise JiraError("GET /myself answered no accountId: cannot tell this connection's markers from others'")
        return self._id


def find_marked(
    client: JiraClient,
    labels: Iterable[str],
    projects: Mapping[str, Any] | None = None,
    *,
    own: Callable[[], str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The issue holding each marker label that this connection's account created in the project
    ``projects[label]`` names: ``{label: {"id", "key", "self"}}`` (the oldest per label). An issue
    holding a marker that was created by another account or in another project is ignored and
    logged at WARNING: anyone who may edit labels can add a marker label to any issue."""
    wanted = list(dict.fromkeys(labels))
    projects = projects or {}
    own = own or _OwnAccount(client)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _LOOKUP_BATCH):
        batch = wanted[start : start + _LOOKUP_BATCH]
        jql = f"labels in {jql_list(batch)} ORDER BY created ASC"
        for issue in client.search_issues(jql, fields=["labels", "creator", "project"], page_size=100):
            fields = issue.get("fields") or {}
            for label in fields.get("labels") or ():
                if label not in batch or label in found:
                    continue
                creator, project = fields.get("creator"), fields.get("project")
                if not isinstance(creator, Mapping) or creator.get("accountId") != own():
                    why = f"was created by {_who(creator)}, not by this connection's account"
                elif not _project_matches(project, projects.get(label)):
                    why = f"is in project {(project or {}).get('key')}, not the one the create names"
                else:
                    found[label] = {"id": issue.get("id"), "key": issue.get("key"), "self": issue.get("self")}
                    continue
                log.warning(
                    "Issue %s holds the idempotency marker %s but %s: not this task's issue, ignored "
                    "(any user who may edit labels can add a label)",
                    issue.get("key"),
                    label,
                    why,
                )
    return found


def _settle(look: Callable[[], T], done: Callable[[T], bool], sleep: Callable[[float], None], waits: Iterable[float]) -> T:
    """Look, and look again after each of ``waits`` until ``done`` says the lookup found all it
    wanted (Jira's index catching up, or Jira still saving an earlier send)."""
    found = look()
    for wait in waits:
        if done(found):
            break
        sleep(wait)
        found = look()
    return found


def _settled_markers(
    client: JiraClient,
    labels: list[str],
    projects: Mapping[str, Any],
    sleep: Callable[[float], None],
    waits: Iterable[float],
    own: Callable[[], str],
) -> dict[str, dict[str, Any]]:
    """The issues holding ``labels`` after settling; each look asks only for those still missing."""
    found: dict[str, dict[str, Any]] = {}

    def look() -> dict[str, dict[str, Any]]:
        found.update(find_marked(client, [label for label in labels if label not in found], projects, own=own))
        return found

    return _settle(look, lambda seen: len(seen) == len(labels), sleep, waits)


def _send_once(
    send: Callable[[], dict[str, Any]],
    look: Callable[[], dict[str, Any] | None],
    what: str,
    sleep: Callable[[float], None],
    waits: Callable[[], Iterable[float]],
) -> dict[str, Any]:
    """``send`` until Jira answers; after each answer lost in a way that leaves it unsure whether
    Jira acted, ``look`` for the marked result (settling over ``waits()``) and return it instead
    of sending again."""
    for attempt in range(1, MAX_SENDS + 1):
        try:
            return send()
        except JiraError as exc:
            if not _unsure(exc):
                raise
            found = _settle(look, lambda result: result is not None, sleep, waits())
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
    retrying: bool = False,
    index_lag: float = INDEX_LAG,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """``POST issue`` at most once for ``idempotency_key``; returns ``{"id", "key", "self"}``.

    :param retrying: an earlier call (a task's earlier try) may have sent this create: look for
        its issue for ``index_lag`` seconds before creating one.
    :param index_lag: how long Jira's search may take to show a created issue (:data:`INDEX_LAG`).
    """
    sleep = sleep or wait
    label = marker_label(idempotency_key)
    projects = {label: (payload.get("fields") or {}).get("project")}
    own = _OwnAccount(client)

    def look() -> dict[str, Any] | None:
        return find_marked(client, [label], projects, own=own).get(label)

    existing = _settle(look, lambda found: found is not None, sleep, index_waits(index_lag) if retrying else ())
    if existing is not None:
        log.info("Issue %s already holds idempotency marker %s: not creating it again", existing["key"], label)
        return existing
    payload = with_marker(payload, label)
    return _send_once(
        lambda: client.request("POST", "issue", json=payload),
        look,
        f"creating an issue with marker {label}",
        sleep,
        lambda: index_waits(index_lag),
    )


def create_issues_once(
    client: JiraClient,
    items: Iterable[dict[str, Any]],
    idempotency_keys: Sequence[str],
    *,
    raise_on_error: bool = True,
    retrying: bool = False,
    index_lag: float = INDEX_LAG,
    sleep: Callable[[float], None] | None = None,
) -> BulkCreateResult:
    """``POST issue/bulk`` in chunks of 50, each issue at most once for its key (same order as
    ``items``); ``retrying`` and ``index_lag`` as for :func:`create_issue_once`."""
    sleep = sleep or wait
    updates = [issue_update(item) for item in items]
    if len(idempotency_keys) != len(updates):
        raise ValueError(f"{len(idempotency_keys)} idempotency keys for {len(updates)} issues: give one per issue")
    labels = [marker_label(key) for key in idempotency_keys]
    if len(set(labels)) != len(labels):
        raise ValueError("idempotency keys must be distinct, one per issue")
    result = BulkCreateResult()
    projects = {label: (update.get("fields") or {}).get("project") for label, update in zip(labels, updates)}
    own = _OwnAccount(client)
    already = _settled_markers(client, labels, projects, sleep, index_waits(index_lag) if retrying else (), own)
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
        _create_chunk_once(
            client,
            chunk,
            [with_marker(updates[i], labels[i]) for i in chunk],
            labels,
            result,
            lambda wanted: _settled_markers(client, wanted, projects, sleep, index_waits(index_lag), own),
        )
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
    settled_markers: Callable[[list[str]], dict[str, dict[str, Any]]],
) -> None:
    for send in range(1, MAX_SENDS + 1):
        try:
            body = client.bulk_create_chunk(updates)
        except JiraError as exc:
            if not _unsure(exc):
                result.errors.extend(error_item(i, getattr(exc, "status", None), [str(exc)]) for i in indexes)
                return
            found = settled_markers([labels[i] for i in indexes])
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


def find_marked_comment(
    client: JiraClient, issue_key: str, marker: str, *, own: Callable[[], str] | None = None
) -> dict[str, Any] | None:
    """The comment of ``issue_key`` whose ``airflow.once`` property holds ``marker`` and whose
    author is this connection's account, among the newest :data:`COMMENT_LOOKUP`; None if there is
    none. A marked comment by another author is ignored and logged at WARNING (anyone who may
    comment can set a comment's property). Pages advance by what Jira sent, which may be fewer
    than asked for."""
    own = own or _OwnAccount(client)
    path = f"issue/{quote(str(issue_key), safe='')}/comment"
    start = 0
    while start < COMMENT_LOOKUP:
        page = client.request("GET", path, params={"orderBy": "-created", "startAt": start, "maxResults": 100})
        comments = page.get("comments") or []
        for comment in client.comments_by_id([c["id"] for c in comments], expand="properties") if comments else ():
            for prop in comment.get("properties") or ():
                value = prop.get("value")
                if prop.get("key") == COMMENT_PROPERTY and isinstance(value, dict) and value.get("marker") == marker:
                    author = comment.get("author")
                    if isinstance(author, Mapping) and author.get("accountId") == own():
                        return comment
                    log.warning(
                        "Comment %s on %s holds the idempotency marker %s but was written by %s, not by "
                        "this connection's account: not this task's comment, ignored",
                        comment.get("id"),
                        issue_key,
                        marker,
                        _who(author),
                    )
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
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """``POST issue/{key}/comment`` at most once for ``idempotency_key``; returns the comment."""
    sleep = sleep or wait
    marker = marker_label(idempotency_key)
    own = _OwnAccount(client)
    existing = find_marked_comment(client, issue_key, marker, own=own)
    if existing is not None:
        log.info("Comment %s on %s already holds idempotency marker %s: not adding it again", existing.get("id"), issue_key, marker)
        return existing
    payload = {"body": body, "properties": [{"key": COMMENT_PROPERTY, "value": {"marker": marker}}]}
    path = f"issue/{quote(str(issue_key), safe='')}/comment"
    return _send_once(
        lambda: client.request("POST", path, json=payload),
        lambda: find_marked_comment(client, issue_key, marker, own=own),
        f"commenting on {issue_key} with marker {marker}",
        sleep,
        lambda: SETTLE_WAITS,
    )
