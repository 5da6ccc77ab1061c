"""The Jira Cloud REST API v3 of one site: routes and handlers (authentication happens before)."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ._accounts import User
from ._adf import adf_problem
from ._http import HttpError, Request, Response, jira_error, json_response
from ._jql import JqlError, compile_query, parse, sort_issues
from ._runtime import jira_time
from ._scopes import CLASSIC_SCOPES, ISSUE
from ._site import (
    CHANGELOG_PAGE_LIMIT,
    SEARCH_CHANGELOG_LIMIT,
    FieldSelection,
    Issue,
    JiraSite,
)

# The startAt-paged searches were removed from Jira Cloud; they answer 410 Gone.
REMOVED_PATHS = frozenset({"/rest/api/2/search", "/rest/api/3/search"})
REMOVED_MESSAGE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
#: most issue ids one search may name in ``reconcileIssues``
RECONCILE_LIMIT = 50
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
NO_ISSUE = "Issue does not exist or you do not have permission to see it."
_SEARCH_CACHE_SIZE = 32
_BULK_FETCH_KEYS = frozenset({"issueIdsOrKeys", "fields", "expand", "fieldsByKeys", "properties"})
RETRIABLE_FETCH_ERROR = "The issue could not be retrieved at this time. Please try again."
# Endpoints that answer without credentials (and with bad ones: see the dispatcher).
ANONYMOUS = frozenset({("GET", "/rest/api/3/serverInfo")})
_BULK_CHANGELOG_KEYS = frozenset({"issueIdsOrKeys", "fieldIds", "maxResults", "nextPageToken"})
#: Jira's changelog/bulkfetch: at most 1000 issues a request, 10000 entries a page (default 1000).
BULK_CHANGELOG_ISSUES = 1000
BULK_FETCH_ISSUES = 100
COMMENT_LIST_LIMIT = 1000
COMMENT_ORDERS = ("created", "-created", "+created")
BULK_CHANGELOG_MAX_PAGE = 10000


@dataclass
class Caller:
    """Who calls, on which site, and the base URL their ``self`` links start with."""

    user: User | None
    site: JiraSite
    base: str


Handler = Callable[[Caller, dict[str, str], Request], Response]


@dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    specificity: int  # fewer path parameters wins when two templates match

    @property
    def anonymous(self) -> bool:
        return (self.method, self.template) in ANONYMOUS


def _compile_template(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}$")


@dataclass
class _CachedSearch:
    jql: str
    issues: list[Issue]


def _json_body(request: Request) -> Any:
    if not request.body:
        return None
    try:
        return json.loads(request.body)
    except ValueError as exc:
        raise HttpError(jira_error(400, [f"Unexpected character in the request body: {exc}"])) from None


def _reconciled(value: Any) -> frozenset[int]:
    """``reconcileIssues``: at most 50 issue ids whose latest writes the search must show."""
    if not isinstance(value, list) or len(value) > RECONCILE_LIMIT:
        raise HttpError(jira_error(400, [f"reconcileIssues must be a list of at most {RECONCILE_LIMIT} issue ids."]))
    try:
        return frozenset(int(v) for v in value)
    except (TypeError, ValueError):
        raise HttpError(jira_error(400, ["reconcileIssues must hold issue ids (numbers)."])) from None


def _json_object(request: Request) -> dict[str, Any]:
    body = _json_body(request)
    if not isinstance(body, dict):
        raise HttpError(jira_error(400, ["The request body must be a JSON object."]))
    return body


def _int_param(raw: Any, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise HttpError(jira_error(400, [f"The value '{raw}' of parameter '{name}' is not a number."])) from None
    if value < 0:
        raise HttpError(jira_error(400, [f"The value of '{name}' must not be negative."]))
    return value


def _expand_list(raw: Any) -> list[str]:
    """``expand`` as Jira takes it: a comma-separated string (or, in bulkfetch, a list of strings)."""
    if isinstance(raw, str):
        raw = [raw]
    return [part.strip() for item in (raw or ()) if isinstance(item, str) for part in item.split(",") if part.strip()]


def _bulk_issue_list(request: Request, allowed: frozenset[str], limit: int) -> tuple[dict[str, Any], list[Any]]:
    """A bulk request's JSON body and its ``issueIdsOrKeys`` (1..``limit``), as Jira checks them:
    an unknown body field or a missing, empty or too long list is a 400."""
    body = _json_object(request)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HttpError(jira_error(400, [f"Unrecognized field \"{unknown[0]}\" in the request body."]))
    wanted = body.get("issueIdsOrKeys")
    if not isinstance(wanted, list) or not wanted:
        raise HttpError(jira_error(400, ["issueIdsOrKeys must be a non-empty list of issue ids or keys."]))
    if len(wanted) > limit:
        raise HttpError(
            jira_error(400, [f"The number of issues requested ({len(wanted)}) exceeds the limit of {limit}."])
        )
    return body, wanted


def _visible(caller: Caller, issue: Issue | None) -> Issue | None:
    """``issue`` if the caller may browse its project, else ``None`` (Jira shows it to nobody else)."""
    if issue is None or caller.user is None or caller.user.may_browse(issue.project):
        return issue
    return None


def _issue_or_404(caller: Caller, params: dict[str, str]) -> Issue:
    issue = _visible(caller, caller.site.find_issue(params["issueIdOrKey"]))
    if issue is None:
        raise HttpError(jira_error(404, [NO_ISSUE]))
    return issue


class JiraRestApi:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._query_ids = itertools.count(1)
        handlers: dict[tuple[str, str], Handler] = {
            ("GET", "/rest/api/3/myself"): self.myself,
            ("GET", "/rest/api/3/serverInfo"): self.server_info,
            ("GET", "/rest/api/3/search/jql"): self.search,
            ("POST", "/rest/api/3/search/jql"): self.search,
            ("POST", "/rest/api/3/search/approximate-count"): self.approximate_count,
            ("POST", "/rest/api/3/issue"): self.create_issue,
            ("POST", "/rest/api/3/issue/bulk"): self.create_issues,
            ("POST", "/rest/api/3/issue/bulkfetch"): self.bulk_fetch,
            ("GET", ISSUE): self.get_issue,
            ("PUT", ISSUE): self.edit_issue,
            ("GET", ISSUE + "/transitions"): self.get_transitions,
            ("POST", ISSUE + "/transitions"): self.do_transition,
            ("GET", ISSUE + "/comment"): self.get_comments,
            ("GET", ISSUE + "/changelog"): self.get_changelog,
            ("POST", "/rest/api/3/changelog/bulkfetch"): self.bulk_changelog,
            ("POST", ISSUE + "/comment"): self.add_comment,
            ("POST", "/rest/api/3/comment/list"): self.comments_by_id,
            ("GET", "/rest/api/3/project/{projectIdOrKey}"): self.get_project,
        }
        assert handlers.keys() == CLASSIC_SCOPES.keys(), "every route needs its scopes, and every scope a route"
        self.routes = sorted(
            (Route(m, t, _compile_template(t), h, t.count("{")) for (m, t), h in handlers.items()),
            key=lambda r: r.specificity,
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | Response:
        """The route and its (decoded) path parameters, or a 404 / 405 answer."""
        path_matched = False
        for route in self.routes:
            found = route.regex.match(path)
            if found is None:
                continue
            path_matched = True
            if route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        if path_matched:
            return jira_error(405, [f"Method {method} is not allowed for {path}"])
        return jira_error(404, [f"No Jira REST resource at {path} (the emulator knows only a subset of the API)"])

    # -- who and what --------------------------------------------------------------------------------

    def myself(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        assert caller.user is not None
        return json_response(
            200,
            {
                "self": f"{caller.base}/rest/api/3/user?accountId={caller.user.account_id}",
                **caller.user.to_json(),
                "locale": "en_US",
                "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []},
            },
        )

    def server_info(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        return json_response(
            200,
            {
                "baseUrl": caller.site.url,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100289,
                "buildDate": "2025-12-01T00:00:00.000+0000",
                "serverTime": jira_time(self._clock()),
                "scmInfo": "emulator",
                "serverTitle": "Jira",
                "defaultLocale": {"locale": "en_US"},
                "serverTimeZone": "Etc/UTC",
            },
        )

    def get_project(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        project = caller.site.find_project(params["projectIdOrKey"])
        if project is None:
            return jira_error(404, [f"No project could be found with key '{params['projectIdOrKey']}'."])
        return json_response(200, caller.site.project_json(project, caller.base))

    # -- search ----------------------------------------------------------------------------------------

    def search(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        if request.method == "GET":
            jql, token = request.q("jql"), request.q("nextPageToken")
            max_raw, fields = request.q("maxResults"), request.query_all.get("fields")
            expand = _expand_list(request.query_all.get("expand"))
            reconcile: Any = [i for raw in request.query_all.get("reconcileIssues") or () for i in str(raw).split(",") if i]
        else:
            body = _json_object(request)
            jql, token, max_raw, fields = (
                body.get("jql"),
                body.get("nextPageToken"),
                body.get("maxResults"),
                body.get("fields"),
            )
            expand = _expand_list(body.get("expand"))
            reconcile = body.get("reconcileIssues") or []
        reconciled = _reconciled(reconcile)
        selection = FieldSelection.parse(fields, default=("id",))
        # Jira returns up to 5000 issues a page when only ids/keys are asked for, fewer otherwise.
        cap = 5000 if selection.id_key_only else 100
        max_results = max(1, min(_int_param(max_raw, "maxResults", 50), cap))
        issues, query_id, offset = self._matching(caller, jql, token, reconciled)
        end = offset + max_results
        answer: dict[str, Any] = {
            "issues": [
                caller.site.issue_json(i, selection, caller.base, expand=expand, changelog_limit=SEARCH_CHANGELOG_LIMIT)
                for i in issues[offset:end]
            ],
        }
        if end < len(issues):
            answer["nextPageToken"] = base64.urlsafe_b64encode(f"{query_id}:{end}".encode()).decode().rstrip("=")
        answer["isLast"] = end >= len(issues)
        response = json_response(200, answer)
        if selection.id_key_only:
            response.ids = len(answer["issues"])
        else:
            response.issues = len(answer["issues"])
        return response

    def _matching(self, caller: Caller, jql: Any, token: Any, reconciled: frozenset[int]) -> tuple[list[Issue], str, int]:
        """All issues of the query and where this page starts; pages after the first reuse the result."""
        cache = caller.site.search_cache
        if token:
            try:
                padded = str(token) + "=" * (-len(str(token)) % 4)
                query_id, offset_text = base64.urlsafe_b64decode(padded).decode().split(":")
                offset = int(offset_text)
            except ValueError:
                raise HttpError(jira_error(400, ["The nextPageToken is invalid."])) from None
            cached = cache.get(query_id)
            if cached is None or cached.jql != jql:
                cached = _CachedSearch(str(jql), self.run_jql(caller, jql, reconciled=reconciled))
            cache[query_id] = cached
            cache.move_to_end(query_id)
        else:
            query_id, offset = str(next(self._query_ids)), 0
            cached = _CachedSearch(str(jql), self.run_jql(caller, jql, reconciled=reconciled))
            cache[query_id] = cached
        while len(cache) > _SEARCH_CACHE_SIZE:
            cache.popitem(last=False)
        return cached.issues, query_id, offset

    def run_jql(
        self, caller: Caller, jql: Any, *, ordered: bool = True, reconciled: frozenset[int] = frozenset()
    ) -> list[Issue]:
        """The issues the search index shows for ``jql``: an issue written less than the site's
        ``search_index_lag`` ago is missing, unless its id is in ``reconciled``."""
        if not isinstance(jql, str) or not jql.strip():
            raise HttpError(jira_error(400, [UNBOUNDED]))
        try:
            query = parse(jql)
            if query.where is None:
                raise HttpError(jira_error(400, [UNBOUNDED]))
            matches = compile_query(query, caller.site.jql_env(caller.user))
        except JqlError as exc:
            raise HttpError(jira_error(400, [str(exc)])) from None
        site = caller.site
        user = caller.user
        found = [
            issue
            for issue in site.ordered
            if matches(issue)
            and site.searchable(issue, reconciled)
            and (user is None or user.may_browse(issue.project))
        ]
        return sort_issues(found, query.order) if ordered else found

    def approximate_count(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        body = _json_object(request)
        return json_response(200, {"count": len(self.run_jql(caller, body.get("jql"), ordered=False))})

    # -- issues ----------------------------------------------------------------------------------------

    def bulk_fetch(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        """``POST issue/bulkfetch`` as the spec has it: at most 100 ids or keys, the issues found in
        ascending id order; issues not found or not visible are left out (not reported);
        ``issueErrors`` lists those Jira could not return for a retriable reason (see
        ``JiraSite.bulkfetch_errors``)."""
        body, wanted = _bulk_issue_list(request, _BULK_FETCH_KEYS, BULK_FETCH_ISSUES)
        for name in ("fields", "expand", "properties"):
            value = body.get(name)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                return jira_error(400, [f"{name} must be a list of strings."])
        selection = FieldSelection.parse(body.get("fields"), default=("*navigable",))
        found: dict[int, Issue] = {}
        errors = []
        for value in wanted:
            issue = _visible(caller, caller.site.find_issue(str(value)))
            if issue is None:
                continue  # not found or not visible: Jira leaves it out without a word
            if caller.site.take_bulkfetch_error(issue):
                errors.append({"id": str(issue.id), "errorMessage": RETRIABLE_FETCH_ERROR})
                continue
            found[issue.id] = issue
        expand = _expand_list(body.get("expand"))
        issues = [
            caller.site.issue_json(found[i], selection, caller.base, expand=expand, changelog_limit=SEARCH_CHANGELOG_LIMIT)
            for i in sorted(found)
        ]
        response = json_response(200, {"issues": issues, "issueErrors": errors})
        response.issues = len(issues)
        return response

    def _created(self, caller: Caller, issue: Issue) -> dict[str, Any]:
        return {"id": str(issue.id), "key": issue.key, "self": f"{caller.base}/rest/api/3/issue/{issue.id}"}

    def create_issue(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        issue, errors = caller.site.create_issue(_json_object(request), caller.user)
        if issue is None:
            return jira_error(400, errors=errors)
        return json_response(201, self._created(caller, issue))

    def create_issues(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        updates = _json_object(request).get("issueUpdates")
        if not isinstance(updates, list):
            return jira_error(400, ["issueUpdates must be a list of issues to create."])
        if len(updates) > 50:
            return jira_error(400, [f"Bulk create accepts at most 50 issues; got {len(updates)}."])
        created, failed = [], []
        for number, element in enumerate(updates):
            issue, errors = caller.site.create_issue(element, caller.user)
            if issue is None:
                failed.append(
                    {
                        "status": 400,
                        "elementErrors": {"errorMessages": [], "errors": errors},
                        "failedElementNumber": number,
                    }
                )
            else:
                created.append(self._created(caller, issue))
        # Jira answers 201 when at least one issue was created, 400 when all of them failed.
        status = 400 if failed and not created else 201
        return json_response(status, {"issues": created, "errors": failed})

    def get_issue(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        issue = _issue_or_404(caller, params)
        selection = FieldSelection.parse(request.query_all.get("fields"), default=("*all",))
        expand = _expand_list(request.query_all.get("expand"))
        response = json_response(200, caller.site.issue_json(issue, selection, caller.base, expand=expand))
        response.issues = 1
        return response

    def edit_issue(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        issue = _issue_or_404(caller, params)
        errors = caller.site.edit_issue(issue, _json_object(request))
        if errors:
            return jira_error(400, errors=errors)
        if (request.q("returnIssue") or "").lower() == "true":
            return json_response(200, caller.site.issue_json(issue, FieldSelection.parse(None, ("*all",)), caller.base))
        return Response(204)

    # -- workflow and comments -------------------------------------------------------------------------

    def get_transitions(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        issue = _issue_or_404(caller, params)
        transitions = caller.site.transitions(issue)
        only = request.q("transitionId")
        if only:
            transitions = [t for t in transitions if t["id"] == only]
        return json_response(200, {"expand": "transitions", "transitions": transitions})

    def do_transition(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        issue = _issue_or_404(caller, params)
        body = _json_object(request)
        transition = body.get("transition")
        transition_id = transition.get("id") if isinstance(transition, dict) else None
        if transition_id is None:
            return jira_error(400, ["Missing 'transition' identifier"])
        if str(transition_id) not in {t["id"] for t in caller.site.transitions(issue)}:
            return jira_error(400, [f"Transition id '{transition_id}' is not valid for this issue."])
        if body.get("fields") or body.get("update"):
            errors = caller.site.edit_issue(issue, {"fields": body.get("fields"), "update": body.get("update")})
            if errors:
                return jira_error(400, errors=errors)
        caller.site.transition(issue, str(transition_id), caller.user)
        return Response(204)

    def get_comments(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        issue = _issue_or_404(caller, params)
        start = _int_param(request.q("startAt"), "startAt", 0)
        # Jira Cloud answers at most 100 comments a page, whatever maxResults asks for.
        cap = caller.site.comment_page_limit
        limit = max(1, min(_int_param(request.q("maxResults"), "maxResults", cap), cap))
        order = request.q("orderBy") or "created"
        if order not in COMMENT_ORDERS:
            return jira_error(400, [f"The orderBy value '{order}' is not valid; use one of {', '.join(COMMENT_ORDERS)}."])
        return json_response(
            200, caller.site.comment_page(issue, caller.base, start, limit, newest_first=order == "-created")
        )

    def comments_by_id(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        """``POST comment/list``: ``{"ids": [...]}`` (at most 1000), ``expand=properties`` adds each
        comment's entity properties; one page holds them all, as Jira answers for 1000 ids."""
        body = _json_object(request)
        unknown = sorted(set(body) - {"ids"})
        if unknown:
            return jira_error(400, [f'Unrecognized field "{unknown[0]}".'])
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return jira_error(400, errors={"ids": "The list of comment IDs must be a list of numbers."})
        if len(ids) > COMMENT_LIST_LIMIT:
            return jira_error(400, [f"A maximum of {COMMENT_LIST_LIMIT} IDs can be specified."])
        expand = {part.strip() for part in (request.q("expand") or "").split(",") if part.strip()}
        values = caller.site.comments_by_id(ids, caller.base, properties="properties" in expand)
        return json_response(
            200, {"isLast": True, "maxResults": COMMENT_LIST_LIMIT, "startAt": 0, "total": len(values), "values": values}
        )

    def get_changelog(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        issue = _issue_or_404(caller, params)
        start = _int_param(request.q("startAt"), "startAt", 0)
        limit = max(1, min(_int_param(request.q("maxResults"), "maxResults", CHANGELOG_PAGE_LIMIT), CHANGELOG_PAGE_LIMIT))
        return json_response(200, caller.site.changelog_page(issue, caller.base, start, limit))

    def bulk_changelog(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        """``POST changelog/bulkfetch`` as the spec has it: 1..1000 issue ids or keys, entries ordered
        by date then issue id, paged with ``nextPageToken``; unknown issues are left out."""
        body, wanted = _bulk_issue_list(request, _BULK_CHANGELOG_KEYS, BULK_CHANGELOG_ISSUES)
        if body.get("fieldIds"):
            return jira_error(400, ["fieldIds filtering is not supported by the emulator."])
        limit = _int_param(body.get("maxResults"), "maxResults", 1000)
        if not 1 <= limit <= BULK_CHANGELOG_MAX_PAGE:
            return jira_error(400, [f"maxResults must be between 1 and {BULK_CHANGELOG_MAX_PAGE}."])
        offset = 0
        token = body.get("nextPageToken")
        if token:
            try:
                padded = str(token) + "=" * (-len(str(token)) % 4)
                offset = int(base64.urlsafe_b64decode(padded).decode().removeprefix("changelog:"))
            except ValueError:
                return jira_error(400, ["The nextPageToken is invalid."])
        issues: dict[int, Issue] = {}
        for value in wanted:
            issue = _visible(caller, caller.site.find_issue(str(value)))
            if issue is not None:
                issues[issue.id] = issue
        groups, next_offset = caller.site.bulk_changelog(list(issues.values()), offset, limit)
        answer: dict[str, Any] = {"issueChangeLogs": groups}
        if next_offset is not None:
            answer["nextPageToken"] = base64.urlsafe_b64encode(f"changelog:{next_offset}".encode()).decode().rstrip("=")
        return json_response(200, answer)

    def add_comment(self, caller: Caller, params: dict[str, str], request: Request) -> Response:
        issue = _issue_or_404(caller, params)
        body = _json_object(request).get("body")
        problem = "Comment body can not be empty!" if body is None else adf_problem(body)
        if problem:
            return jira_error(400, errors={"comment": problem})
        properties = _json_object(request).get("properties")
        if properties is not None and (
            not isinstance(properties, list)
            or not all(isinstance(p, dict) and isinstance(p.get("key"), str) and 0 < len(p["key"]) <= 255 and "value" in p for p in properties)
        ):
            return jira_error(400, errors={"properties": "Each property needs a key (1 to 255 characters) and a value."})
        comment = caller.site.add_comment(issue, body, caller.user, properties=properties)
        return json_response(201, caller.site.comment_json(issue, comment, caller.base))
