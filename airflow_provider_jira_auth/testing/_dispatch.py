"""Who answers a request: injected faults first, then the auth server, the gateway or a site.

Also where authentication happens, with Atlassian's rules about which credential works where:
classic API tokens only at the site URL, scoped API tokens and OAuth access tokens only
through the gateway (``/ex/jira/{cloudId}/...``), scopes enforced at the gateway.
"""

from __future__ import annotations

import time

import base64
import binascii
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ._accounts import Accounts, User
from ._faults import AnswerDelays, DelayBook, FaultBook, FaultMix, QuotaWindow, RequestRateLimit
from ._http import App, HttpError, Request, Response, jira_error, json_response
from ._oauth import OAuthServer, TokenError
from ._rest import REMOVED_MESSAGE, REMOVED_PATHS, Caller, JiraRestApi, Route
from ._runtime import Counters
from ._scopes import CLASSIC_SCOPES, CONFLUENCE_SCOPES, NON_SITE_SCOPES
from ._site import JiraSite

GATEWAY_UNAUTHORIZED = {"code": 401, "message": "Unauthorized"}
SCOPE_MISMATCH = {"code": 401, "message": "Unauthorized; scope does not match"}
SITE_UNAUTHORIZED = "Client must be authenticated to access this resource."
AVATAR_URL = "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png"
MAX_RECORDED = 100_000


@dataclass
class RecordedRequest:
    """One request the emulator answered (or dropped: ``status`` None)."""

    method: str
    path: str  # without the query string
    query: dict[str, str]  # first value of each parameter; all of them in query_all
    query_all: dict[str, list[str]]
    auth: str | None  # "basic" | "bearer" | None, from the Authorization header's scheme
    status: int | None
    via: str  # "site" | "gateway" | "auth"
    body: Any  # parsed JSON (or form fields), else None
    headers: dict[str, str]
    time: float
    #: seconds its answer was held back after the work was done (``delay_next``, answer delays)
    delay: float = 0.0


@dataclass
class _Identity:
    user: User | None
    scopes: tuple[str, ...] | None  # None: not limited by scopes (classic API token)
    headers: dict[str, str]


def _credentials(request: Request) -> tuple[str, str, str] | None:
    """("basic", email, token) or ("bearer", token, "") or None; malformed Basic yields empty values."""
    header = request.headers.get("Authorization") or ""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return "bearer", value.strip(), ""
    if scheme.lower() == "basic":
        try:
            email, _, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "basic", "", ""
        return "basic", email, token
    return None


def _parsed_body(request: Request) -> Any:
    if not request.body:
        return None
    try:
        return json.loads(request.body)
    except ValueError:
        pass
    if "form-urlencoded" in (request.headers.get("Content-Type") or ""):
        return dict(parse_qsl(request.body.decode("utf-8", "replace")))
    return None


class Dispatcher:
    def __init__(
        self,
        *,
        lock: threading.RLock,
        clock: Callable[[], float],
        counters: Counters,
        accounts: Accounts,
        oauth: OAuthServer,
        sites: dict[str, JiraSite],
        default_site: JiraSite,
        default_user: User,
    ) -> None:
        self.lock = lock
        self.clock = clock
        self.counters = counters
        self.accounts = accounts
        self.oauth = oauth
        self.sites = sites
        self.default_site = default_site
        self.default_user = default_user
        self.rest = JiraRestApi(clock)
        self.faults = FaultBook()
        self.fault_mix: FaultMix | None = None
        self.rate_limit: RequestRateLimit | None = None
        self.quota: QuotaWindow | None = None
        self.delays = DelayBook()
        self.answer_delays = AnswerDelays()
        self._in_flight = 0  # Jira REST calls being served right now (answer delays included)
        self.sleep: Callable[[float], Any] = time.sleep  # how a late answer waits out its delay
        self.requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self.consent = "approve"
        self.consent_user: User | None = None
        self.api_url = ""  # the gateway's base URL, known once the main server is bound

    def app(self, home: JiraSite, *, main: bool) -> App:
        """The request handler of one server: the main one also plays auth server and gateway."""
        return lambda request: self.handle(request, home, main)

    def handle(self, request: Request, home: JiraSite, main: bool) -> Response | None:
        if "/rest/api/" not in request.path:
            return self._handle(request, home, main)
        with self.lock:
            self._in_flight += 1
            if self._in_flight > self.counters.get("peak_concurrent_calls", 0):
                self.counters["peak_concurrent_calls"] = self._in_flight
        try:
            return self._handle(request, home, main)
        finally:
            with self.lock:
                self._in_flight -= 1

    def _handle(self, request: Request, home: JiraSite, main: bool) -> Response | None:
        with self.lock:
            via = self._via(request.path, main)
            now = self.clock()
            rule = self.faults.take(request.method, request.path)
            limited = self.quota.check(request.path, now) if rule is None and self.quota else None
            if limited is None and rule is None and self.rate_limit:
                limited = self.rate_limit.check(request.path, now)
            if rule is None and limited is None and self.fault_mix is not None:
                rule = self.fault_mix.draw(request.method, request.path)
            if limited is not None:
                self.counters.bump("rate_limited")
                response = limited
            elif rule is not None and not rule.after_work:
                self.counters.bump(rule.counter)
                response = rule.respond(now)
            else:
                try:
                    response = self._route(request, home, main)
                except HttpError as exc:
                    response = exc.response
                if rule is not None:  # the work is done; its answer is lost
                    self.counters.bump(rule.counter)
                    response = rule.respond(now)
                elif self.rate_limit is not None and "/rest/api/" in request.path:
                    response.headers.update(self.rate_limit.headers())  # Jira's headers on every answer
            delay = self.delays.take(request.method, request.path)
            late = delay.seconds if delay is not None else 0.0
            if self.answer_delays.active and response is not None and "/rest/api/" in request.path:
                late += self.answer_delays.seconds(response.issues, response.ids)
            self._record(request, response, via, late)
        if late > 0:
            # The work is done and recorded; only the answer is late (outside the lock, so the
            # rest of the emulator keeps serving).
            self.sleep(late)
        return response

    @staticmethod
    def _via(path: str, main: bool) -> str:
        if main and path in ("/authorize", "/oauth/token"):
            return "auth"
        if main and (path.startswith("/ex/") or path == "/oauth/token/accessible-resources"):
            return "gateway"
        return "site"

    def _record(self, request: Request, response: Response | None, via: str, delay: float) -> None:
        scheme = (request.headers.get("Authorization") or "").strip().partition(" ")[0].lower()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query={k: v[0] for k, v in request.query_all.items()},
                query_all=request.query_all,
                auth=scheme if scheme in ("basic", "bearer") else None,
                status=response.status if response is not None else None,
                via=via,
                body=_parsed_body(request),
                headers=dict(request.headers.items()),
                time=self.clock(),
                delay=delay,
            )
        )

    # -- routing ------------------------------------------------------------------------------------

    def _route(self, request: Request, home: JiraSite, main: bool) -> Response:
        path = request.path
        if main:
            if path == "/authorize":
                return self._authorize(request)
            if path == "/oauth/token":
                return self._token(request)
            if path == "/oauth/token/accessible-resources":
                return self._accessible_resources(request)
            if path.startswith("/ex/jira/"):
                cloud_id, _, rest = path[len("/ex/jira/") :].partition("/")
                site = self.sites.get(cloud_id)
                if site is None:
                    return json_response(404, {"code": 404, "message": f"No Jira site with cloudId '{cloud_id}'"})
                return self._api(request, site, "/" + rest, gateway=True)
        if path == "/_edge/tenant_info" and request.method == "GET":
            return json_response(200, {"cloudId": home.cloud_id})
        if path.startswith("/rest/"):
            return self._api(request, home, path, gateway=False)
        return jira_error(404, [f"Nothing at {path} on the Jira Cloud emulator"])

    def _api(self, request: Request, site: JiraSite, path: str, *, gateway: bool) -> Response:
        self.counters.bump("api_calls")
        if path in REMOVED_PATHS:
            return jira_error(410, [REMOVED_MESSAGE])
        found = self.rest.match(request.method, path)
        if isinstance(found, Response):
            return found
        route, params = found
        identity = self._authenticate(request, route, gateway)
        if isinstance(identity, Response):
            self.counters.bump("auth_failures")
            return identity
        if identity.scopes is not None:
            required = CLASSIC_SCOPES[(route.method, route.template)]
            if not set(required) <= set(identity.scopes):
                self.counters.bump("scope_rejections")
                return json_response(401, SCOPE_MISMATCH)
        # Through the gateway, Jira's self links point at the gateway too.
        base = f"{self.api_url}/ex/jira/{site.cloud_id}" if gateway else site.url
        response = route.handler(Caller(identity.user, site, base), params, request)
        response.headers.update(identity.headers)
        return response

    def _authenticate(self, request: Request, route: Route, gateway: bool) -> _Identity | Response:
        credentials = _credentials(request)
        if credentials is None:
            if route.anonymous:
                return _Identity(None, None, {})
            return json_response(401, GATEWAY_UNAUTHORIZED) if gateway else jira_error(401, [SITE_UNAUTHORIZED])
        kind, first, second = credentials
        if gateway:
            if kind == "bearer":
                access = self.oauth.check_access_token(first)
                if access is None:
                    return json_response(401, GATEWAY_UNAUTHORIZED)
                return _Identity(access.grant.user, access.grant.scopes, {})
            user = self.accounts.check_token(first, second)
            # Classic (unscoped) API tokens work only at the site URL.
            if user is None or not user.scoped:
                return json_response(401, GATEWAY_UNAUTHORIZED)
            return _Identity(user, user.scopes, {})
        # At the site URL only classic API tokens work: OAuth and scoped tokens get 401.
        user = self.accounts.check_token(first, second) if kind == "basic" else None
        if user is not None and not user.scoped:
            return _Identity(user, None, {})
        failed = {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"}
        if route.anonymous:
            # Jira answers anonymous-readable endpoints even when the credentials are bad.
            return _Identity(None, None, failed)
        return jira_error(401, [SITE_UNAUTHORIZED], headers=failed)

    # -- the auth server -------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        if request.method != "GET":
            return jira_error(405, ["Use GET /authorize"])
        params = {k: v[0] for k, v in request.query_all.items()}
        result = self.oauth.authorize(params, self.consent_user or self.default_user, self.consent)
        if result.location is not None:
            return Response(302, headers={"Location": result.location})
        page = f"<!DOCTYPE html><html><body><h1>Something went wrong</h1><p>{result.message}</p></body></html>"
        return Response(result.status, page.encode(), "text/html;charset=UTF-8")

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return json_response(405, {"error": "invalid_request", "error_description": "Use POST"})
        form = _parsed_body(request)
        if not isinstance(form, dict) and request.body:
            # requests-oauthlib may send form data without saying so in Content-Type.
            form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        if not isinstance(form, dict) or not form:
            return json_response(400, {"error": "invalid_request", "error_description": "Missing request body"})
        try:
            answer = self.oauth.token(form)
        except TokenError as exc:
            return json_response(exc.status, exc.body)
        return json_response(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _accessible_resources(self, request: Request) -> Response:
        credentials = _credentials(request)
        access = self.oauth.check_access_token(credentials[1]) if credentials and credentials[0] == "bearer" else None
        if access is None:
            return json_response(401, GATEWAY_UNAUTHORIZED)
        jira_scopes = [s for s in access.grant.scopes if s not in NON_SITE_SCOPES]
        default = self.default_site
        # A Confluence entry with the same id as the Jira site comes first: clients must match the
        # site URL and check the scopes, never just take the first entry.
        resources = [
            {
                "id": default.cloud_id,
                "name": default.name,
                "url": default.url,
                "scopes": CONFLUENCE_SCOPES,
                "avatarUrl": AVATAR_URL,
            }
        ]
        resources += [
            {"id": site.cloud_id, "name": site.name, "url": site.url, "scopes": jira_scopes, "avatarUrl": AVATAR_URL}
            for site in self.sites.values()
        ]
        return json_response(200, resources)
