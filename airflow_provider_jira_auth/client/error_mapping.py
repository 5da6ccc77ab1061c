"""Jira's HTTP answers -> typed errors: the class by status and body, Jira's own messages kept,
a hint naming the likely fix, credentials scrubbed (shared by the sync and the async client)."""

from __future__ import annotations

import json as jsonlib
from typing import Any

import requests

from airflow_provider_jira_auth.client.auth_flow import JiraAuth, as_jira_auth
from airflow_provider_jira_auth.client.errors import (
    JiraAuthenticationError,
    JiraConfigError,
    JiraError,
    JiraGoneError,
    JiraHTTPError,
    JiraNotFoundError,
    JiraPermissionError,
    JiraRateLimitError,
    JiraResponseError,
    JiraScopeError,
    JiraServerError,
    JiraValidationError,
    scrub,
)
from airflow_provider_jira_auth.client.retry import READ_ONLY_POSTS, parse_retry_after

__all__ = ["bad_credential_header", "error_from_response", "json_or_none", "login_refused"]

#: Response headers worth keeping on an exception; anything else (cookies!) is dropped.
_KEPT_RESPONSE_HEADERS = (
    "Content-Type",
    "Retry-After",
    "RateLimit-Reason",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-NearLimit",
    "X-Seraph-LoginReason",
    "WWW-Authenticate",
    "X-AREQUESTID",
    "ATL-TraceId",
)
_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")
_ERRORS_BY_STATUS: dict[int, type[JiraHTTPError]] = {
    400: JiraValidationError,
    403: JiraPermissionError,
    404: JiraNotFoundError,
    410: JiraGoneError,
}

#: Statuses mapped by status even when the body is not JSON (as are all 5xx).
_STATUS_SAYS_IT_ALL = frozenset({401, 429})

# X-Seraph-LoginReason values meaning "the credentials were refused and Jira answered as anonymous".
_LOGIN_REFUSED = ("AUTHENTICATED_FAILED", "AUTHENTICATION_DENIED")

_SERVER_HINT = "Jira or a gateway in front of it failed; this is usually transient, so a task retry should get through"


def error_from_response(method: str, path: str, response: requests.Response, auth: Any = None) -> JiraError:
    """The exception for a response that is not a usable success: the one error mapping.

    A body that is not JSON means something other than Jira answered (a proxy, a login page)
    and gives :class:`JiraResponseError`, except for 401, 429 and 5xx, whose status alone says
    what happened and what to do. Text from the response is scrubbed of the request's
    credentials before it goes into a message.

    :param method: upper-case HTTP method.
    :param path: path relative to ``/rest/api/3``.
    :param response: the final response (after retries).
    :param auth: the client's auth (a :class:`JiraAuth`), for its ``unauthorized_hint`` and
        ``secret_values``.
    """
    auth = as_jira_auth(auth)
    status = response.status_code
    text = scrub(response.text if response.content else "", _secrets(response, auth))
    content_type = response.headers.get("Content-Type", "")
    data = json_or_none(text)
    headers = {name: response.headers[name] for name in _KEPT_RESPONSE_HEADERS if name in response.headers}

    if status < 300 and login_refused(response):
        return JiraAuthenticationError(
            method,
            path,
            status,
            headers=headers,
            hint=_with_auth_hint(
                "Jira refused the credentials and answered as an anonymous user "
                f"(X-Seraph-LoginReason: {response.headers.get('X-Seraph-LoginReason')}), so results would be "
                "incomplete. " + JiraAuthenticationError.hint,
                auth,
            ),
        )
    foreign_body = data is None and bool(text.strip())
    if status < 300 or (foreign_body and status not in _STATUS_SAYS_IT_ALL and status < 500):
        return JiraResponseError(method, path, status, content_type, text)

    messages, errors = _jira_said(data)
    common: dict[str, Any] = {
        "error_messages": messages,
        "errors": errors,
        "body": text,
        "headers": headers,
    }
    if status == 401:
        if "scope does not match" in text.lower():
            scope = _needed_scope(method, path)
            return JiraScopeError(method, path, status, scope=scope, hint=_scope_hint(scope), **common)
        hint = _with_auth_hint(JiraAuthenticationError.hint, auth)
        return JiraAuthenticationError(method, path, status, hint=hint, **common)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        reason = response.headers.get("RateLimit-Reason")
        return JiraRateLimitError(
            method,
            path,
            status,
            retry_after=retry_after,
            reason=reason,
            hint=_rate_limit_hint(retry_after, reason, response.headers.get("X-RateLimit-Reset")),
            **common,
        )
    if status >= 500:
        return JiraServerError(method, path, status, hint=_SERVER_HINT, **common)
    return _ERRORS_BY_STATUS.get(status, JiraHTTPError)(method, path, status, **common)


def login_refused(response: requests.Response) -> bool:
    reason = (response.headers.get("X-Seraph-LoginReason") or "").upper()
    return any(refused in reason for refused in _LOGIN_REFUSED)


def _secrets(response: requests.Response, auth: JiraAuth) -> list[str]:
    secrets = [str(s) for s in auth.secret_values if s]
    request_headers = response.request.headers if response.request is not None else {}
    for name in _CREDENTIAL_HEADERS:
        value = request_headers.get(name)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if value:
            secrets.append(value)
            secrets.append(value.split(" ", 1)[-1])  # the credential without "Basic "/"Bearer "
    # Longest first, so a token inside a longer secret does not leave a partial match behind.
    return sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)


def json_or_none(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return jsonlib.loads(text)
    except ValueError:
        return None


def _jira_said(data: Any) -> tuple[list[str], dict[str, Any]]:
    """Jira's ``errorMessages`` and ``errors``, plus the ``message`` the gateway and OAuth use."""
    if not isinstance(data, dict):
        return [], {}
    raw = data.get("errorMessages")
    messages = [str(m) for m in raw if m] if isinstance(raw, list) else []
    for key in ("message", "errorMessage", "error_description"):
        if isinstance(data.get(key), str) and data[key]:
            messages.append(data[key])
    if not messages and isinstance(data.get("error"), str):
        messages.append(data["error"])
    errors = data.get("errors")
    return messages, dict(errors) if isinstance(errors, dict) else {}


def bad_credential_header() -> JiraConfigError:
    """For a header HTTP refuses; never chain the original: it quotes the value, maybe a token."""
    return JiraConfigError(
        "credentials",
        "a request header holds characters HTTP does not allow (often a newline or a non-ASCII "
        "character pasted with a token); enter the credential again without them",
    )


def _with_auth_hint(hint: str, auth: JiraAuth) -> str:
    """The auth's own hint replaces the generic one: it knows which credential it sent."""
    return auth.unauthorized_hint or hint


def _needed_scope(method: str, path: str) -> str | None:
    """The classic scope a call needs (Atlassian: "Scopes for OAuth 2.0 (3LO) and Forge apps"), for the usual endpoints."""
    if path == "myself":
        return "read:jira-user"
    if path.startswith(("issue", "search", "jql")):
        return "read:jira-work" if method == "GET" or path in READ_ONLY_POSTS else "write:jira-work"
    return None


def _scope_hint(scope: str | None) -> str:
    needed = f"the scope {scope}" if scope else "a scope this call needs"
    return (
        f"The credentials are valid but lack {needed}: add it to the app in the Atlassian developer "
        "console (or create the scoped API token with it) and consent again"
    )


def _rate_limit_hint(retry_after: float | None, reason: str | None, reset: str | None) -> str:
    why = f" ({reason})" if reason else ""
    if reason and "quota" in reason:
        until = f" until {reset}" if reset else ""
        return f"Jira's request quota is used up{why}: pause calls with these credentials{until}"
    after = f"; Jira asks to wait {retry_after:g} s" if retry_after is not None else ""
    return f"Jira kept rate-limiting this call{why}{after}. Retry later or make fewer calls per second"


# -- paths -----------------------------------------------------------------------------------
