"""Injected faults: failing statuses, proxy pages, dropped connections and realistic 429s."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ._http import Response, jira_error
from ._runtime import iso_utc

class _Rule(Protocol):
    times: int

    def matches(self, method: str, path: str) -> bool: ...


R = TypeVar("R", bound=_Rule)

# Responder: builds the answer when the rule fires (now -> response), None means: drop the socket.
Responder = Callable[[float], Response | None]


@dataclass
class FaultRule:
    method: str | None  # None: any method
    pattern: re.Pattern[str] | None  # searched in the request path; None: any Jira REST path
    times: int
    respond: Responder
    counter: str = "faults_injected"  # the stats counter bumped when it fires
    # True: the request is carried out first and only its answer is lost (a 503 or a dropped
    # socket after Jira acted): the case a client must not answer by sending the request again.
    after_work: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.pattern is None:
            return "/rest/api/" in path
        return self.pattern.search(path) is not None


class RuleBook(Generic[R]):
    """Rules fire in the order they were added; each one for its next ``times`` matching calls."""

    def __init__(self) -> None:
        self._rules: list[R] = []

    def add(self, rule: R) -> None:
        if rule.times > 0:
            self._rules.append(rule)

    def clear(self) -> None:
        self._rules.clear()

    def take(self, method: str, path: str) -> R | None:
        for rule in self._rules:
            if rule.matches(method, path):
                rule.times -= 1
                if rule.times <= 0:
                    self._rules.remove(rule)
                return rule
        return None


FaultBook = RuleBook[FaultRule]


def failure(status: int, headers: dict[str, str] | None, body: Any, drop: bool) -> Responder:
    """What ``fail_next`` answers: ``body`` str is sent as an HTML page (a proxy's), dict/list as JSON."""
    if drop:
        return lambda now: None
    extra = dict(headers or {})
    content_type = next((v for k, v in extra.items() if k.lower() == "content-type"), None)
    extra = {k: v for k, v in extra.items() if k.lower() != "content-type"}
    if body is None:
        template = jira_error(status, [f"HTTP {status} injected by the Jira Cloud emulator"], headers=extra)
    elif isinstance(body, (bytes, str)):
        raw = body.encode() if isinstance(body, str) else body
        template = Response(status, raw, content_type or "text/html;charset=UTF-8", extra)
    else:
        template = Response(status, json.dumps(body).encode(), content_type or "application/json;charset=UTF-8", extra)
    return lambda now: Response(template.status, template.body, template.content_type, dict(template.headers))


def rate_limited(method: str | None, retry_after: str | None, reason: str) -> Responder:
    """A 429 with the headers Jira Cloud sends (Retry-After may be omitted, as gateways have done)."""
    # Burst limits: about 100 req/s for GET and POST, 50 for PUT and DELETE.
    limit = "50" if method in ("PUT", "DELETE") else "100"

    def respond(now: float) -> Response:
        try:
            wait = max(float(retry_after), 1.0) if retry_after is not None else 1.0
        except ValueError:
            wait = 1.0
        headers = {
            "X-RateLimit-Limit": limit,
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": iso_utc(now + wait),
            "X-RateLimit-NearLimit": "true",
            "RateLimit-Reason": reason,
        }
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return jira_error(429, ["Rate limit exceeded."], headers=headers)

    return respond


@dataclass
class DelayRule:
    """The next ``times`` matching calls are answered ``seconds`` late."""

    method: str | None
    pattern: re.Pattern[str]
    times: int
    seconds: float

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.pattern.search(path) is not None


DelayBook = RuleBook[DelayRule]


@dataclass(frozen=True)
class AnswerDelays:
    """Every Jira REST answer comes ``per_call`` seconds late, plus ``per_issue`` for each issue it
    carries with fields: the latency of the real service, where a search page of 100 issues takes a
    few hundred milliseconds. Issues listed by id or key only (``fields: ["id"]``, what Jira serves
    up to 5,000 a page) are charged ``per_id`` each."""

    per_call: float = 0.0
    per_issue: float = 0.0
    per_id: float = 0.0

    def __post_init__(self) -> None:
        if min(self.per_call, self.per_issue, self.per_id) < 0:
            raise ValueError("answer delays must be >= 0 seconds")

    @property
    def active(self) -> bool:
        return bool(self.per_call or self.per_issue or self.per_id)

    def seconds(self, issues: int, ids: int) -> float:
        return self.per_call + self.per_issue * issues + self.per_id * ids


class FaultMix:
    """Random faults on Jira REST calls, drawn per call from a seeded generator.

    :param server_errors: share of calls answered 503.
    :param dropped: share of calls whose connection is dropped without an answer.
    :param after_work: share of those faults that strike after the call was carried out.
    :param methods: the methods it applies to (default: all).
    """

    def __init__(
        self, server_errors: float, dropped: float, after_work: float, seed: int, methods: tuple[str, ...] | None
    ) -> None:
        import random

        self.server_errors, self.dropped, self.after_work = server_errors, dropped, after_work
        self.methods = methods
        self._rng = random.Random(seed)

    def draw(self, method: str, path: str) -> FaultRule | None:
        if "/rest/api/" not in path or (self.methods is not None and method not in self.methods):
            return None
        roll = self._rng.random()
        if roll < self.server_errors:
            respond = failure(503, {"Retry-After": "1"}, None, False)
        elif roll < self.server_errors + self.dropped:
            respond = failure(0, None, None, True)
        else:
            return None
        return FaultRule(method, None, 1, respond, after_work=self._rng.random() < self.after_work)


class RequestRateLimit:
    """At most ``per_second`` Jira REST calls a second (a token bucket), 429 beyond, as Jira's burst limit."""

    def __init__(self, per_second: float, reason: str = "jira-burst-based") -> None:
        self.per_second = per_second
        self.reason = reason
        self._tokens = per_second
        self._last: float | None = None

    def check(self, path: str, now: float) -> Response | None:
        if "/rest/api/" not in path:
            return None
        if self._last is not None:
            self._tokens = min(self.per_second, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        remaining = self._tokens - 1
        if remaining < 0:
            wait = max(1, math.ceil(-remaining / self.per_second))
            headers = {
                "Retry-After": str(wait),
                "X-RateLimit-Limit": str(int(self.per_second)),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": iso_utc(now + wait),
                "X-RateLimit-NearLimit": "true",
                "RateLimit-Reason": self.reason,
            }
            return jira_error(429, ["Rate limit exceeded."], headers=headers)
        self._tokens = remaining
        return None

    def headers(self) -> dict[str, str]:
        """The headers Jira puts on every answer: the limit, what is left, and a warning under 20%."""
        left = max(0, math.floor(self._tokens))
        headers = {"X-RateLimit-Limit": str(int(self.per_second)), "X-RateLimit-Remaining": str(left)}
        if left < 0.2 * self.per_second:
            headers["X-RateLimit-NearLimit"] = "true"
        return headers


class QuotaWindow:
    """The hourly quota is spent: every Jira REST call is answered 429 until ``until`` (the reset)."""

    def __init__(self, until: float, reason: str, limit: int) -> None:
        self.until = until
        self.reason = reason
        self.limit = limit

    def check(self, path: str, now: float) -> Response | None:
        if "/rest/api/" not in path or now >= self.until:
            return None
        headers = {
            "Retry-After": str(max(1, math.ceil(self.until - now))),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": iso_utc(self.until),
            "X-RateLimit-NearLimit": "true",
            "RateLimit-Reason": self.reason,
        }
        return jira_error(429, ["Rate limit exceeded."], headers=headers)
