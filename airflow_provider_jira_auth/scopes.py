"""The classic OAuth 2.0 scopes each Jira call needs, and the check made before calling (3LO).

:data:`OPERATIONS` declares, per :class:`~airflow_provider_jira_auth.client.http.JiraClient`
operation, the endpoints it calls (method and path template as Atlassian's OpenAPI spec writes
them) and the classic scopes that spec requires for them (the ``x-atlassian-oauth2-scopes``
entry whose ``state`` is ``Current``; Atlassian: "Scopes for OAuth 2.0 (3LO) and Forge apps").
``tests/contract/test_declared_scopes_in_spec.py`` derives the scopes from the spec for every
endpoint the operators call and fails on any difference.

With 3LO the granted scopes are known from the first token (the token endpoint's ``scope``).
Checking them before a task calls anything turns Jira's terse ``401 scope does not match``,
possibly halfway through a task (after a read, before a write), into an error that names the
missing scope and the consent command to fix it. Basic auth (API tokens) is not checked: the
scopes of a scoped API token are not visible to its holder.

No Airflow imports: the hook, operators and triggers use this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_jira_auth.client.errors import JiraScopeError

READ_WORK = "read:jira-work"
WRITE_WORK = "write:jira-work"
READ_USER = "read:jira-user"
#: Not an API scope: it makes the consent return a refresh token, so every re-consent needs it.
OFFLINE_ACCESS = "offline_access"

REST_ROOT = "/rest/api/3"
_ISSUE = f"{REST_ROOT}/issue/{{issueIdOrKey}}"


@dataclass(frozen=True)
class ScopedOperation:
    """One client operation: the endpoints it calls and the classic scopes they need.

    :param name: the :class:`JiraClient` method, e.g. ``"search_issues"``.
    :param endpoints: ``(method, path template)`` pairs, paths as in the OpenAPI spec.
    :param scopes: every classic scope the endpoints need (empty: anonymous).
    """

    name: str
    endpoints: tuple[tuple[str, str], ...]
    scopes: frozenset[str]


def _operation(name: str, *endpoints: tuple[str, str], scopes: Iterable[str]) -> ScopedOperation:
    return ScopedOperation(name, tuple(endpoints), frozenset(scopes))


#: Client operation -> endpoints and classic scopes (from Atlassian's OpenAPI spec).
OPERATIONS: Mapping[str, ScopedOperation] = {
    op.name: op
    for op in (
        # With parallelism > 1 it lists the ids with search/jql, then fetches them with bulkfetch.
        _operation(
            "search_issues",
            ("POST", f"{REST_ROOT}/search/jql"),
            ("POST", f"{REST_ROOT}/issue/bulkfetch"),
            scopes={READ_WORK},
        ),
        _operation("approximate_count", ("POST", f"{REST_ROOT}/search/approximate-count"), scopes={READ_WORK}),
        _operation("get_issue", ("GET", _ISSUE), scopes={READ_WORK}),
        _operation("bulk_fetch", ("POST", f"{REST_ROOT}/issue/bulkfetch"), scopes={READ_WORK}),
        _operation("create_issue", ("POST", f"{REST_ROOT}/issue"), scopes={WRITE_WORK}),
        _operation("create_issues", ("POST", f"{REST_ROOT}/issue/bulk"), scopes={WRITE_WORK}),
        _operation("bulk_create_chunk", ("POST", f"{REST_ROOT}/issue/bulk"), scopes={WRITE_WORK}),
        _operation("update_issue", ("PUT", _ISSUE), scopes={WRITE_WORK}),
        _operation("get_transitions", ("GET", f"{_ISSUE}/transitions"), scopes={READ_WORK}),
        _operation("transition_issue", ("POST", f"{_ISSUE}/transitions"), scopes={WRITE_WORK}),
        _operation("add_comment", ("POST", f"{_ISSUE}/comment"), scopes={WRITE_WORK}),
        _operation("comments_by_id", ("POST", f"{REST_ROOT}/comment/list"), scopes={READ_WORK}),
        _operation("issue_changelog", ("GET", f"{_ISSUE}/changelog"), scopes={READ_WORK}),
        _operation("bulk_changelogs", ("POST", f"{REST_ROOT}/changelog/bulkfetch"), scopes={READ_WORK}),
        _operation("issue_comments", ("GET", f"{_ISSUE}/comment"), scopes={READ_WORK}),
        _operation("myself", ("GET", f"{REST_ROOT}/myself"), scopes={READ_USER}),
        _operation("server_info", ("GET", f"{REST_ROOT}/serverInfo"), scopes=()),
    )
}


def scopes_for(*operations: str) -> frozenset[str]:
    """The classic scopes the named operations need together.

    :raises ValueError: an operation :data:`OPERATIONS` does not declare.
    """
    unknown = [name for name in operations if name not in OPERATIONS]
    if unknown:
        raise ValueError(f"no scopes declared for {unknown}; known operations: {', '.join(sorted(OPERATIONS))}")
    return frozenset().union(*(OPERATIONS[name].scopes for name in operations))


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$")


_ENDPOINT_PATTERNS: list[tuple[str, str, re.Pattern[str], ScopedOperation]] = sorted(
    (
        (method, template, _template_regex(template), op)
        for op in OPERATIONS.values()
        for method, template in op.endpoints
    ),
    # A literal segment beats a parameter (issue/bulk is bulk create, not an issue called "bulk").
    key=lambda entry: entry[1].count("{"),
)


def operation_for_request(method: str, path: str) -> ScopedOperation | None:
    """The declared operation a ``method path`` call hits, or ``None`` if none is declared.

    :param path: relative to the REST root (``issue/ENG-1``) or rooted (``/rest/api/3/issue/ENG-1``).
    """
    path = "/" + path.partition("?")[0].strip("/")
    if not path.startswith(REST_ROOT + "/"):
        path = REST_ROOT + path
    method = method.upper()
    matching = [(m, template, op) for m, template, pattern, op in _ENDPOINT_PATTERNS if pattern.match(path)]
    if not matching:
        return None
    # The most specific template decides, as Jira routes it; then the method must be one of its.
    best = matching[0][1].count("{")
    return next((op for m, template, op in matching if template.count("{") == best and m == method), None)


def scopes_for_request(method: str, path: str) -> frozenset[str] | None:
    """The classic scopes of a call by method and path, or ``None`` when this module does not know them."""
    op = operation_for_request(method, path)
    return None if op is None else op.scopes


def reconsent_command(conn_id: str | None, scopes: Iterable[str]) -> str:
    """The command a person runs to consent again with ``scopes`` (``offline_access`` added)."""
    wanted = sorted(set(scopes) | {OFFLINE_ACCESS})
    return f"airflow-jira-auth authorize --conn-id {conn_id or '<conn_id>'} --scopes '{' '.join(wanted)}'"


class JiraMissingScopeError(JiraScopeError):
    """Raised before calling: the 3LO grant lacks a scope the call needs.

    A :class:`~airflow_provider_jira_auth.client.errors.JiraScopeError` (what Jira's own
    ``401 scope does not match`` gives), so one ``except`` handles both; ``status`` is ``None``
    because nothing was sent.

    :param conn_id: the connection whose grant is short.
    :param missing: the scopes the grant lacks.
    :param granted: the scopes it holds.
    :param what: what was about to call Jira, e.g. ``JiraCreateIssueOperator 'open_ticket'``.
    """

    def __init__(self, conn_id: str | None, missing: Iterable[str], granted: Iterable[str], what: str) -> None:
        self.conn_id = conn_id
        self.missing_scopes = tuple(sorted(set(missing)))
        self.granted_scopes = tuple(sorted(set(granted)))
        self.command = reconsent_command(conn_id, (*self.granted_scopes, *self.missing_scopes))
        # JiraHTTPError's attributes, so handlers written for Jira's 401 can read them.
        self.method, self.path, self.status = "", "", None  # type: ignore[assignment]
        self.error_messages: list[str] = []
        self.errors: dict[str, Any] = {}
        self.body = ""
        self.headers: dict[str, str] = {}
        self.scope = self.missing_scopes[0] if self.missing_scopes else None
        names = ", ".join(self.missing_scopes)
        self.hint = (
            f"add {names} to the app's scopes in the Atlassian developer console, then consent again: {self.command}"
        )
        plural = "s" if len(self.missing_scopes) > 1 else ""
        Exception.__init__(
            self,
            f"{what} needs the scope{plural} {names}, which the OAuth 2.0 grant of connection {conn_id!r} "
            f"does not hold (granted: {', '.join(self.granted_scopes) or 'none'}). "
            f"Nothing was sent to Jira. To fix: {self.hint}",
        )


def check_granted(required: Iterable[str], granted: Iterable[str] | None, *, conn_id: str | None, what: str) -> None:
    """Raise :class:`JiraMissingScopeError` if ``granted`` lacks any of ``required``.

    :param granted: ``None`` when the grant's scopes are unknown (Basic auth, or a token
        endpoint that did not report them): nothing is checked.
    """
    if granted is None:
        return
    granted_set = set(granted)
    missing = set(required) - granted_set
    if missing:
        raise JiraMissingScopeError(conn_id, missing, granted_set, what)


def granted_by(auth: Any) -> frozenset[str] | None:
    """The scopes a client's auth holds: 3LO's granted scopes, ``None`` for any other auth.

    Asks for an access token first if the auth has none yet (the scopes come with it), so this
    may block on a refresh: triggers call it in a worker thread.
    """
    if not hasattr(auth, "scopes") or not hasattr(auth, "access_token"):
        return None
    if not auth.scopes:
        auth.access_token()
    return frozenset(auth.scopes) or None
