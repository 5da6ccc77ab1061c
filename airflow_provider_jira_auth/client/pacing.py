"""Pacing to Jira Cloud's rate limits: one :class:`SitePacer` per site, shared by every client.

Jira applies three limits at once, each with its own scope (Atlassian: "Rate limiting" and
"Build an app that respects rate limits"), and says which one refused a call in the 429's
``RateLimit-Reason``:

* ``jira-burst-based``: requests per second for one endpoint and method. The pacer keeps a
  token bucket per (method, endpoint), learned from ``X-RateLimit-Limit`` and
  ``X-RateLimit-Remaining``, which Jira sends on every answer. Requests are spaced to a little
  under that rate (:data:`BURST_SHARE`), so the server's bucket never runs dry; a burst 429
  empties that bucket only: other endpoints go on.
* ``jira-per-issue-on-write``: writes to one issue (20 per 2 s, 100 per 30 s). Writes to an
  issue are spaced to those windows; a 429 for this reason holds writes to that issue until the
  reset.
* ``jira-quota-global-based`` / ``jira-quota-tenant-based``: the hourly quota (points for OAuth
  apps). Everything sent to the site waits until the reset (``Retry-After``, else
  ``X-RateLimit-Reset``).

How waits are computed: :meth:`SitePacer.reserve` takes the pacer's lock only to compute when
this request may go and to book that slot (so threads and tasks that ask together get
successive slots), then returns the seconds to wait. The caller sleeps outside any lock:
``time.sleep`` in a thread, ``asyncio.sleep`` on an event loop (:meth:`SitePacer.wait_turn`,
:meth:`SitePacer.await_turn`), so the async side never blocks its loop. After the sleep the
site-wide pause is checked again: a quota 429 seen while a request slept holds that request too.

The registry (:func:`pacer_for`) keys pacers by the site's REST root, so every client of the
process for one site, sync or async, shares one pacer. No Airflow imports.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger(__name__)

BURST_REASON = "jira-burst-based"
PER_ISSUE_REASON = "jira-per-issue-on-write"
QUOTA_REASONS = frozenset({"jira-quota-global-based", "jira-quota-tenant-based"})

#: Share of the advertised burst rate the pacer sends at: the slack keeps the server's bucket
#: from running dry when answers arrive unevenly (network jitter, threads waking late).
BURST_SHARE = 0.97

#: Jira's per-issue write windows: (writes, seconds).
PER_ISSUE_WINDOWS: tuple[tuple[int, float], ...] = ((20, 2.0), (100, 30.0))

#: Longest pause the pacer takes from a header; a larger value is capped (the retry policy
#: decides separately whether waiting that long in-process is worth it).
MAX_PAUSE = 3600.0

#: Methods that write; per-issue spacing applies to them.
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})

# Path segments that name one resource (an issue key, a numeric id): an endpoint is its path
# with those replaced, so "issue/ENG-1" and "issue/ENG-2" share one burst bucket.
_RESOURCE_SEGMENT = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*-\d+|\d+)$")
_ISSUE_COLLECTIONS = frozenset({"bulk", "bulkfetch", "picker", "createmeta", "properties", "archive", "unarchive"})


def endpoint_of(route: str) -> str:
    """The endpoint a route belongs to: ``issue/ENG-1/comment`` -> ``issue/{id}/comment``."""
    return "/".join("{id}" if _RESOURCE_SEGMENT.match(part) else part for part in route.strip("/").split("/"))


def issue_written(method: str, route: str) -> str | None:
    """The issue key or id a write goes to (``PUT issue/ENG-1``, ``POST issue/ENG-1/comment``), else None."""
    if method not in WRITE_METHODS:
        return None
    parts = route.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "issue" and parts[1] not in _ISSUE_COLLECTIONS and parts[1]:
        return parts[1].upper()
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def seconds_until_reset(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds until an ``X-RateLimit-Reset`` (ISO 8601, e.g. ``2026-03-02T10:15:00Z``); None if unreadable."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@dataclass
class _Bucket:
    """A token bucket in virtual-scheduling form (GCRA).

    ``tat`` (theoretical arrival time) is when the next request would be due if requests went
    exactly at ``rate``; a request may go ``burst - 1`` intervals earlier than that.
    """

    rate: float  # requests per second the pacer sends at
    burst: float  # requests that may go at once
    tat: float = 0.0

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    def book(self, now: float) -> float:
        """Book the next slot at or after ``now``; return when it is."""
        slot = max(now, self.tat - (self.burst - 1) * self.interval)
        self.tat = max(self.tat, slot) + self.interval
        return slot

    def at_most(self, remaining: float, now: float) -> None:
        """The server says ``remaining`` requests are left now: never assume more."""
        self.tat = max(self.tat, now + (self.burst - min(remaining, self.burst)) * self.interval)


@dataclass
class PacerStats:
    """What a pacer did: for logs and the benchmark."""

    sent: int = 0  # requests that asked for a slot (retries included)
    rate_limited: int = 0
    waits: int = 0
    waited: float = 0.0
    quota_pauses: int = 0
    #: The latest quota figures Jira sent (``X-RateLimit-Limit``/``-Remaining`` with a quota reason).
    quota_limit: float | None = None
    quota_remaining: float | None = None

    def snapshot(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SitePacer:
    """Pacing for one Jira site, shared by every thread, task and client of the process for it.

    :param site: the site's REST root, for logs.
    :param burst_share: share of the advertised burst rate to send at.
    :param clock: a monotonic clock (seconds).
    """

    site: str
    burst_share: float = BURST_SHARE
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict, init=False, repr=False)
    _paused_until: float = field(default=0.0, init=False, repr=False)
    _issue_writes: dict[str, deque[float]] = field(default_factory=dict, init=False, repr=False)
    _issue_held: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    stats: PacerStats = field(default_factory=PacerStats, init=False)

    # -- before sending ---------------------------------------------------------------------

    def reserve(self, method: str, route: str) -> float:
        """Book this request's slot; the seconds to wait before sending it (0: now)."""
        with self._lock:
            now = self.clock()
            start = max(now, self._paused_until)
            bucket = self._buckets.get((method, endpoint_of(route)))
            if bucket is not None:
                start = max(start, bucket.book(start))
            issue = issue_written(method, route)
            if issue is not None:
                start = self._book_issue_write(issue, start, now)
            self.stats.sent += 1
            wait = start - now
            if wait > 0:
                self.stats.waits += 1
                self.stats.waited += wait
            return wait

    def pause_left(self) -> float:
        """Seconds until the site-wide pause ends (0: none)."""
        with self._lock:
            return max(0.0, self._paused_until - self.clock())

    def wait_turn(
        self, method: str, route: str, sleep: Callable[[float], Any] = time.sleep, *, max_wait: float | None = None
    ) -> None:
        """In a thread: wait for this request's slot, and for any site-wide pause begun meanwhile.

        :param max_wait: a site-wide pause longer than this is not waited for in-process:
            :class:`~.errors.JiraRateLimitError` is raised instead, nothing sent (the caller's
            task retry, or the trigger's outage pause, takes over).
        """
        self._refuse_long_pause(method, route, max_wait)
        wait = self.reserve(method, route)
        while wait > 0:
            sleep(wait)
            wait = self.pause_left()
            if wait > 0:
                self._refuse_long_pause(method, route, max_wait)

    async def await_turn(self, method: str, route: str, *, max_wait: float | None = None) -> None:
        """On an event loop: the same as :meth:`wait_turn`, sleeping with ``asyncio.sleep``."""
        self._refuse_long_pause(method, route, max_wait)
        wait = self.reserve(method, route)
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.pause_left()
            if wait > 0:
                self._refuse_long_pause(method, route, max_wait)

    def _refuse_long_pause(self, method: str, route: str, max_wait: float | None) -> None:
        left = self.pause_left()
        if max_wait is None or left <= max_wait:
            return
        from airflow_provider_jira_auth.client.errors import JiraRateLimitError

        raise JiraRateLimitError(
            method,
            route,
            429,
            error_messages=[f"not sent: Jira's quota for this site is spent for another {left:.0f} s"],
            hint="Jira's hourly quota resets then; the task's retries (or a later run) can send it",
            retry_after=left,
            reason="quota",
        )

    def _book_issue_write(self, issue: str, start: float, now: float) -> float:
        longest = PER_ISSUE_WINDOWS[-1][1]
        held = self._issue_held.get(issue)
        if held is not None:
            if held <= now:
                del self._issue_held[issue]
            start = max(start, held)
        # Most recently written last: issues whose windows have run out are dropped from the front,
        # so the bookkeeping holds only the issues written in the last window, however long the
        # process (a triggerer, a worker) lives, at a constant cost a write.
        sent = self._issue_writes.pop(issue, None) or deque()
        while sent and sent[0] <= now - longest:
            sent.popleft()
        for count, seconds in PER_ISSUE_WINDOWS:
            if len(sent) >= count:
                start = max(start, sent[-count] + seconds)
        sent.append(start)
        self._issue_writes[issue] = sent
        while self._issue_writes:
            oldest = next(iter(self._issue_writes))
            if self._issue_writes[oldest][-1] > now - longest:
                break
            del self._issue_writes[oldest]
        return start

    # -- after an answer --------------------------------------------------------------------

    def observe(self, method: str, route: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer's rate-limit headers (every answer carries them on Jira Cloud)."""
        reason = _header(headers, "RateLimit-Reason")
        limit = _number(_header(headers, "X-RateLimit-Limit"))
        remaining = _number(_header(headers, "X-RateLimit-Remaining"))
        if status != 429 and limit is None:
            if self._buckets:  # the endpoint no longer advertises a limit: stop pacing it
                with self._lock:
                    self._buckets.pop((method, endpoint_of(route)), None)
            return
        retry_after = _number(_header(headers, "Retry-After"))
        reset_in = seconds_until_reset(_header(headers, "X-RateLimit-Reset"))
        with self._lock:
            now = self.clock()
            if reason in QUOTA_REASONS:
                self.stats.quota_limit, self.stats.quota_remaining = limit, remaining
                if status == 429:
                    self._pause_site(now, reason, retry_after, reset_in)
                return
            if status == 429:
                self.stats.rate_limited += 1
            if reason == PER_ISSUE_REASON:
                issue = issue_written(method, route)
                if issue is not None and status == 429:
                    hold = min(MAX_PAUSE, retry_after if retry_after is not None else (reset_in or 1.0))
                    for ended in [key for key, until in self._issue_held.items() if until <= now]:
                        del self._issue_held[ended]  # holds are rare: a scan here keeps them few
                    self._issue_held[issue] = max(self._issue_held.get(issue, 0.0), now + hold)
                return
            # A burst limit (the reason given, or none: the headers of a successful answer).
            key = (method, endpoint_of(route))
            bucket = self._buckets.get(key)
            if limit is not None and limit > 0:
                rate = max(limit * self.burst_share, 0.1)
                if bucket is None:
                    bucket = self._buckets[key] = _Bucket(rate=rate, burst=max(1.0, limit), tat=now)
                    log.debug("Jira %s %s: pacing to %.3g requests/s", method, key[1], rate)
                elif bucket.rate != rate:
                    bucket.rate, bucket.burst = rate, max(1.0, limit)
            if bucket is None:
                return
            if status == 429:
                bucket.at_most(0, now)
            elif remaining is not None:
                bucket.at_most(remaining, now)

    def _pause_site(self, now: float, reason: str, retry_after: float | None, reset_in: float | None) -> None:
        pause = retry_after if retry_after is not None else reset_in
        if pause is None:
            pause = 1.0
        pause = min(MAX_PAUSE, max(pause, reset_in or 0.0))
        until = now + pause
        began = self._paused_until <= now
        self._paused_until = max(self._paused_until, until)
        if began:  # answers already on the way only extend it, without a log line each
            self.stats.quota_pauses += 1
            remaining = self.stats.quota_remaining
            log.warning(
                "Jira %s: %s; every request to this site waits %.1f s, until the quota resets%s",
                self.site,
                reason,
                pause,
                "" if remaining is None else f" ({remaining:g} left of {self.stats.quota_limit or 0:g})",
            )


_registry: dict[str, SitePacer] = {}
_registry_lock = threading.Lock()


def pacer_for(site: str) -> SitePacer:
    """The process's pacer for a site (its REST root as the client normalises it)."""
    key = site.rstrip("/").lower()
    with _registry_lock:
        pacer = _registry.get(key)
        if pacer is None:
            pacer = _registry[key] = SitePacer(site)
        return pacer


def forget_pacers(origin: str) -> int:
    """Drop the process's pacers for every site under ``origin`` (``scheme://host:port``).

    For a server that now answers at an address another one used before, such as an emulator
    given a port a stopped one had: what the old one said of its limits is not this one's.
    Returns how many were dropped.
    """
    prefix = origin.rstrip("/").lower() + "/"
    with _registry_lock:
        gone = [key for key in _registry if key.startswith(prefix)]
        for key in gone:
            del _registry[key]
    return len(gone)
