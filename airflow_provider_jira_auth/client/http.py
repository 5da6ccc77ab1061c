"""``JiraClient``: Jira Cloud REST API v3 over one pooled ``requests`` session."""

from __future__ import annotations

import json as jsonlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from airflow_provider_jira_auth.client.adf import ensure_adf
from airflow_provider_jira_auth.client.auth_flow import JiraAuth, as_jira_auth, next_request
from airflow_provider_jira_auth.client.paging import next_page_token
from airflow_provider_jira_auth.client.bulk import (
    BULK_CREATE_CHUNK,
    BulkCreateResult,
    BulkFetchResult,
    add_bulk_create_chunk,
    chunked,
    error_item,
    issue_update,
    with_rich_text,
)
from airflow_provider_jira_auth.client.errors import (
    JiraBulkError,
    JiraError,
    JiraHTTPError,
    JiraPathError,
    JiraTransportError,
)
from airflow_provider_jira_auth.client.error_mapping import (
    bad_credential_header,
    error_from_response,
    json_or_none,
    login_refused,
)
from airflow_provider_jira_auth.client.pacing import SitePacer, pacer_for
from airflow_provider_jira_auth.client.parallel_search import ParallelSearch, parallel_applies
from airflow_provider_jira_auth.client.retry import RetryPolicy
from airflow_provider_jira_auth.client.urls import REST_API_PATH, normalize_base_url, rest_endpoint_url

log = logging.getLogger(__name__)


#: Comment ids per ``POST comment/list`` (Jira's limit).
COMMENT_LIST_CHUNK = 1000


def _package_version() -> str:
    try:
        return version("airflow-provider-jira-auth")
    except PackageNotFoundError:
        return "unknown"


DEFAULT_USER_AGENT = f"airflow-provider-jira-auth/{_package_version()}"

#: Jira's own limit for ``maxResults`` of ``search/jql``.
MAX_PAGE_SIZE = 5000

_REST_PREFIX = REST_API_PATH + "/"

def relative_path(path: str) -> str:
    """``path`` relative to ``/rest/api/3``: a leading ``/`` or ``rest/api/3/`` is dropped.

    :raises JiraPathError: for an absolute URL or another REST API.
    """
    if "://" in path or path.startswith("//"):
        raise JiraPathError(
            f"Refusing to call Jira endpoint {path!r}: it is an absolute URL; JiraClient only calls its own "
            "REST root: pass a path relative to it, such as 'issue/ENG-1' or 'search/jql'"
        )
    path = path.lstrip("/")
    if path.startswith("rest/"):
        if not (path + "/").startswith(_REST_PREFIX):
            raise JiraPathError(f"{path!r} is not under /{REST_API_PATH}; JiraClient speaks REST API v3 only")
        path = path[len(_REST_PREFIX) :]
    return path


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def _comma_list(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def _require_jql(jql: str, caller: str) -> None:
    if not isinstance(jql, str) or not jql.strip():
        raise ValueError(
            f"{caller}() needs a JQL query; Jira refuses empty (unbounded) JQL. Use e.g. 'project = ENG ORDER BY key'"
        )


def root_cause(exc: requests.RequestException) -> BaseException:
    """urllib3's reason inside requests' wrapper, whose "Max retries exceeded" would mislead."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return reason if isinstance(reason, BaseException) else exc


def _credentials_from_the_flow(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def _new_session() -> requests.Session:
    session = requests.Session()
    # The one retry policy is ours: urllib3 must not repeat anything behind its back.
    adapter = HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=False))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# -- the client ------------------------------------------------------------------------------


class JiraClient:
    """Jira Cloud REST API v3 client: one pooled session, one retry policy, typed errors.

    Auth is a :class:`~.auth_flow.JiraAuth` (``JiraBasicAuth``, ``JiraOAuth2Auth``): the client
    drives its :meth:`~.auth_flow.JiraAuth.auth_flow` for every attempt, sending each request it
    yields (3LO yields once more after a 401 a refresh may cure, whatever the method, since a
    refused request was not processed). Its ``unauthorized_hint`` replaces the generic advice in
    :class:`JiraAuthenticationError` messages, and its ``secret_values`` are scrubbed from every
    message, like the ``Authorization`` header itself. Any other requests-style auth is sent as it
    sets its headers.

    :param rest_url: the REST root, e.g. ``https://example.atlassian.net/rest/api/3`` or
        ``https://api.atlassian.com/ex/jira/<cloudId>/rest/api/3`` (see :mod:`.urls`).
    :param auth: puts the credentials on each request; ``None`` for anonymous calls.
    :param timeout: seconds, or ``(connect, read)``, for every request.
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param retry: the retry policy; default :class:`RetryPolicy()`.
    :param session: a session to use instead of the client's own; it is not closed by :meth:`close`.
    :param user_agent: the ``User-Agent`` header.
    :param pacer: paces requests to Jira's rate limits; default the process's pacer for this
        site (:func:`~.pacing.pacer_for`), shared with every other client of the site. ``False``
        turns pacing off (the retry policy still honours 429s).
    """

    def __init__(
        self,
        rest_url: str,
        auth: JiraAuth | Callable[[Any], Any] | None,
        *,
        timeout: float | tuple[float, float] = 30.0,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        pacer: SitePacer | bool = True,
    ) -> None:
        self.rest_url = normalize_base_url(rest_url, "rest_url")
        self.auth = auth
        self.pacer: SitePacer | None = pacer_for(self.rest_url) if pacer is True else (pacer or None)
        self.timeout = timeout
        self.verify = verify
        #: HTTP requests this client has sent (attempts, retries included): what an export cost.
        self.calls_sent = 0
        self.retry = retry if retry is not None else RetryPolicy()
        self._owns_session = session is None
        self.session = session if session is not None else _new_session()
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        # What Session.request would work out from the environment (proxies, CA bundle) on every
        # call, scanning os.environ twice each time; the client talks to one host, so once is enough.
        self._send_settings = self.session.merge_environment_settings(self.rest_url, {}, None, verify, None)
        self._auth = as_jira_auth(auth)

    def __repr__(self) -> str:
        return f"JiraClient({self.rest_url!r})"

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (only if the client created the session)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Call an endpoint and return its parsed JSON (``None`` for 204 or an empty body).

        :param method: HTTP method.
        :param path: relative to the REST root, e.g. ``"myself"`` or ``"issue/ENG-1"``.
        :param params: query parameters.
        :param json: request body, sent as JSON.
        :raises JiraError: a subclass saying what went wrong; see :func:`error_from_response`.
        """
        method = method.upper()
        path = relative_path(path)
        return self._parse(method, path, self._send(method, path, params, json))

    def _send(self, method: str, path: str, params: dict[str, Any] | None, body: Any) -> requests.Response:
        """Send with retries, each attempt one run of the auth flow; the final response, whatever its status."""
        url = rest_endpoint_url(self.rest_url, path)
        route = path.partition("?")[0].strip("/")
        session, timeout, settings, auth = self.session, self.timeout, self._send_settings, self._auth
        # The credentials come from the auth flow. Any auth here, even one that adds nothing, also
        # keeps requests from looking the host up in ~/.netrc.
        request = requests.Request(
            method, url, headers=self._headers, params=params or {}, json=body,
            auth=None if self.auth is None else _credentials_from_the_flow,
        )

        def send() -> requests.Response:
            # Prepared per attempt, and the flow run per attempt: each carries current credentials.
            self.calls_sent += 1  # an int's += under the GIL: close enough for a usage figure
            flow = auth.auth_flow(session.prepare_request(request))
            sending = next_request(flow)
            while True:
                response = session.send(sending, timeout=timeout, allow_redirects=True, **settings)
                sending = next_request(flow, response)
                if sending is None:
                    return response
                log.info(
                    "Jira %s %s -> HTTP %s; sending it once more with refreshed credentials",
                    method, route, response.status_code,
                )

        bad_header = False
        try:
            response = self.retry.call(method, route, send, pacer=self.pacer)
        except (JiraError, requests.exceptions.InvalidJSONError):
            raise
        except requests.exceptions.InvalidHeader:
            bad_header = True
        except requests.RequestException as exc:
            raise JiraTransportError(method, route, root_cause(exc)) from exc
        except ValueError as exc:
            if not (isinstance(exc, UnicodeEncodeError) or "header" in str(exc).lower()):
                raise
            bad_header = True
        if bad_header:
            # Raised outside the except block: requests and http.client quote the refused header
            # value, which may be the credential itself, so the original must not be chained.
            raise bad_credential_header()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("Jira %s %s -> HTTP %s in %s", method, route, response.status_code, response.elapsed)
        return response

    def _parse(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        if not 200 <= status < 300 or ("X-Seraph-LoginReason" in response.headers and login_refused(response)):
            raise error_from_response(method, path.partition("?")[0], response, self._auth)
        content = response.content
        if status == 204 or not content:
            return None
        try:
            return jsonlib.loads(content)
        except ValueError:
            if not content.strip():
                return None
            raise error_from_response(method, path.partition("?")[0], response, self._auth) from None

    # -- search -----------------------------------------------------------------------------

    def search_issues(
        self,
        jql: str,
        *,
        fields: str | Iterable[str] | None = None,
        page_size: int = 100,
        expand: str | Iterable[str] | None = None,
        max_results: int | None = None,
        parallelism: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Issues matching ``jql``, read page by page (``POST search/jql`` with ``nextPageToken``).

        A lazy iterator: a page is requested only when the previous one has been consumed, and
        only one page is held in memory. Arguments are checked at call time.

        :param jql: a bounded JQL query; empty JQL raises :class:`ValueError`.
        :param fields: fields to return (list or comma-separated). Jira's default is ``id`` only;
            use ``["*navigable"]`` or ``["*all"]`` for more.
        :param page_size: issues per request, 1..5000 (Jira may return fewer).
        :param expand: e.g. ``"changelog,names"``.
        :param max_results: stop after this many issues; ``None`` for all.
        :param parallelism: above 1, list the matching ids first, then fetch their fields
            ``page_size`` (at most 100) a call on this many threads: the same issues in the same
            order, several times faster; see :mod:`.parallel_search` (1 to 9).
        """
        _require_jql(jql, "search_issues")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if max_results is not None and max_results < 0:
            raise ValueError(f"max_results must be >= 0 or None, got {max_results}")
        body: dict[str, Any] = {"jql": jql, "maxResults": page_size}
        if fields is not None:
            body["fields"] = _comma_list(fields)
        if expand:
            body["expand"] = ",".join(_comma_list(expand))
        if parallel_applies(body, parallelism):
            return ParallelSearch(self, body, page_size, max_results, parallelism)
        return self._search_pages(body, page_size, max_results)

    def _search_pages(self, body: dict[str, Any], page_size: int, limit: int | None) -> Iterator[dict[str, Any]]:
        remaining = limit
        while remaining is None or remaining > 0:
            if remaining is not None:
                body["maxResults"] = min(page_size, remaining)
            page = self.request("POST", "search/jql", json=body) or {}
            issues = page.get("issues") or []
            token = page.get("nextPageToken")
            last = page.get("isLast")
            page = None  # keep only the issues list alive while yielding
            if remaining is not None:
                if len(issues) > remaining:
                    issues = issues[:remaining]
                remaining -= len(issues)
            yield from issues
            token = next_page_token(token, last, body.get("nextPageToken"))
            if token is None:
                return
            body["nextPageToken"] = token

    def approximate_count(self, jql: str) -> int:
        """Jira's estimate of how many issues match ``jql`` (``POST search/approximate-count``)."""
        _require_jql(jql, "approximate_count")
        return int(self.request("POST", "search/approximate-count", json={"jql": jql})["count"])

    # -- issues -----------------------------------------------------------------------------

    def get_issue(
        self, key: str, *, fields: str | Iterable[str] | None = None, expand: str | Iterable[str] | None = None
    ) -> dict[str, Any]:
        """One issue by key or id.

        :raises JiraNotFoundError: it does not exist or is not visible to this user.
        """
        params: dict[str, Any] = {}
        if fields is not None:
            params["fields"] = ",".join(_comma_list(fields))
        if expand:
            params["expand"] = ",".join(_comma_list(expand))
        return self.request("GET", f"issue/{_segment(key)}", params=params or None)

    def bulk_fetch(
        self, keys_or_ids: str | Iterable[str], *, fields: str | Iterable[str] | None = None
    ) -> BulkFetchResult:
        """Issues by key or id, 100 per ``POST issue/bulkfetch``, fetched as they are read.

        Unknown or invisible issues do not stop the iteration: they are collected in the
        returned iterator's ``missing`` (and Jira's ``issueErrors`` in ``issue_errors``), complete
        once it is exhausted. Check them if every key must exist.
        """
        keys = [keys_or_ids] if isinstance(keys_or_ids, str) else keys_or_ids
        field_list = _comma_list(fields) if fields is not None else None

        def fetch(chunk: list[str]) -> Any:
            payload: dict[str, Any] = {"issueIdsOrKeys": chunk}
            if field_list is not None:
                payload["fields"] = field_list
            return self.request("POST", "issue/bulkfetch", json=payload)

        return BulkFetchResult(keys, fetch)

    def create_issue(
        self,
        fields: dict[str, Any],
        *,
        update: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        retrying: bool = False,
        index_lag: float | None = None,
    ) -> dict[str, Any]:
        """Create one issue; a plain-text ``description`` or ``environment`` is converted to ADF.

        :param idempotency_key: create at most one issue for this key, also when an answer is
            lost or the call is repeated (a task retry): the issue carries a marker label, which
            is looked up before anything is sent again; only an issue this connection's account
            created in the named project counts (see ``client/idempotency.py``). Without it, a
            lost answer raises and nothing is resent.
        :param retrying: with ``idempotency_key``, an earlier call may have sent this create (a
            task retry): look for its issue until Jira's search has had ``index_lag`` seconds to
            show it, before creating one.
        :param index_lag: how long Jira's search may take to show a created issue (default
            ``client.idempotency.INDEX_LAG``, 30 s).
        :return: ``{"id", "key", "self"}``.
        """
        payload: dict[str, Any] = {"fields": with_rich_text(fields)}
        if update:
            payload["update"] = update
        if idempotency_key is not None:
            from airflow_provider_jira_auth.client.idempotency import INDEX_LAG, create_issue_once

            lag = INDEX_LAG if index_lag is None else index_lag
            return create_issue_once(self, payload, idempotency_key, retrying=retrying, index_lag=lag)
        return self.request("POST", "issue", json=payload)

    def create_issues(
        self,
        issues: Iterable[dict[str, Any]],
        *,
        raise_on_error: bool = True,
        idempotency_keys: Sequence[str] | None = None,
        retrying: bool = False,
        index_lag: float | None = None,
    ) -> BulkCreateResult:
        """Create many issues, 50 per ``POST issue/bulk``.

        With ``idempotency_keys`` (one distinct key per issue), each issue is created at most once
        across lost answers and repeated calls, like :meth:`create_issue`'s ``idempotency_key``;
        issues that already exist are reported as created, with their keys.

        Each item is a ``fields`` dict, or ``{"fields": ..., "update": ...}``. Jira creates what it
        can and reports the rest per element; indexes in the result refer to positions in
        ``issues``. If a whole request fails after earlier ones created issues, its items and
        all later ones are reported as errors (nothing more is sent), so no created issue goes
        unreported; if nothing was created yet, that request's error is raised as is.

        :param raise_on_error: raise :class:`JiraBulkError` (holding the result) if any issue
            was not created; otherwise return the result with its ``errors``.
        :param retrying: with ``idempotency_keys``, as :meth:`create_issue`'s.
        :param index_lag: with ``idempotency_keys``, as :meth:`create_issue`'s.
        """
        if idempotency_keys is not None:
            from airflow_provider_jira_auth.client.idempotency import INDEX_LAG, create_issues_once

            lag = INDEX_LAG if index_lag is None else index_lag
            return create_issues_once(
                self, issues, idempotency_keys, raise_on_error=raise_on_error, retrying=retrying, index_lag=lag
            )
        result = BulkCreateResult()
        offset = 0
        chunks = chunked((issue_update(item) for item in issues), BULK_CREATE_CHUNK)
        failure: JiraError | None = None
        for chunk in chunks:
            try:
                body = self.bulk_create_chunk(chunk)
            except JiraError as exc:
                if not result.created:
                    raise
                failure = exc
                status = exc.status if isinstance(exc, JiraHTTPError) else None
                # After a 5xx or a lost answer Jira may have created some of them: say so.
                unsure = "outcome unknown, check before retrying: " if status is None or status >= 500 else ""
                result.errors.extend(error_item(offset + n, status, [unsure + str(exc)]) for n in range(len(chunk)))
                offset += len(chunk)
                for rest in chunks:
                    result.errors.extend(
                        error_item(offset + n, None, ["not sent: an earlier request of this bulk create failed"])
                        for n in range(len(rest))
                    )
                    offset += len(rest)
                break
            add_bulk_create_chunk(result, body, offset, len(chunk))
            offset += len(chunk)
        if result.errors and raise_on_error:
            raise JiraBulkError(result) from failure
        return result

    def bulk_create_chunk(self, chunk: list[dict[str, Any]]) -> Any:
        """One ``POST issue/bulk`` of at most 50 ``issueUpdates``; the answer's body, also for a 400
        whose every element failed (Jira reports those per element too)."""
        response = self._send("POST", "issue/bulk", None, {"issueUpdates": chunk})
        # When every element fails Jira answers 400, with the same per-element body as a 201.
        if response.status_code == 400:
            data = json_or_none(response.text)
            if isinstance(data, dict) and isinstance(data.get("errors"), list) and data["errors"]:
                return data
        return self._parse("POST", "issue/bulk", response)

    def update_issue(
        self,
        key: str,
        *,
        fields: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
        notify_users: bool = True,
    ) -> None:
        """Edit an issue (``PUT issue/{key}``).

        :param notify_users: ``False`` suppresses the notification emails; Jira allows that only
            to admins, so it is sent only when ``False``.
        """
        if fields is None and update is None:
            raise ValueError("update_issue() needs fields or update")
        payload: dict[str, Any] = {}
        if fields is not None:
            payload["fields"] = with_rich_text(fields)
        if update is not None:
            payload["update"] = update
        params = None if notify_users else {"notifyUsers": "false"}
        self.request("PUT", f"issue/{_segment(key)}", params=params, json=payload)

    def get_transitions(self, key: str) -> list[dict[str, Any]]:
        """The transitions available to this user on the issue: ``[{"id", "name", "to"}, ...]``."""
        body = self.request("GET", f"issue/{_segment(key)}/transitions")
        return list((body or {}).get("transitions") or [])

    def transition_issue(self, key: str, transition_id: str | int, *, fields: dict[str, Any] | None = None) -> None:
        """Move an issue through a transition, by transition id (see :meth:`get_transitions`)."""
        payload: dict[str, Any] = {"transition": {"id": str(transition_id)}}
        if fields:
            payload["fields"] = with_rich_text(fields)
        self.request("POST", f"issue/{_segment(key)}/transitions", json=payload)

    def issue_changelog(self, key: str, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every changelog entry of an issue, oldest first, a page (``GET issue/{key}/changelog``)
        at a time; see :mod:`.history` for many issues at once."""
        from airflow_provider_jira_auth.client.history import issue_changelog

        return issue_changelog(self, key, page_size=page_size)

    def bulk_changelogs(self, keys_or_ids: str | Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Every changelog entry of up to 1000 issues (``POST changelog/bulkfetch``, paged):
        issue id -> entries, oldest first."""
        from airflow_provider_jira_auth.client.history import bulk_changelogs

        return bulk_changelogs(self, [keys_or_ids] if isinstance(keys_or_ids, str) else keys_or_ids)

    def issue_comments(self, key: str, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every comment of an issue, oldest first, a page (``GET issue/{key}/comment``) at a time."""
        from airflow_provider_jira_auth.client.history import issue_comments

        return issue_comments(self, key, page_size=page_size)

    def add_comment(
        self, key: str, body: str | dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Comment on an issue; plain text is converted to ADF.

        :param idempotency_key: add at most one comment for this key to this issue, also when an
            answer is lost or the task is retried: the comment carries it as an entity property,
            and the issue's newest comments are looked at before anything is sent (again). See
            ``client/idempotency.py``.
        """
        if idempotency_key is not None:
            from airflow_provider_jira_auth.client.idempotency import add_comment_once

            return add_comment_once(self, key, ensure_adf(body), idempotency_key)
        return self.request("POST", f"issue/{_segment(key)}/comment", json={"body": ensure_adf(body)})

    def comments_by_id(self, ids: Iterable[int | str], *, expand: str | Iterable[str] = ()) -> list[dict[str, Any]]:
        """Comments by id, 1000 a call (``POST comment/list``); ``expand="properties"`` adds each
        comment's entity properties. Ids Jira does not show are left out."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        params = {"expand": ",".join(_comma_list(expand))} if expand else None
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), COMMENT_LIST_CHUNK):
            page = self.request("POST", "comment/list", params=params, json={"ids": wanted[start : start + COMMENT_LIST_CHUNK]})
            found.extend(page.get("values") or ())
        return found

    # -- identity ---------------------------------------------------------------------------

    def myself(self) -> dict[str, Any]:
        """The user behind the credentials: the way to test them (401 when refused)."""
        return self.request("GET", "myself")

    def server_info(self) -> dict[str, Any]:
        """Jira's version and base URL; needs no auth."""
        return self.request("GET", "serverInfo")


def usage_note(client: JiraClient, calls_before: int = 0) -> str:
    """``"N call(s) to Jira"`` since ``calls_before``, plus what was left of the hourly quota when
    Jira last said so (for the log line of an export)."""
    note = f"{client.calls_sent - calls_before} call(s) to Jira"
    stats = client.pacer.stats if client.pacer is not None else None
    if stats is not None and stats.quota_remaining is not None:
        note += f"; Jira's last quota answer: {stats.quota_remaining:g} of {stats.quota_limit or 0:g} left"
    return note
