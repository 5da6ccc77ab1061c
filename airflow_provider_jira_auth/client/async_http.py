"""``AsyncJiraClient``: the read calls a trigger needs, on ``httpx.AsyncClient``.

A trigger shares the triggerer's event loop with every other trigger: nothing here may block
it. The Jira calls go through ``httpx.AsyncClient`` (Airflow already depends on httpx). The
auth, though, is the same :class:`~.auth_flow.JiraAuth` the sync client drives, so that a
trigger gets its credentials exactly as a task does: Basic is a fixed header, and 3LO asks its
token provider (the token store directly, or the api-server's token broker in a triggerer) for
an access token, which may mean a blocking refresh under the store's lock. Rewriting that
machinery for asyncio would duplicate the part of the provider that must not have two
versions, so each step of a flow that may block (``JiraAuth.blocking``: 3LO) runs in a worker
thread (``asyncio.to_thread``) instead: two thread hops per request, never a blocked loop. Basic
auth's steps only set a header, and run on the loop.

The decisions (what to retry, how long to wait) are :class:`RetryPolicy`'s, run through its
async entry point (:meth:`RetryPolicy.acall`), and the pacing is the site's one
:class:`~.pacing.SitePacer`, shared with the sync clients; the error
mapping is :func:`~airflow_provider_jira_auth.client.error_mapping.error_from_response`'s, which
reads only attributes an ``httpx.Response`` shares with a ``requests.Response``. No Airflow imports.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from airflow_provider_jira_auth.client.auth_flow import AuthFlow, JiraAuth, as_jira_auth, next_request
from airflow_provider_jira_auth.client.errors import JiraTransportError
from airflow_provider_jira_auth.client.error_mapping import bad_credential_header, error_from_response, login_refused
from airflow_provider_jira_auth.client.paging import next_page_token
from airflow_provider_jira_auth.client.http import DEFAULT_USER_AGENT, MAX_PAGE_SIZE, relative_path
from airflow_provider_jira_auth.client.pacing import SitePacer, pacer_for
from airflow_provider_jira_auth.client.retry import RetryPolicy, is_safe_to_repeat
from airflow_provider_jira_auth.client.urls import normalize_base_url, rest_endpoint_url

log = logging.getLogger(__name__)

#: httpx errors raised before the request reached the server: safe to repeat for any method.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _comma_list(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


class AsyncJiraClient:
    """Jira Cloud REST API v3 reads for asyncio code (triggers).

    :param rest_url: the REST root, as for :class:`~airflow_provider_jira_auth.client.http.JiraClient`.
    :param auth: a :class:`~.auth_flow.JiraAuth` (``JiraBasicAuth``, ``JiraOAuth2Auth``), whose
        flow the client drives as the sync client does; the steps of a flow that may block (3LO
        may refresh) in a worker thread.
    :param timeout: seconds for every request.
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param retry: the retry policy whose decisions and waits apply; default :class:`RetryPolicy()`.
    :param http: an ``httpx.AsyncClient`` to use; it is not closed by :meth:`aclose`.
    :param pacer: as for the sync client: by default the process's pacer for this site, the one
        the site's sync clients use too; ``False`` turns pacing off.
    """

    def __init__(
        self,
        rest_url: str,
        auth: JiraAuth | Callable[[Any], Any] | None,
        *,
        timeout: float = 30.0,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        pacer: SitePacer | bool = True,
    ) -> None:
        self.rest_url = normalize_base_url(rest_url, "rest_url")
        self.auth = auth
        self.pacer: SitePacer | None = pacer_for(self.rest_url) if pacer is True else (pacer or None)
        self.retry = retry if retry is not None else RetryPolicy()
        self._owns_http = http is None
        self.http = http if http is not None else httpx.AsyncClient(timeout=timeout, verify=_tls(verify))
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        self._auth = as_jira_auth(auth)

    def __repr__(self) -> str:
        return f"AsyncJiraClient({self.rest_url!r})"

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> AsyncJiraClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- transport --------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """Call an endpoint and return its parsed JSON (``None`` for 204 or an empty body).

        :raises JiraError: the same typed errors as the sync client.
        """
        method = method.upper()
        path = relative_path(path)
        route = path.partition("?")[0].strip("/")
        response = await self._send_with_retries(method, route, path, params, json)
        return self._parse(method, route, response)

    async def _send_once(self, method: str, path: str, params: dict[str, Any] | None, body: Any) -> httpx.Response:
        """One run of the auth flow; a flow that may block (3LO: store lock, broker call) steps off the loop."""
        flow = self._auth.auth_flow(
            self.http.build_request(
                method, rest_endpoint_url(self.rest_url, path), params=params, json=body, headers=self._headers
            )
        )
        step = self._step_in_thread if self._auth.blocking else self._step
        sending = await step(flow)
        while True:
            response = await self.http.send(sending)
            sending = await step(flow, response)
            if sending is None:
                return response
            await response.aclose()
            log.info(
                "Jira %s %s -> HTTP %s; sending it once more with refreshed credentials",
                method, path.partition("?")[0].strip("/"), response.status_code,
            )

    @staticmethod
    async def _step(flow: AuthFlow[httpx.Request], response: httpx.Response | None = None) -> httpx.Request | None:
        return next_request(flow, response)

    @staticmethod
    async def _step_in_thread(
        flow: AuthFlow[httpx.Request], response: httpx.Response | None = None
    ) -> httpx.Request | None:
        return await asyncio.to_thread(next_request, flow, response)

    async def _send_with_retries(
        self, method: str, route: str, path: str, params: dict[str, Any] | None, body: Any
    ) -> httpx.Response:
        """The retry policy's async entry point drives the attempts, as ``RetryPolicy.call`` does for the sync client."""

        async def send() -> httpx.Response:
            bad_header = False
            try:
                return await self._send_once(method, path, params, body)
            except (httpx.LocalProtocolError, UnicodeEncodeError):
                bad_header = True  # raised below, unchained: the original quotes the header value
            if bad_header:
                raise bad_credential_header()
            raise AssertionError("unreachable")  # pragma: no cover

        try:
            return await self.retry.acall(
                method,
                route,
                send,
                errors=(httpx.TransportError,),
                retry_error=lambda exc: self._retry_error(method, route, exc),  # type: ignore[arg-type]
                pacer=self.pacer,
            )
        except httpx.TransportError as exc:
            raise JiraTransportError(method, route, exc) from exc

    @staticmethod
    def _retry_error(method: str, route: str, exc: httpx.TransportError) -> bool:
        if isinstance(exc.__cause__, ssl.SSLError) or "certificate" in str(exc).lower():
            return False  # a certificate problem does not heal by itself
        if isinstance(exc, _NOTHING_SENT):
            return True
        return is_safe_to_repeat(method, route)

    def _parse(self, method: str, route: str, response: httpx.Response) -> Any:
        status = response.status_code
        # The one error mapping; it reads only what httpx and requests responses share.
        if not 200 <= status < 300 or ("X-Seraph-LoginReason" in response.headers and login_refused(response)):  # type: ignore[arg-type]
            raise error_from_response(method, route, response, self._auth)  # type: ignore[arg-type]
        content = response.content
        if status == 204 or not content.strip():
            return None
        try:
            return jsonlib.loads(content)
        except ValueError:
            raise error_from_response(method, route, response, self._auth) from None  # type: ignore[arg-type]

    # -- reads ------------------------------------------------------------------------------

    async def search_pages(
        self,
        jql: str,
        *,
        fields: str | Iterable[str] | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of issues matching ``jql`` (``POST search/jql``, following ``nextPageToken``),
        one list a page, for a caller that decides page by page how far to read."""
        if not isinstance(jql, str) or not jql.strip():
            raise ValueError("search_pages() needs a JQL query; Jira refuses empty (unbounded) JQL")
        body: dict[str, Any] = {"jql": jql, "maxResults": max(1, min(page_size, MAX_PAGE_SIZE))}
        if fields is not None:
            body["fields"] = _comma_list(fields)
        while True:
            page = await self.request("POST", "search/jql", json=body) or {}
            yield list(page.get("issues") or [])
            token = next_page_token(page.get("nextPageToken"), page.get("isLast"), body.get("nextPageToken"))
            if token is None:
                return
            body["nextPageToken"] = token

    async def search_issues(
        self,
        jql: str,
        *,
        fields: str | Iterable[str] | None = None,
        max_results: int = 100,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Up to ``max_results`` issues matching ``jql`` (``POST search/jql``, following ``nextPageToken``).

        A list, not a generator: a trigger wants a bounded answer per poke.
        """
        if not isinstance(jql, str) or not jql.strip():
            raise ValueError("search_issues() needs a JQL query; Jira refuses empty (unbounded) JQL")
        if max_results < 0:
            raise ValueError(f"max_results must be >= 0, got {max_results}")
        body: dict[str, Any] = {"jql": jql}
        if fields is not None:
            body["fields"] = _comma_list(fields)
        issues: list[dict[str, Any]] = []
        while len(issues) < max_results:
            body["maxResults"] = max(1, min(page_size, max_results - len(issues), MAX_PAGE_SIZE))
            page = await self.request("POST", "search/jql", json=body) or {}
            issues.extend(page.get("issues") or [])
            token = next_page_token(page.get("nextPageToken"), page.get("isLast"), body.get("nextPageToken"))
            if token is None:
                break
            body["nextPageToken"] = token
        return issues[:max_results]

    async def approximate_count(self, jql: str) -> int:
        """Jira's estimate of how many issues match ``jql`` (``POST search/approximate-count``)."""
        if not isinstance(jql, str) or not jql.strip():
            raise ValueError("approximate_count() needs a JQL query; Jira refuses empty (unbounded) JQL")
        return int((await self.request("POST", "search/approximate-count", json={"jql": jql}))["count"])

    async def get_issue(
        self, key: str, *, fields: str | Iterable[str] | None = None, expand: str | Iterable[str] | None = None
    ) -> dict[str, Any]:
        """One issue by key or id (``GET issue/{key}``)."""
        params: dict[str, Any] = {}
        if fields is not None:
            params["fields"] = ",".join(_comma_list(fields))
        if expand:
            params["expand"] = ",".join(_comma_list(expand))
        return await self.request("GET", f"issue/{quote(str(key), safe='')}", params=params or None)


def _tls(verify: bool | str) -> bool | ssl.SSLContext:
    """httpx's ``verify``: a CA bundle path becomes an SSL context (httpx deprecates paths)."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify
