"""The one retry policy of the client, built on tenacity.

Follows Atlassian's advice (Atlassian: "Rate limiting" for Jira Cloud): honor ``Retry-After`` as a minimum,
otherwise back off exponentially from ~2 s with jitter x0.7-1.3, cap ~30 s, about 4 retries, and
retry automatically only what is safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)
from urllib3.exceptions import NewConnectionError

from airflow_provider_jira_auth.client.pacing import SitePacer

log = logging.getLogger(__name__)

#: Methods whose repetition has the same effect as sending them once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

#: POST endpoints (relative to ``/rest/api/3``) that only read: safe to repeat like a GET.
READ_ONLY_POSTS = frozenset(
    {"search/jql", "search/approximate-count", "issue/bulkfetch", "changelog/bulkfetch", "comment/list", "jql/parse", "jql/match"}
)

#: Statuses that may carry ``Retry-After``.
RETRY_AFTER_STATUSES = frozenset({429, 503})

#: Gateway and availability errors: the request may or may not have been processed.
GATEWAY_STATUSES = frozenset({502, 503, 504})

#: Errors raised while talking to the server: no (complete) HTTP answer came back.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def is_safe_to_repeat(method: str, path: str) -> bool:
    """Whether sending ``method path`` twice has the effect of sending it once.

    :param method: upper-case HTTP method.
    :param path: path relative to ``/rest/api/3``, without query string or surrounding ``/``.
    """
    return method in IDEMPOTENT_METHODS or (method == "POST" and path in READ_ONLY_POSTS)


def nothing_was_sent(exc: BaseException) -> bool:
    """Whether the request failed before a connection existed, so the server saw nothing."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)  # urllib3's MaxRetryError
        return isinstance(reason, NewConnectionError)
    return False


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    :return: ``None`` when the header is absent or unreadable; never negative.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class RetryableOutcome(Exception):
    """An attempt that failed in a way worth repeating; carried through tenacity to the wait."""

    def __init__(
        self,
        method: str,
        path: str,
        *,
        response: Any = None,
        error: BaseException | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(method, path)
        self.method = method
        self.path = path
        self.response = response
        self.error = error
        self.retry_after = retry_after

    @property
    def what(self) -> str:
        """The status or the transport error's type, for logs (never its message)."""
        if self.response is not None:
            return f"HTTP {self.response.status_code}"
        return type(self.error).__name__


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long the client waits before repeating a request.

    What is retried:

    * 429 for every method: a rate-limited request was refused before any work was done, so
      repeating it is safe even for a create;
    * 502/503/504 and transport errors (connection dropped, read timeout) only for requests
      that are safe to repeat (:func:`is_safe_to_repeat`): the server may have acted already;
    * a connect timeout or refused connection for every method: nothing was sent.

    How long: 429 and 503 wait at least ``Retry-After`` (and at least ``retry_after_floor``);
    otherwise exponential backoff ``backoff_initial * 2**n`` capped at ``backoff_cap``, times a
    random factor from ``jitter``. A ``Retry-After`` above ``max_retry_after`` is not waited for:
    the error is raised at once, for the caller (an Airflow task retry) to handle.

    :param max_attempts: attempts in total, the first one included.
    :param backoff_initial: first backoff in seconds.
    :param backoff_cap: largest backoff in seconds (before jitter).
    :param jitter: range of the random factor applied to each wait.
    :param retry_after_floor: smallest wait after a ``Retry-After``, so ``Retry-After: 0`` cannot spin.
    :param max_retry_after: longest ``Retry-After`` worth waiting for in-process.
    :param max_total_wait: stop retrying once this many seconds have passed since the first
        attempt (``None``: no limit but ``max_attempts``).
    :param sleep: called with the seconds to wait; tests pass a no-op.

    The same policy runs sync calls (:meth:`call`, in threads) and async ones (:meth:`acall`,
    on an event loop): the same decisions, the same waits, the same logs. Both take the site's
    :class:`~.pacing.SitePacer`, which each attempt waits for before it is sent and which learns
    from each answer's rate-limit headers.
    """

    max_attempts: int = 5
    backoff_initial: float = 2.0
    backoff_cap: float = 30.0
    jitter: tuple[float, float] = (0.7, 1.3)
    retry_after_floor: float = 1.0
    max_retry_after: float = 120.0
    max_total_wait: float | None = None
    sleep: Callable[[float], Any] = field(default=time.sleep, repr=False, compare=False)
    _retrying: Retrying = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        low, high = self.jitter
        if not 0 < low <= high:
            raise ValueError("RetryPolicy.jitter must be (low, high) with 0 < low <= high")
        # Built once: tenacity keeps per-call state in thread-locals, so one controller serves
        # every request and thread of this policy without per-request construction.
        retrying = Retrying(
            stop=self._stop(),
            wait=self._wait,
            retry=retry_if_exception_type(RetryableOutcome),
            sleep=self.sleep,
            before_sleep=self._log_retry,
            retry_error_callback=_give_up,
        )
        object.__setattr__(self, "_retrying", retrying)

    def _stop(self) -> Any:
        if self.max_total_wait is None:
            return stop_after_attempt(self.max_attempts)
        return stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_total_wait)

    # -- decisions --------------------------------------------------------------------------

    def should_retry_status(self, method: str, path: str, status: int, *, repeatable: bool = False) -> bool:
        """Whether an answer with ``status`` is worth repeating for ``method path``.

        ``repeatable`` marks a call the caller knows is safe to send twice whatever its
        method (a token refresh, see auth/oauth2.py): any 5xx is then retried.
        """
        if status == 429:
            # A rate-limited request was refused before any work was done: repeating it is safe
            # for every method, a create included.
            return True
        if repeatable:
            return status >= 500
        # A gateway error may come after Jira acted: only what is safe to repeat is repeated.
        return status in GATEWAY_STATUSES and is_safe_to_repeat(method, path)

    def should_retry_error(self, method: str, path: str, exc: BaseException, *, repeatable: bool = False) -> bool:
        """Whether a transport error is worth repeating for ``method path``."""
        if isinstance(exc, requests.exceptions.SSLError):
            return False  # a certificate problem does not heal by itself
        if nothing_was_sent(exc):
            return True
        return isinstance(exc, TRANSPORT_ERRORS) and (repeatable or is_safe_to_repeat(method, path))

    def backoff(self, retry_number: int) -> float:
        """Wait before retry ``retry_number`` (1 for the first retry) without ``Retry-After``."""
        base = min(self.backoff_cap, self.backoff_initial * 2.0 ** (retry_number - 1))
        return base * random.uniform(*self.jitter)

    def wait_for_retry_after(self, retry_after: float) -> float:
        """Wait after a ``Retry-After``: never less than it, jittered upwards only."""
        return max(retry_after, self.retry_after_floor) * random.uniform(1.0, max(1.0, self.jitter[1]))

    # -- running ----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        send: Callable[[], requests.Response],
        *,
        repeatable: bool = False,
        pacer: SitePacer | None = None,
    ) -> requests.Response:
        """Run ``send`` until it gives an answer not worth repeating, or attempts run out.

        :param method: upper-case HTTP method, for the decisions and the logs.
        :param path: path relative to ``/rest/api/3`` without query, for the decisions and the logs.
        :param repeatable: the caller vouches that sending twice is harmless whatever the method.
        :param pacer: the site's pacer: each attempt waits its turn and its answer is shown to it.
        :return: the last response; the caller maps error statuses to exceptions.
        :raises requests.RequestException: the last transport error, when no answer came back.
        """
        return self._retrying(self._attempt, method, path, send, repeatable, pacer)

    async def acall(
        self,
        method: str,
        path: str,
        send: Callable[[], Awaitable[Any]],
        *,
        retry_error: Callable[[BaseException], bool],
        errors: tuple[type[BaseException], ...],
        pacer: SitePacer | None = None,
        repeatable: bool = False,
    ) -> Any:
        """:meth:`call` for asyncio: the same decisions and waits, slept with ``asyncio.sleep``.

        :param send: a coroutine function giving one answer (an ``httpx.Response``: only
            ``status_code``, ``headers`` and ``aclose`` are used).
        :param errors: the transport errors ``send`` may raise; others propagate at once.
        :param retry_error: whether such an error is worth repeating for this call.
        :return: the last response; raises the last transport error when no answer came back.
        """
        retrying = AsyncRetrying(  # one per call: tenacity keeps its state per thread, not per task
            stop=self._stop(),
            wait=self._wait,
            retry=retry_if_exception_type(RetryableOutcome),
            sleep=self._async_sleep,
            before_sleep=self._log_retry,
            retry_error_callback=_give_up,
        )
        return await retrying(self._aattempt, method, path, send, retry_error, errors, pacer, repeatable)

    def _async_sleep(self, seconds: float) -> Awaitable[None]:
        # A policy built with a custom (test) sleep gets it called, then yields to the loop.
        if self.sleep is time.sleep:
            return asyncio.sleep(seconds)
        self.sleep(seconds)
        return asyncio.sleep(0)

    def _attempt(
        self,
        method: str,
        path: str,
        send: Callable[[], requests.Response],
        repeatable: bool,
        pacer: SitePacer | None = None,
    ) -> requests.Response:
        if pacer is not None:
            # Real time: the pacer's slots are on the clock (a test's no-op sleep is for retry waits).
            pacer.wait_turn(method, path, max_wait=self.max_retry_after)
        try:
            response = send()
        except requests.RequestException as exc:
            if self.should_retry_error(method, path, exc, repeatable=repeatable):
                raise RetryableOutcome(method, path, error=exc) from exc
            raise
        if pacer is not None:
            pacer.observe(method, path, response.status_code, response.headers)
        return self._judge(method, path, response, repeatable)

    async def _aattempt(
        self,
        method: str,
        path: str,
        send: Callable[[], Awaitable[Any]],
        retry_error: Callable[[BaseException], bool],
        errors: tuple[type[BaseException], ...],
        pacer: SitePacer | None,
        repeatable: bool,
    ) -> Any:
        if pacer is not None:
            await pacer.await_turn(method, path, max_wait=self.max_retry_after)
        try:
            response = await send()
        except errors as exc:
            if retry_error(exc):
                raise RetryableOutcome(method, path, error=exc) from exc
            raise
        if pacer is not None:
            pacer.observe(method, path, response.status_code, response.headers)
        try:
            return self._judge(method, path, response, repeatable)
        except RetryableOutcome:
            await response.aclose()  # read already: the body stays available if it is the last answer
            raise

    def _judge(self, method: str, path: str, response: Any, repeatable: bool) -> Any:
        """The answer, or :class:`RetryableOutcome` when it is worth repeating."""
        status = response.status_code
        if status < 429 or not self.should_retry_status(method, path, status, repeatable=repeatable):
            return response
        retry_after = None
        if status in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.max_retry_after:
                return response
        raise RetryableOutcome(method, path, response=response, retry_after=retry_after)

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome.exception() if state.outcome is not None else None
        if isinstance(outcome, RetryableOutcome) and outcome.retry_after is not None:
            return self.wait_for_retry_after(outcome.retry_after)
        return self.backoff(state.attempt_number)

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(outcome, RetryableOutcome):
            return
        log.warning(
            "Jira %s %s -> %s; retry %d of %d in %.1f s",
            outcome.method,
            outcome.path,
            outcome.what,
            state.attempt_number,
            self.max_attempts - 1,
            state.upcoming_sleep,
        )


def _give_up(state: RetryCallState) -> Any:
    """Attempts are used up: hand back the last answer, or raise the last transport error."""
    outcome = state.outcome.exception() if state.outcome is not None else None
    if isinstance(outcome, RetryableOutcome):
        if outcome.response is not None:
            return outcome.response
        assert outcome.error is not None
        raise outcome.error
    assert state.outcome is not None
    return state.outcome.result()
