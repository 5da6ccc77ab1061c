"""The task side of the token broker: access tokens from the api-server, never a refresh token."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import requests

from airflow_provider_jira_auth.auth import broker_protocol
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import (
    JiraClientSecretError,
    JiraConfigError,
    JiraGrantRevokedError,
    JiraOAuthError,
    JiraTokenStoreError,
    JiraTransportError,
)
from airflow_provider_jira_auth.client.retry import RetryPolicy

log = logging.getLogger(__name__)

_ERRORS: dict[str, type[Exception]] = {
    "grant_revoked": JiraGrantRevokedError,
    "client_secret": JiraClientSecretError,
    "store": JiraTokenStoreError,
    "upstream": JiraOAuthError,
    "config": JiraConfigError,
    "bad_request": JiraOAuthError,
}


class BrokerTokenProvider:
    """A :class:`~airflow_provider_jira_auth.auth.oauth2.TokenProvider` backed by the token broker.

    The broker refreshes under the store's lock and answers with an access token only; this
    process caches nothing but what :class:`JiraOAuth2Auth` keeps in memory.

    :param conn_id: the connection.
    :param client_secret: signs requests (the connection's ``broker_signing_secret``, see
        ``broker_protocol``); never sent.
    :param url: the broker's base URL, e.g. ``http://api-server:8080/jira-auth``.
    """

    def __init__(
        self,
        conn_id: str,
        client_secret: str,
        url: str,
        *,
        store_description: str = "token store",
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not client_secret:
            # The app's client secret alone would sign for every connection of the app: the
            # broker serves no connection without a key of its own (docs/security.md).
            raise JiraConfigError(
                "extra.broker_secret",
                f"connection {conn_id!r} has no broker_secret and no refresh_token to derive one from, so the "
                "token broker cannot tell its requests from another connection's: run the consent step "
                f"(airflow-jira-auth authorize --conn-id {conn_id}, or Connect on the Jira connections page), or add "
                '"broker_secret": "<a long random string>" to its extra where it is defined',
            )
        self.conn_id = conn_id
        self._client_secret = client_secret
        self.url = url.rstrip("/")
        self.store_description = store_description
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"BrokerTokenProvider({self.describe()})"

    def describe(self) -> str:
        return f"OAuth 2.0 tokens from the api-server's token broker at {self.url} (it keeps them in the {self.store_description})"

    def get_token(self, min_valid: float) -> TokenState:
        return self._ask(min_valid=min_valid)

    def force_refresh(self, rejected_access_token: str) -> TokenState:
        return self._ask(min_valid=0.0, rejected=rejected_access_token)

    def refresh_now(self) -> TokenState:
        return self._ask(min_valid=0.0, force=True)

    def _ask(self, *, min_valid: float, rejected: str | None = None, force: bool = False) -> TokenState:
        endpoint = self.url + broker_protocol.PATH

        def send() -> requests.Response:
            # Signed anew on every attempt: the timestamp must be current.
            body, signature = broker_protocol.signed_request(
                self._client_secret, self.conn_id, min_valid=min_valid, rejected=rejected, force=force
            )
            return self._session.post(
                endpoint,
                data=body,
                headers={"Content-Type": "application/json", broker_protocol.SIGNATURE_HEADER: signature},
                timeout=self.timeout,
            )

        response = self._post(endpoint, send)
        if response.status_code == 403 and _error_kind(response) == "forbidden":
            # The broker judges a connection it looked up moments ago by what it found then
            # (broker_protocol.RECHECK_AFTER): a connection created or changed just now is served
            # when asked again after that.
            time.sleep(broker_protocol.RECHECK_AFTER)
            response = self._post(endpoint, send)
        return self._state(response, endpoint)

    def _post(self, endpoint: str, send: Callable[[], requests.Response]) -> requests.Response:
        try:
            # Not "repeatable": a read timeout may mean the broker is still refreshing (it waits
            # for the lock and retries Atlassian), and asking again would only queue behind it.
            # A refused connection (nothing sent) and 502/503/504 are still retried.
            return self.retry.call("POST", "jira-auth/token", send)
        except requests.RequestException as exc:
            raise JiraTransportError(
                "POST", endpoint, exc, peer="the token broker on the Airflow api-server",
                hint="; check that the api-server runs and that broker_url (or [core] execution_api_server_url) "
                "points to it",
            ) from None

    def _state(self, response: requests.Response, endpoint: str) -> TokenState:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code == 200 and isinstance(payload, dict) and payload.get("access_token"):
            return TokenState(
                refresh_token="",  # stays on the api-server
                access_token=str(payload["access_token"]),
                expires_at=float(payload["expires_at"]),
                scopes=tuple(payload.get("scopes") or ()),
                rotated_at=payload.get("rotated_at"),
                lifetime=_finite(payload.get("lifetime")),
            )
        message = payload.get("message") if isinstance(payload, dict) else None
        kind = payload.get("error") if isinstance(payload, dict) else None
        if response.status_code == 404:
            raise JiraConfigError(
                "extra.broker_url",
                f"{endpoint} answered 404: the api-server does not run this provider's token broker. Install "
                "airflow-provider-jira-auth on the api-server too, or set broker_url to its /jira-auth URL",
            )
        if response.status_code == 403 and kind == "stale":
            raise JiraOAuthError(
                f"the token broker at {endpoint} refused a request older than {broker_protocol.MAX_SKEW:.0f}s: "
                "this host's clock and the api-server's differ; synchronize them (NTP)"
            )
        if response.status_code == 403:
            raise JiraConfigError(
                "extra.client_secret",
                f"the token broker refused connection {self.conn_id!r}: the api-server's copy of the connection "
                "differs (another client secret or broker_secret, not auth_type oauth2, or not defined there)",
            )
        error_class = _ERRORS.get(kind or "", JiraOAuthError)
        if error_class is JiraConfigError:
            raise JiraConfigError("connection", message or "the token broker refused the connection's settings")
        raise error_class(
            message or f"the token broker at {endpoint} answered HTTP {response.status_code}"
        )


def _error_kind(response: requests.Response) -> str | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload.get("error") if isinstance(payload, dict) else None


def _finite(value: object) -> float | None:
    """A positive finite number of seconds from the broker's answer, else ``None``."""
    import math

    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None
