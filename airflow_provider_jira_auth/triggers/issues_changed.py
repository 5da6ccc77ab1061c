"""``JiraIssuesChangedTrigger``: a change in Jira becomes an asset event, once.

An event trigger for ``Asset(..., watchers=[AssetWatcher(name=..., trigger=...)])``: it polls a
JQL query for issues created or updated since a watermark and fires one event per batch of
changes. The event's payload (the asset event's ``extra["payload"]``)::

    {"jql": ..., "count": 2, "keys": ["ENG-7", "ENG-9"], "ids": ["10006", "10008"],
     "newest_updated": "2026-11-29T19:12:30.120+0000",
     "issues": [{"id", "key", "updated", "created", "status"}, ...]}

**The watermark.** Jira compares JQL dates to the minute, in the time zone of the user the
query runs as (``GET /myself``, ``timeZone``); and an issue becomes searchable a moment after it
changed, so a change can show up after a later one. So each poll asks for
``(<jql>) AND updated >= "<newest - overlap, in the user's zone, to the minute>" ORDER BY updated
ASC`` and keeps what it already handed on as ``(id, updated)`` pairs, pruned to the overlap
window: a pair is a change once. A move, an edit or a creation is a new ``updated``. When the
user's zone cannot be read (no ``read:jira-user`` scope), the query reaches 14 hours further
back and the pairs alone tell what is new.

**Exactly once across restarts** (Airflow 3.3+). The watermark lives in the watched asset's
state store (``asset_state_store``, Airflow's metadata database through the api-server), under
a key derived from the connection and the JQL. The trigger runs as a shared stream in *ack
mode* (``create_shared_stream_producer``): the triggerer hands each batch on, stores the asset
event, confirms it, and only then calls :meth:`_WatermarkProducer.advance`, which writes the
watermark. A batch whose event was never stored (the triggerer died, the persist failed) is
polled again on the next start and fired then. The one window left is between an event
being stored and its watermark write: the watch hands on at most :data:`UNCONFIRMED_BATCHES`
batches ahead of the stored watermark, so a triggerer killed in the middle of a bulk change
fires at most that many batches (``max_issues`` changes each) a second time after its
restart; nothing is ever skipped. Each issue's ``(id, updated)`` is in the payload for a DAG
that must be idempotent even then.

On Airflow 3.0-3.2 (no asset state store, no ack mode) the watermark lives in the triggerer's
memory: within one triggerer process each change fires once; changes made while no triggerer
runs the trigger are not seen (a restart begins again at "now"). See docs/architecture.md.

**Credentials and pacing.** The connection, the client and the auth are those of the other
triggers (:mod:`.jira_cloud`): Basic directly, 3LO through the api-server's token broker in a
triggerer. Every request goes through the connection's retry policy; a poll that still fails
(Jira down, 429 beyond ``Retry-After``) is logged and retried after a growing pause (the poll
interval doubling up to ten minutes, at least Jira's ``Retry-After``), from the same watermark.
A poll that fails for what only a person can fix (the connection misconfigured, the grant
revoked or missing a scope, the credentials or a Jira permission refused) is logged as an error
naming the fix, and retried the same way with the connection read again: the watch resumes, from
where it was, once it is fixed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_jira_auth.client.errors import (
    JiraAuthenticationError,
    JiraClientSecretError,
    JiraConfigError,
    JiraError,
    JiraGrantRevokedError,
    JiraPermissionError,
    JiraRateLimitError,
    JiraScopeError,
    JiraValidationError,
)
from airflow_provider_jira_auth.client.jql_time import (
    changes_jql,
    jql_date,
    parse_jira_time,
    zone_from_myself,
)
from airflow_provider_jira_auth.connection_fields import DEFAULT_CONN_ID
from airflow_provider_jira_auth.triggers._client import open_async_client

try:  # Airflow 3.3+: shared streams with a persistence-gated advance
    from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

    HAS_ACK_MODE = True
except ImportError:  # pragma: no cover - Airflow 3.0-3.2
    HAS_ACK_MODE = False

    class SharedStreamProducer:  # type: ignore[no-redef]
        """Stand-in on Airflow versions without shared streams (never instantiated there)."""


if TYPE_CHECKING:
    from airflow_provider_jira_auth.client.async_http import AsyncJiraClient

__all__ = ["JiraIssuesChangedTrigger", "Watermark", "changes_jql", "jql_lower_bound", "new_changes"]

log = logging.getLogger(__name__)

#: fields each poll asks for: enough to name the change
FIELDS = ("updated", "created", "status")
#: issues a search page asks for (Jira sends at most 100 a page when fields are asked for)
PAGE_SIZE = 100
#: the longest pause after failed polls
MAX_OUTAGE_PAUSE = 600.0
#: Poll failures no wait cures: logged as errors (the watch still retries, so that fixing the
#: connection is enough to resume it).
NEEDS_A_PERSON: tuple[type[JiraError], ...] = (
    JiraConfigError,
    JiraGrantRevokedError,
    JiraClientSecretError,
    JiraAuthenticationError,
    JiraScopeError,
    JiraPermissionError,
    JiraValidationError,  # Jira refuses the JQL (a field or project it does not know)
)
#: Airflow 3.3 ack mode: the most batches handed on whose watermark is not stored yet. It bounds
#: what a triggerer killed in a bulk change fires again after its restart (this many events),
#: and keeps a bulk change of any size within the triggerer's subscriber queue; a few in flight
#: keep the triggerer's store-then-confirm rounds overlapping.
UNCONFIRMED_BATCHES = 4
#: the state store key prefix; the rest is a digest of the connection id and the JQL
STATE_KEY_PREFIX = "jira_issues_changed:"


# -- the watermark (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Watermark:
    """What was handed on: the newest change, the start, and the pairs within the overlap.

    :param newest: epoch ms of the newest ``updated`` handed on (the start, before any change).
    :param since: epoch ms the watch began: an older ``updated`` is never a change.
    :param seen: ``(issue id, updated ms)`` pairs handed on with ``updated >= newest - overlap``.
    """

    newest: int
    since: int
    seen: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def start(cls, now: float | None = None) -> Watermark:
        ms = int((time.time() if now is None else now) * 1000)
        return cls(newest=ms, since=ms)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON; the pairs grouped by ``updated`` (a bulk change shares one), ids sorted."""
        grouped: dict[int, list[str]] = {}
        for issue_id, updated in self.seen:
            grouped.setdefault(updated, []).append(issue_id)
        return {
            "newest": self.newest,
            "since": self.since,
            "seen_by_updated": {str(u): sorted(ids) for u, ids in sorted(grouped.items())},
        }

    @classmethod
    def from_json(cls, value: Any) -> Watermark | None:
        """``None`` for anything that is not a stored watermark (then the watch starts afresh).
        Reads the ``seen`` pairs list of earlier watermarks too."""
        try:
            pairs = {(str(i), int(u)) for i, u in value.get("seen") or ()}
            for updated, ids in (value.get("seen_by_updated") or {}).items():
                pairs.update((str(i), int(updated)) for i in ids)
            return cls(newest=int(value["newest"]), since=int(value["since"]), seen=frozenset(pairs))
        except (TypeError, KeyError, ValueError, AttributeError):
            return None


def jql_lower_bound(mark: Watermark, overlap: float, zone: tzinfo | None) -> str:
    """The ``updated >=`` date: ``newest - overlap`` in the user's zone, rounded down to the minute.

    Without a zone the date is written in UTC and moved 14 hours back, which is early enough
    whatever the user's zone (see :func:`~airflow_provider_jira_auth.client.jql_time.jql_date`).
    """
    moment = datetime.fromtimestamp(mark.newest / 1000, tz=timezone.utc) - timedelta(seconds=overlap)
    return jql_date(moment, zone)


def new_changes(
    mark: Watermark, issues: Iterable[dict[str, Any]], overlap: float
) -> tuple[list[dict[str, Any]], Watermark]:
    """The issues that are changes not handed on yet, and the watermark once they are.

    A change is an ``(id, updated)`` pair with ``updated`` at or after the start and within the
    overlap of the newest change, that is not in ``mark.seen``. The new watermark's pairs are
    pruned to the overlap of its (possibly newer) newest change.
    """
    overlap_ms = int(overlap * 1000)
    floor = max(mark.since, mark.newest - overlap_ms)
    fresh: list[dict[str, Any]] = []
    pairs: set[tuple[str, int]] = set()
    for issue in issues:
        stamp = (issue.get("fields") or {}).get("updated")
        if not stamp:
            continue
        pair = (str(issue["id"]), parse_jira_time(stamp))
        if pair[1] < floor or pair in mark.seen or pair in pairs:
            continue
        pairs.add(pair)
        fresh.append(issue)
    if not fresh:
        return [], mark
    newest = max(mark.newest, max(u for _, u in pairs))
    keep = frozenset(p for p in mark.seen | pairs if p[1] >= newest - overlap_ms)
    return fresh, Watermark(newest=newest, since=mark.since, seen=keep)


def event_payload(jql: str, issues: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The event for one batch: plain JSON, the asset event's ``extra["payload"]``."""
    rows = []
    for issue in issues:
        fields = issue.get("fields") or {}
        status = fields.get("status")
        rows.append(
            {
                "id": str(issue["id"]),
                "key": issue.get("key"),
                "updated": fields.get("updated"),
                "created": fields.get("created"),
                "status": status.get("name") if isinstance(status, dict) else status,
            }
        )
    newest = max(rows, key=lambda r: parse_jira_time(r["updated"]))["updated"]
    return {
        "jql": jql,
        "count": len(rows),
        "keys": [r["key"] for r in rows],
        "ids": [r["id"] for r in rows],
        "newest_updated": newest,
        "issues": rows,
    }


def state_key(jira_conn_id: str, jql: str) -> str:
    """Where a watch keeps its watermark in the asset's state store."""
    digest = hashlib.sha256(json.dumps([jira_conn_id, jql]).encode()).hexdigest()[:24]
    return STATE_KEY_PREFIX + digest


# -- where the watermark lives ----------------------------------------------------------------------


class WatermarkStore:
    """The watermark in the watched assets' state store (Airflow 3.3+), one key per watch.

    One trigger may watch for several assets (Airflow shares a trigger between assets whose
    watchers are equal): the watermark is written to each, and read as the oldest of them.
    """

    def __init__(self, accessors: Sequence[Any], key: str) -> None:
        self.accessors = list(accessors)
        self.key = key

    @classmethod
    def for_trigger(cls, store: Any, key: str) -> WatermarkStore | None:
        """From a trigger's ``asset_state_store`` (``None`` when Airflow injected none)."""
        if store is None:
            return None
        # AssetStateStoreAccessors holds one accessor per watched asset.
        accessors = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
        return cls(accessors or [store], key)

    async def load(self) -> Watermark | None:
        marks = [Watermark.from_json(await accessor.aget(self.key)) for accessor in self.accessors]
        if not marks or any(m is None for m in marks):
            found = [m for m in marks if m is not None]
            return min(found, key=lambda m: m.newest) if found else None
        return min(marks, key=lambda m: m.newest)  # type: ignore[arg-type,return-value]

    async def save(self, mark: Watermark) -> None:
        value = mark.to_json()
        for accessor in self.accessors:
            await accessor.aset(self.key, value)


# -- polling ----------------------------------------------------------------------------------------


class IssuesChangedPoller:
    """Polls for changes from ``cursor``; the producer or ``run()`` decides when it is persisted."""

    def __init__(self, config: dict[str, Any], store: WatermarkStore | None) -> None:
        self.jira_conn_id: str = config["jira_conn_id"]
        self.jql: str = config["jql"]
        self.poll_interval = float(config["poll_interval"])
        self.overlap = float(config["overlap"])
        self.max_issues = int(config["max_issues"])
        self.store = store
        self.cursor: Watermark | None = None  # what the next poll starts from
        self.committed: Watermark | None = None  # what the store holds
        self.generation = 0  # bumped by a rewind: a poll in flight then is discarded
        self.zone: tzinfo | None = None

    def rewind(self) -> None:
        """Poll again from the stored watermark (a batch after it was not stored)."""
        self.generation += 1
        self.cursor = self.committed

    async def start(self) -> None:
        loaded = await self.store.load() if self.store is not None else None
        if loaded is None:
            loaded = Watermark.start()
            if self.store is not None:
                # Stored before any poll: a restart before the first change keeps this start.
                await self.store.save(loaded)
            log.info("Jira changes for %r: watching from now", self.jql)
        else:
            log.info("Jira changes for %r: resuming after %s", self.jql, _ms_iso(loaded.newest))
        self.cursor = self.committed = loaded

    async def batches(self) -> AsyncIterator[tuple[dict[str, Any], Watermark]]:
        """Yield ``(event payload, watermark once handed on)`` forever; Jira errors pause, not end."""
        await self.start()
        client: AsyncJiraClient | None = None
        failures = 0
        try:
            while True:
                generation = self.generation
                try:
                    if client is None:
                        client = await self._connect()
                    async for batch in self._poll(client):
                        yield batch
                except Exception as exc:  # Jira down, a 429, the connection or the token broker missing
                    if not isinstance(exc, JiraError) and not _connection_missing(exc):
                        raise  # not an outage: a bug or a broken setup, let it surface
                    failures += 1
                    pause = self._outage_pause(failures, exc)
                    needs_a_person = isinstance(exc, NEEDS_A_PERSON)
                    if needs_a_person and client is not None:
                        # The fix is made in the connection: the next try reads it again.
                        await client.aclose()
                        client = None
                    log.log(
                        logging.ERROR if needs_a_person else logging.WARNING,
                        "Jira changes for %r: poll failed (%s: %s)%s; next try in %.0f s from %s",
                        self.jql,
                        type(exc).__name__,
                        exc,
                        ": no wait cures this, and the watch resumes once it is fixed" if needs_a_person else "",
                        pause,
                        _ms_iso(self.cursor.newest if self.cursor else 0),
                    )
                    await asyncio.sleep(pause)
                    continue
                failures = 0
                if generation != self.generation:
                    continue  # rewound meanwhile: poll again from the stored watermark
                await asyncio.sleep(self.poll_interval)
        finally:
            if client is not None:
                await client.aclose()

    async def _poll(self, client: AsyncJiraClient) -> AsyncIterator[tuple[dict[str, Any], Watermark]]:
        """One poll: every page of changes from the cursor's lower bound, handed on in batches of
        ``max_issues`` as they are read, in ``updated`` order; ``self.cursor`` moves with each batch.

        However many issues changed in one instant, the poll pages on past those already handed
        on (a bulk edit of thousands is fired in full, ``max_issues`` an event). A page that holds
        only issues this poll has already read, while Jira says more follow, means Jira's paging
        is not moving: that is said at WARNING and the poll ends there, never a silent stall.
        """
        generation = self.generation
        mark = self.cursor
        assert mark is not None
        query = changes_jql(self.jql, jql_lower_bound(mark, self.overlap, self.zone))
        floor = max(mark.since, mark.newest - int(self.overlap * 1000))
        read: set[tuple[str, int]] = set()  # what this poll has read, to tell a page that repeats
        batch: list[dict[str, Any]] = []
        pages = 0
        async for page in client.search_pages(query, fields=FIELDS, page_size=PAGE_SIZE):
            if generation != self.generation:
                return  # rewound: the next poll starts from the stored watermark
            pages += 1
            unread = 0
            for issue in page:
                pair = _change(issue)
                if pair is None or pair in read:
                    continue
                read.add(pair)
                unread += 1
                if pair[1] < floor or pair in mark.seen:
                    continue  # handed on before (the overlap reads it again), or before the start
                batch.append(issue)
                if len(batch) >= self.max_issues:
                    yield self._hand_on(batch)
                    batch = []
                    if generation != self.generation:
                        return
            if page and not unread:
                log.warning(
                    "Jira changes for %r: page %d of this poll held only issues it had already read "
                    "(%d, e.g. %s) although Jira said more follow: Jira's paging is not moving forward. "
                    "Ending this poll after %d issue(s); the next poll starts again from %s",
                    self.jql,
                    pages,
                    len(page),
                    ", ".join(str(i.get("key")) for i in page[:5]),
                    len(read),
                    _ms_iso(self.cursor.newest if self.cursor else mark.newest),
                )
                break
        if batch and generation == self.generation:
            yield self._hand_on(batch)

    def _hand_on(self, batch: list[dict[str, Any]]) -> tuple[dict[str, Any], Watermark]:
        """The event for ``batch`` and the watermark once it is handed on (the new cursor)."""
        assert self.cursor is not None
        fresh, after = new_changes(self.cursor, batch, self.overlap)
        self.cursor = after
        return event_payload(self.jql, fresh), after

    def _outage_pause(self, failures: int, exc: BaseException) -> float:
        pause = min(self.poll_interval * 2 ** (failures - 1), max(self.poll_interval, MAX_OUTAGE_PAUSE))
        if isinstance(exc, JiraRateLimitError) and exc.retry_after:
            pause = max(pause, float(exc.retry_after))
        return pause

    async def _connect(self) -> AsyncJiraClient:
        client = await open_async_client(self.jira_conn_id, ("search_issues",), "JiraIssuesChangedTrigger")
        try:
            self.zone = await self._user_zone(client)
        except BaseException:
            await client.aclose()
            raise
        return client

    async def _user_zone(self, client: AsyncJiraClient) -> tzinfo | None:
        """The time zone Jira reads JQL dates in: the user's (``GET /myself``); ``None`` if unknown."""
        try:
            return zone_from_myself(await client.request("GET", "myself"))
        except JiraError as exc:
            log.warning("Jira changes: the user's time zone is unknown (%s); querying 14 h wider", exc)
            return None


def _change(issue: dict[str, Any]) -> tuple[str, int] | None:
    """An issue's change as ``(id, updated ms)``; ``None`` without an ``updated``."""
    stamp = (issue.get("fields") or {}).get("updated")
    return (str(issue["id"]), parse_jira_time(stamp)) if stamp else None


def _connection_missing(exc: BaseException) -> bool:
    """The connection is not defined (yet): worth waiting for, like an outage."""
    from airflow.exceptions import AirflowNotFoundException

    return isinstance(exc, AirflowNotFoundException)


def _ms_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


# -- Airflow 3.3 ack mode ---------------------------------------------------------------------------

#: trigger identity -> its watermark store, registered by shared_stream_key() for the producer,
#: which the triggerer builds from the trigger's serialized kwargs alone
_STORES: dict[str, WatermarkStore] = {}


def _identity(kwargs: dict[str, Any]) -> str:
    return json.dumps(kwargs, sort_keys=True, default=str)


class _WatermarkProducer(SharedStreamProducer):
    """Hands batches to the triggerer; writes the watermark once their asset events are stored."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.poller = IssuesChangedPoller(kwargs, _STORES.get(_identity(kwargs)))
        self.unconfirmed = 0  # batches handed on that no advance() has settled yet
        self._settled = asyncio.Event()

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        async for payload, after in self.poller.batches():
            while self.unconfirmed >= UNCONFIRMED_BATCHES:
                self._settled.clear()
                await self._settled.wait()
            self.unconfirmed += 1
            yield payload, (self.poller.generation, after)

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        newest: Watermark | None = None
        rewind = False
        for item in batch:
            generation, after = item.broker_payload
            if generation != self.poller.generation or rewind:
                continue  # handed on before a rewind: it is polled and fired again
            if item.outcome.is_clean:
                newest = after
            else:
                log.warning("Jira changes for %r: an event was not stored (%s); polling it again", self.poller.jql, item.outcome)
                rewind = True
        if newest is not None:
            if self.poller.store is not None:
                try:
                    await self.poller.store.save(newest)
                    log.info(
                        "Jira changes for %r: %d event(s) stored; watermark now %s",
                        self.poller.jql,
                        len(batch),
                        _ms_iso(newest.newest),
                    )
                except Exception:
                    # The next advance writes a newer one; a restart before it fires this batch again.
                    log.exception("Jira changes for %r: could not store the watermark", self.poller.jql)
            self.poller.committed = newest
        if rewind:
            self.poller.rewind()
        self.unconfirmed = max(0, self.unconfirmed - len(batch))
        self._settled.set()


# -- the trigger ------------------------------------------------------------------------------------


class JiraIssuesChangedTrigger(BaseEventTrigger):
    """Fires once per batch of issues created or updated that match ``jql``.

    For ``Asset(..., watchers=[AssetWatcher(name=..., trigger=JiraIssuesChangedTrigger(...))])``.
    The watch starts when the trigger first runs: earlier changes are not events.

    :param jql: which issues to watch, e.g. ``project = ENG AND status = Done``; an ``ORDER BY``
        is dropped. Empty: every issue the user can see.
    :param jira_conn_id: the ``jira_cloud`` connection.
    :param poll_interval: seconds between polls.
    :param overlap: how far (seconds) each poll reaches back before the newest change seen, for
        changes Jira indexes late; the ``(id, updated)`` pairs in it are not fired twice.
    :param max_issues: most issues per event. A poll that finds more (a bulk change of
        thousands) reads on and fires them all, ``max_issues`` an event, in ``updated`` order.
    """

    def __init__(
        self,
        *,
        jql: str,
        jira_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        overlap: float = 120.0,
        max_issues: int = 100,
    ) -> None:
        super().__init__()
        if not isinstance(jql, str):
            raise TypeError("jql must be a string")
        if float(poll_interval) <= 0 or float(overlap) < 0 or int(max_issues) < 1:
            raise ValueError("poll_interval must be > 0, overlap >= 0 and max_issues >= 1")
        self.jql = jql
        self.jira_conn_id = jira_conn_id
        self.poll_interval = float(poll_interval)
        self.overlap = float(overlap)
        self.max_issues = int(max_issues)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "jql": self.jql,
                "jira_conn_id": self.jira_conn_id,
                "poll_interval": self.poll_interval,
                "overlap": self.overlap,
                "max_issues": self.max_issues,
            },
        )

    def _store(self) -> WatermarkStore | None:
        return WatermarkStore.for_trigger(getattr(self, "asset_state_store", None), state_key(self.jira_conn_id, self.jql))

    # Airflow 3.3+: one shared stream per trigger, in ack mode.

    def shared_stream_key(self) -> Hashable | None:
        store = self._store()
        if not HAS_ACK_MODE or store is None:
            return None  # no place to keep the watermark: the in-memory run() below
        kwargs = self.serialize()[1]
        _STORES[_identity(kwargs)] = store
        return ("jira-issues-changed", _identity(kwargs))

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        return _WatermarkProducer(kwargs)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for payload in shared_stream:
            yield TriggerEvent(payload)

    # Airflow 3.0-3.2 (or no watched asset): the watermark in memory.

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = IssuesChangedPoller(self.serialize()[1], self._store())
        async for payload, after in poller.batches():
            yield TriggerEvent(payload)
            # The triggerer has taken the event (not necessarily stored it yet).
            if poller.store is not None:
                await poller.store.save(after)
            poller.committed = after
