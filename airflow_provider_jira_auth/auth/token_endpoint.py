"""Atlassian's OAuth 2.0 token endpoint (refresh, code exchange) and accessible-resources, and
the mapping of its errors; which site of a grant is the connection's. Knows nothing about where
tokens are kept. No Airflow imports.

Why plain ``requests`` and not requests-oauthlib's ``OAuth2Session``: Atlassian wants a JSON
body, and ``OAuth2Session.refresh_token()`` always posts form data (its compliance hook's body is
url-decoded back into ``data=``; only ``fetch_token()``'s hook could switch to JSON). Both also
refuse ``http://`` even for the loopback hosts this project allows (emulator, local proxies)
unless the process-wide ``OAUTHLIB_INSECURE_TRANSPORT`` is set; log the request body (client
secret, refresh token) and the token response at DEBUG; and raise oauthlib errors that drop the
HTTP status the error mapping below needs. The protocol is three small JSON calls.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import (
    JiraClientSecretError,
    JiraGrantRevokedError,
    JiraOAuthError,
    JiraTransportError,
    scrub,
)
from airflow_provider_jira_auth.client.http import DEFAULT_USER_AGENT, root_cause
from airflow_provider_jira_auth.client.retry import RetryPolicy
from airflow_provider_jira_auth.client.urls import (
    accessible_resources_url,
    authorize_url,
    normalize_base_url,
    token_url,
)

log = logging.getLogger(__name__)

# Retries of a refresh must end well inside Atlassian's 10-minute reuse leeway: past it, resending
# a refresh token whose answer was lost would revoke the grant. Two minutes of retries plus one
# request's timeout stays far below.
TOKEN_ENDPOINT_POLICY = RetryPolicy(max_retry_after=30.0, max_total_wait=120.0)

#: The token endpoint and the sites endpoint as the retry policy's logs name them.
TOKEN_PATH = "oauth/token"
RESOURCES_PATH = "oauth/token/accessible-resources"

#: Token-endpoint ``error`` codes that mean "a person must consent again" (Atlassian: "Implementing OAuth 2.0 (3LO)").
GRANT_ERRORS = frozenset({"invalid_grant", "unauthorized_client"})
#: ... and those that mean "the client id or secret is wrong".
CLIENT_ERRORS = frozenset({"access_denied", "invalid_client"})

DEVELOPER_CONSOLE = "https://developer.atlassian.com/console/myapp/"

# Atlassian answers in seconds; RFC 6749 makes expires_in optional, Atlassian's default is an hour.
_DEFAULT_EXPIRES_IN = 3600.0


def consent_command(conn_id: str | None) -> str:
    """The command a person runs to consent again."""
    return f"airflow-jira-auth authorize --conn-id {conn_id or '<conn_id>'}"


def _connection(conn_id: str | None) -> str:
    return f"connection {conn_id!r}" if conn_id else "this connection"


# -- the token endpoint ------------------------------------------------------------------------


def token_endpoint_error(
    response: requests.Response,
    *,
    conn_id: str | None,
    grant_type: str,
    secrets: Iterable[str | None] = (),
) -> JiraOAuthError:
    """The exception for a token-endpoint answer that is not a token: the one error mapping.

    ``invalid_grant``/``unauthorized_client`` give :class:`JiraGrantRevokedError` (consent again),
    ``access_denied`` (401) gives :class:`JiraClientSecretError` (fix the secret); anything else,
    including a 5xx that outlasted the retries, :class:`JiraOAuthError`. ``secrets`` are scrubbed
    from whatever Atlassian (or a proxy) said before it goes into the message.

    :param response: the final answer of ``POST {auth_url}/oauth/token``.
    :param conn_id: the connection, named in the message and the consent command.
    :param grant_type: ``"refresh_token"`` or ``"authorization_code"``.
    :param secrets: values that must not appear in the message (client secret, tokens, code).
    """
    status = response.status_code
    secret_list = list(secrets)
    text = scrub(response.text if response.content else "", secret_list)
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    error = str(data.get("error") or "") if isinstance(data, dict) else ""
    description = str(data.get("error_description") or "") if isinstance(data, dict) else ""
    said = f"HTTP {status} {error}: {description}".rstrip(": ") if error else f"HTTP {status}"
    who = _connection(conn_id)

    if error in GRANT_ERRORS:
        if grant_type == "authorization_code":
            what = (
                f"the authorization code of {who} was refused ({said}): codes work once and for 10 minutes, "
                "with the redirect_uri of the consent"
            )
        else:
            what = f"the grant of {who} is no longer valid ({said})"
        return JiraGrantRevokedError(f"{what}: a person must consent again: {consent_command(conn_id)}")
    if error in CLIENT_ERRORS or status == 401:
        return JiraClientSecretError(
            f"the token endpoint refused the client credentials of {who} ({said}): the client secret "
            f"(or client id) is wrong: copy it again from the developer console ({DEVELOPER_CONSOLE})"
        )
    if data is None and text.strip():
        content_type = response.headers.get("Content-Type") or "no content type"
        return JiraOAuthError(
            f"the token endpoint of {who} answered HTTP {status} with a non-JSON body ({content_type}): "
            f"{text[:200]!r}. A proxy may be answering instead of Atlassian: check the connection's auth_url"
        )
    if status >= 500 or status == 429:
        return JiraOAuthError(
            f"the token endpoint of {who} kept failing ({said}) after the retries: Atlassian's auth "
            "service is unavailable; a later retry of the task should get through"
        )
    return JiraOAuthError(f"the token endpoint refused the {grant_type} request of {who} ({said})")


class OAuthTokenClient:
    """Atlassian's OAuth 2.0 token endpoint for one app: refresh, code exchange, sites.

    Stateless: it never keeps a token between calls; whoever calls :meth:`refresh` decides which
    state to refresh (see :class:`RefreshingTokenProvider`). Thread-safe.

    :param auth_url: the auth server, e.g. ``https://auth.atlassian.com`` (extra ``auth_url``).
    :param client_id: the app's client id from the developer console.
    :param client_secret: the app's secret; never logged or shown by ``repr``.
    :param conn_id: the connection these tokens belong to, named in errors and logs.
    :param timeout: seconds per HTTP request.
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param retry: the project's retry policy; its waits and attempts apply to the token endpoint,
        where 5xx and transport errors are retried too (a refresh is safe to repeat).
    :param session: a session to use; it is not closed by :meth:`close`.
    :param clock: "now" in epoch seconds, which expiry times count from (tests pass a movable one).
    """

    def __init__(
        self,
        auth_url: str,
        client_id: str,
        client_secret: str,
        *,
        conn_id: str | None = None,
        timeout: float | tuple[float, float] = 30,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth_url = normalize_base_url(auth_url, "extra.auth_url")
        self.clock = clock
        self.token_url = token_url(self.auth_url)
        self.client_id = client_id
        self._client_secret = client_secret
        self.conn_id = conn_id
        self.timeout = timeout
        self.verify = verify
        self.retry = retry if retry is not None else TOKEN_ENDPOINT_POLICY
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self._headers = {"Accept": "application/json", "User-Agent": DEFAULT_USER_AGENT}

    def __repr__(self) -> str:
        return f"OAuthTokenClient({self.auth_url!r}, client_id={self.client_id!r}, conn_id={self.conn_id!r})"

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> OAuthTokenClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- grants -------------------------------------------------------------------------------

    def refresh(self, state: TokenState) -> TokenState:
        """Exchange ``state.refresh_token`` for a new access token (and usually a new refresh token).

        Atlassian retires the refresh token sent: the caller must persist the returned state
        before using it (see :meth:`TokenStore.refreshing`).

        :return: the new state; without a ``refresh_token`` in the answer the old one stays,
            with its ``rotated_at``.
        :raises JiraGrantRevokedError: the grant is gone; a person must consent again.
        :raises JiraClientSecretError: the client id or secret is wrong.
        :raises JiraOAuthError: any other refusal, or 5xx after the retries.
        :raises JiraTransportError: no answer after the retries.
        """
        body = {"grant_type": "refresh_token", "refresh_token": state.refresh_token}
        now = self.clock()
        # Safe to repeat: if Atlassian rotated the token and the answer was lost, the retired
        # token sent again within the reuse leeway still works (the policy stops well inside it).
        answer = self._post(body, secrets=(state.refresh_token, state.access_token), repeatable=True)
        return self._state_from(answer, now, previous=state)

    def exchange_code(self, code: str, redirect_uri: str) -> TokenState:
        """The code-exchange step of the consent: a first :class:`TokenState` for a new grant.

        :param code: the ``code`` Atlassian sent to ``redirect_uri``.
        :param redirect_uri: the callback URL of the consent request, exactly.
        :raises JiraOAuthError: no refresh token came back (``offline_access`` missing from the scopes).
        """
        body = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        now = self.clock()
        # Not repeatable: a code works once, and a lost answer's retry would only get invalid_grant.
        answer = self._post(body, secrets=(code,), repeatable=False)
        if not answer.get("refresh_token"):
            raise JiraOAuthError(
                f"the consent of {_connection(self.conn_id)} gave no refresh token: add the scope "
                f"offline_access to the consent request and consent again: {consent_command(self.conn_id)}"
            )
        return self._state_from(answer, now, previous=None)

    def authorization_url(self, redirect_uri: str, scopes: Sequence[str], state: str) -> str:
        """The consent page to send a person to (step 1 of Atlassian's 3LO flow: "Implementing OAuth 2.0 (3LO)").

        :param redirect_uri: a callback URL registered for the app in the developer console.
        :param scopes: the scopes to ask for; include ``offline_access`` to get a refresh token.
        :param state: an unguessable value bound to the person; check it when they come back.
        """
        query = {
            "audience": "api.atlassian.com",
            "client_id": self.client_id,
            "scope": " ".join(scopes),
            "redirect_uri": redirect_uri,
            "state": state,
            "response_type": "code",
            "prompt": "consent",
        }
        return f"{authorize_url(self.auth_url)}?{urlencode(query)}"

    def accessible_resources(self, access_token: str, api_url: str) -> list[dict[str, Any]]:
        """The sites the grant covers: ``[{"id": cloudId, "name", "url", "scopes", ...}]``.

        :param access_token: a current access token of the grant.
        :param api_url: the API gateway, e.g. ``https://api.atlassian.com`` (extra ``api_url``).
        """
        url = accessible_resources_url(normalize_base_url(api_url, "extra.api_url"))
        headers = {**self._headers, "Authorization": f"Bearer {access_token}"}

        def send() -> requests.Response:
            return self.session.get(url, headers=headers, timeout=self.timeout, verify=self.verify)

        try:
            response = self.retry.call("GET", RESOURCES_PATH, send)
        except requests.RequestException as exc:
            raise JiraTransportError("GET", url, root_cause(exc)) from exc
        who = _connection(self.conn_id)
        if response.status_code == 401:
            raise JiraOAuthError(
                f"the API gateway refused the access token of {who} when listing its sites (HTTP 401): "
                f"the grant may have been revoked; consent again: {consent_command(self.conn_id)}"
            )
        data = _json(response)
        if response.status_code != 200 or not isinstance(data, list):
            raise JiraOAuthError(
                f"listing the sites of {who} failed: GET {url} -> HTTP {response.status_code}: "
                f"{scrub(response.text, [access_token])[:200]!r}"
            )
        return [entry for entry in data if isinstance(entry, dict)]

    # -- plumbing -----------------------------------------------------------------------------

    def _post(self, body: dict[str, str], *, secrets: Iterable[str | None], repeatable: bool) -> dict[str, Any]:
        payload = {**body, "client_id": self.client_id, "client_secret": self._client_secret}

        def send() -> requests.Response:
            # No redirects: a redirected POST would carry the secret to wherever it points.
            return self.session.post(
                self.token_url,
                json=payload,
                headers=self._headers,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
            )

        try:
            response = self.retry.call("POST", TOKEN_PATH, send, repeatable=repeatable)
        except requests.RequestException as exc:
            raise JiraTransportError("POST", self.token_url, root_cause(exc)) from exc
        all_secrets = [self._client_secret, *secrets]
        if response.status_code != 200:
            raise token_endpoint_error(
                response, conn_id=self.conn_id, grant_type=body["grant_type"], secrets=all_secrets
            )
        answer = _json(response)
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise JiraOAuthError(
                f"the token endpoint of {_connection(self.conn_id)} answered HTTP 200 without an access "
                "token: a proxy may be answering instead of Atlassian; check the connection's auth_url"
            )
        return answer

    def _state_from(self, answer: Mapping[str, Any], sent_at: float, previous: TokenState | None) -> TokenState:
        try:
            expires_in = float(answer.get("expires_in") or _DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            raise JiraOAuthError(
                f"the token endpoint of {_connection(self.conn_id)} sent an expires_in that is not a number"
            ) from None
        scope = answer.get("scope")
        scopes = tuple(str(scope).split()) if scope else (previous.scopes if previous else ())
        refresh_token = str(answer.get("refresh_token") or "").strip()
        rotated_at: float | None = sent_at
        if previous is not None and refresh_token in ("", previous.refresh_token):
            # An answer without refresh_token keeps the one sent current: never store an empty value.
            refresh_token, rotated_at = previous.refresh_token, previous.rotated_at
        return TokenState(
            refresh_token=refresh_token,
            access_token=str(answer["access_token"]),
            # From when the request left, not when the answer came: errs on the early side.
            expires_at=sent_at + expires_in,
            scopes=scopes,
            rotated_at=rotated_at,
            lifetime=expires_in,
        )


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# -- sites ------------------------------------------------------------------------------------


def _site_key(url: str) -> str:
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    return f"{parts.netloc}{parts.path}".rstrip("/").lower()


def _is_jira_entry(entry: Mapping[str, Any]) -> bool:
    # Classic (read:jira-work) and granular (read:issue:jira, ...:jira-software) scopes both say "jira".
    return any("jira" in str(scope) for scope in entry.get("scopes") or ())


def pick_site(resources: Sequence[Mapping[str, Any]], site_url: str) -> dict[str, Any]:
    """The accessible-resources entry of the configured Jira site.

    A grant often covers several sites, and a Confluence entry can share a Jira site's id, so
    the entry is matched on the site URL (scheme, case and trailing ``/`` ignored) and must
    carry Jira scopes. Never the first entry by default.

    :param resources: what :meth:`OAuthTokenClient.accessible_resources` returned.
    :param site_url: the connection's host, e.g. ``https://example.atlassian.net``.
    :raises JiraOAuthError: no Jira entry matches; the message lists the sites the grant covers.
    """
    wanted = _site_key(site_url)
    same_url = [dict(entry) for entry in resources if _site_key(str(entry.get("url") or "")) == wanted]
    jira = [entry for entry in same_url if _is_jira_entry(entry)]
    if jira:
        return jira[0]
    covered = (
        "; ".join(
            f"{entry.get('name')} ({entry.get('url')}, cloud id {entry.get('id')}, "
            f"{'Jira' if _is_jira_entry(entry) else 'not Jira'})"
            for entry in resources
        )
        or "none"
    )
    if same_url:
        raise JiraOAuthError(
            f"the grant covers {site_url} but without Jira scopes (only another product, such as "
            "Confluence): add Jira scopes (e.g. read:jira-work) to the app and consent again. "
            f"Sites the grant covers: {covered}"
        )
    raise JiraOAuthError(
        f"the grant does not cover the site {site_url}: set the connection's host to one of the sites it "
        f"covers, or consent again as a user of that site. Sites the grant covers: {covered}"
    )
