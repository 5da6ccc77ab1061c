"""Typed errors of the Jira Cloud client.

Every message names what went wrong and what to do about it, and never carries a
credential: no header, token or secret is ever put into an exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


REDACTED = "[redacted]"


#: The shortest run of a secret's characters that :func:`scrub` removes wherever it appears: a
#: database's message may quote a cut-off piece of a row (the extra), not the whole secret.
FRAGMENT = 8


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret, and every run of ``FRAGMENT`` or more of its characters, replaced.

    Whole secrets alone are not enough: a message that quotes a piece of the stored extra (a
    database trigger's, a driver's) carries part of a secret that no whole-secret search finds.
    Each overlapping or adjacent run found is replaced by one ``[redacted]``. Secrets shorter than
    ``FRAGMENT`` (but at least 6 characters) are replaced whole.
    """
    known = {s for s in secrets if s and len(s) >= 6}
    for secret in sorted((s for s in known if len(s) < FRAGMENT), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    spans: list[tuple[int, int]] = []
    for gram in {s[i : i + FRAGMENT] for s in known if len(s) >= FRAGMENT for i in range(len(s) - FRAGMENT + 1)}:
        start = text.find(gram)
        while start != -1:
            spans.append((start, start + FRAGMENT))
            start = text.find(gram, start + 1)
    if not spans:
        return text
    spans.sort()
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, at = [], 0
    for start, end in merged:
        pieces += [text[at:start], REDACTED]
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def describe_error(exc: BaseException) -> str:
    """``exc`` in one short line that carries no statement parameters.

    ``str()`` of a SQLAlchemy ``StatementError`` (``DBAPIError`` and the rest) appends the SQL
    statement and its bound parameters: for a write of a connection, its extra with the client
    secret and refresh token, cut in the middle where a whole-secret scrub cannot find them.
    Such an error is named by its class and the first line of the database's own message
    (``exc.orig``); any other exception by its class and the first line of its message.
    """
    if hasattr(exc, "statement") or hasattr(exc, "orig"):
        orig = getattr(exc, "orig", None)
        if not isinstance(orig, BaseException):
            return type(exc).__name__
        return f"{type(exc).__name__} ({type(orig).__module__}.{type(orig).__name__}: {_first_line(orig)})"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else ""


class JiraError(Exception):
    """Base class of every error this package raises."""


class JiraConfigError(JiraError, ValueError):
    """The connection's configuration is wrong; ``field`` names the culprit.

    The message names the field by its label in Airflow's connection form, then by its key
    (for connections written as JSON or URIs): ``'API token (basic auth)' (password): ...``.
    """

    def __init__(self, field: str, message: str) -> None:
        from airflow_provider_jira_auth.connection_fields import field_label

        self.field = field
        self.label = field_label(field)
        where = repr(self.label) if self.label == field else f"{self.label!r} ({field})"
        super().__init__(f"Jira connection field {where}: {message}")


class JiraArgumentError(JiraConfigError):
    """An argument of an operator or hook is wrong; ``field`` names it (e.g. ``jira_retry.retry_delay``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.label = field
        ValueError.__init__(self, f"Jira argument {field}: {message}")


class JiraPathError(JiraError, ValueError):
    """A path the client refuses to send: it would leave the REST root, and take the credentials along."""


class JiraTransportError(JiraError):
    """The request never got an HTTP answer (DNS, refused, timeout, dropped connection)."""

    def __init__(self, method: str, path: str, cause: BaseException, *, peer: str = "Jira", hint: str = "") -> None:
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: no answer from {peer} ({type(cause).__name__}: {cause}){hint}")


class JiraHTTPError(JiraError):
    """Jira answered with a 4xx or 5xx status.

    ``error_messages`` and ``errors`` hold Jira's own ``errorMessages`` and ``errors``
    (field -> message) so that nothing Jira said is lost.
    """

    hint = ""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        *,
        error_messages: list[str] | None = None,
        errors: dict[str, Any] | None = None,
        body: str = "",
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.error_messages = list(error_messages or [])
        self.errors = dict(errors or {})
        self.body = body
        self.headers = dict(headers or {})
        if hint is not None:
            self.hint = hint
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts = [f"{self.method} {self.path} -> HTTP {self.status}"]
        said = [*self.error_messages, *(f"{k}: {v}" for k, v in self.errors.items())]
        if said:
            parts.append("Jira says: " + "; ".join(str(s) for s in said).rstrip("."))
        elif self.body:
            parts.append("body: " + self.body[:300])
        if self.hint:
            parts.append(self.hint)
        return ". ".join(parts)


class JiraAuthenticationError(JiraHTTPError):
    """401: the credentials were refused."""

    hint = (
        "Check the connection's login (account email) and password (API token); API tokens "
        "created since December 2024 expire, so create a new one if it has"
    )


class JiraScopeError(JiraHTTPError):
    """The credentials are valid but lack a scope the endpoint needs."""

    def __init__(self, *args: Any, scope: str | None = None, **kwargs: Any) -> None:
        self.scope = scope
        super().__init__(*args, **kwargs)


class JiraPermissionError(JiraHTTPError):
    """403: authenticated, but not allowed."""

    hint = "The Jira user behind this connection lacks the permission for this call"


class JiraNotFoundError(JiraHTTPError):
    """404: the issue, project or endpoint does not exist or is not visible to this user."""

    hint = "It does not exist, or the Jira user behind this connection cannot see it"


class JiraGoneError(JiraHTTPError):
    """410: the endpoint was removed from Jira Cloud."""

    hint = (
        "This endpoint was removed from Jira Cloud. For searches use search_issues() or "
        "POST search/jql with nextPageToken paging"
    )


class JiraValidationError(JiraHTTPError):
    """400: Jira rejected the request (bad JQL, missing field, ...)."""


class JiraRateLimitError(JiraHTTPError):
    """429 that outlasted the retries; ``retry_after`` is Jira's last advice in seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, reason: str | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        self.reason = reason
        super().__init__(*args, **kwargs)


class JiraServerError(JiraHTTPError):
    """5xx from Jira or a gateway in front of it."""


class JiraResponseError(JiraError):
    """Jira (or a proxy in front of it) answered something that is not the expected JSON."""

    def __init__(self, method: str, path: str, status: int, content_type: str, body: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.content_type = content_type
        super().__init__(
            f"{method} {path} -> HTTP {status} with a non-JSON body ({content_type or 'no content type'}): "
            f"{body[:200]!r}. A proxy or login page may be answering instead of Jira: check the "
            "connection's host (site URL) and api_url"
        )


class JiraBulkError(JiraError):
    """Some elements of a bulk operation failed; ``result`` holds what succeeded and what failed."""

    def __init__(self, result: Any) -> None:
        self.result = result
        failed = result.errors
        lines = "; ".join(f"#{e.index}: {e.message}" for e in failed[:10])
        more = f" (and {len(failed) - 10} more)" if len(failed) > 10 else ""
        super().__init__(
            f"{len(failed)} of {len(failed) + len(result.created)} issues were not created: {lines}{more}"
        )


class JiraSearchPageError(JiraError):
    """A page of a parallel search (``search_issues(parallelism=N)``) still failed after its retries.

    The issues before the page have been yielded, none after it. ``__cause__`` (and ``cause``)
    is the client's own error, e.g. a :class:`JiraServerError`.

    :param what: the page, e.g. ``"fetching issues 301-400 (ids 10301..10400) of JQL '...'"``.
    :param start: position (from 1) of the page's first issue in the search's result.
    :param count: issues in the page; ``None`` for a listing page (not known yet).
    :param ids: the page's issue ids (empty for a listing page).
    :param why: what went wrong; default: the cause's message.
    """

    def __init__(
        self,
        what: str,
        start: int,
        count: int | None,
        ids: Iterable[str],
        cause: BaseException | None = None,
        why: str | None = None,
    ) -> None:
        self.start = start
        self.end = start + count - 1 if count else None
        self.ids = tuple(ids)
        self.cause = cause
        reason = why or (str(cause) if cause is not None else "failed")
        super().__init__(
            f"Parallel search: {what} failed: {reason}. The issues before this page were delivered, none after it"
        )


class JiraTransitionError(JiraError, ValueError):
    """The transition asked for is not available on the issue; the message lists those that are."""


class JiraBulkTransitionError(JiraTransitionError):
    """Some issues of a bulk transition were not moved; the others were.

    :param summary: ``{"moved", "already", "failed": [{"key", "error"}], "dry_run"}``.
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


# OAuth 2.0 (3LO) token errors ------------------------------------------------------------


class JiraOAuthError(JiraError):
    """The token endpoint refused a request."""


class JiraGrantRevokedError(JiraOAuthError):
    """``invalid_grant`` / ``unauthorized_client``: only a person consenting again can fix it."""


class JiraClientSecretError(JiraOAuthError):
    """``access_denied`` on the token endpoint: the client id or secret is wrong."""


class JiraTokenStoreError(JiraError):
    """The token store could not read or persist the token state."""


class JiraTokenStoreConflictError(JiraTokenStoreError):
    """A save's compare-and-swap failed: the store no longer holds the refresh token the refresh
    read (a new consent or an edit replaced it). Not retried: the newer grant is kept."""


class JiraTriggerError(JiraError):
    """A Jira error a trigger met, re-raised in the task; ``error_type`` names the original class."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        super().__init__(f"{error_type}: {message}")
