"""The 3LO auth flow: ``Authorization: Bearer ...``, the access token cached in memory until it
nears expiry, and one refresh after a 401 that names the cached token. No Airflow imports.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import requests

from airflow_provider_jira_auth.auth.refreshing import TokenProvider
from airflow_provider_jira_auth.auth.token_state import DEFAULT_EXPIRY_MARGIN, TokenState
from airflow_provider_jira_auth.client.auth_flow import AuthFlow, JiraAuth, R
from airflow_provider_jira_auth.client.errors import JiraOAuthError

# A token fresh from a forced refresh that is refused again was not refused for its age (a wrong
# cloud_id, a user who lost access): refreshing per request would only churn the refresh token.
FORCED_REFRESH_COOLDOWN = 60.0

UNAUTHORIZED_HINT = (
    "OAuth 2.0 (3LO): the access token was refused even after a refresh. The consenting user may "
    "have lost access to this site, or the app was removed from it: check the connection's "
    "cloud_id, or consent again"
)


class JiraOAuth2Auth(JiraAuth):
    """``Authorization: Bearer <access token>`` from a :class:`TokenProvider`.

    The access token is cached in memory and the provider asked only when it has less than
    ``margin`` seconds left, so requests cost no store reads. Only the access token and its
    expiry are cached, never the refresh token. Thread-safe: threads wait for one refresh
    instead of each starting their own.

    :param provider: where access tokens come from, usually a :class:`RefreshingTokenProvider`.
    :param margin: ask the provider for a new token when the cached one has less than this left.
    :param on_token: called with every new access token and refresh token seen, e.g. Airflow's
        ``mask_secret``.
    :param clock: "now" in epoch seconds; by default the provider's.
    """

    unauthorized_hint = UNAUTHORIZED_HINT

    def __init__(
        self,
        provider: TokenProvider,
        *,
        margin: float = DEFAULT_EXPIRY_MARGIN,
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.provider = provider
        self.clock: Callable[[], float] = clock or getattr(provider, "clock", time.time)
        self.margin = margin
        self.on_token = on_token
        self._lock = threading.Lock()
        self._state: TokenState | None = None  # the provider's last answer, without its refresh token
        self._refresh_token_digest: str | None = None
        self._forced: tuple[str, float] | None = None  # (token from a forced refresh, when)

    def __repr__(self) -> str:
        return f"JiraOAuth2Auth({self.provider.describe()})"

    def auth_flow(self, request: R) -> AuthFlow[R]:
        """The bearer request; after a 401 that a new access token may cure, the same with it."""
        sent = self.access_token()
        request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code == 401 and self._renewed_after_401(sent, response.text or ""):
            request.headers["Authorization"] = f"Bearer {self.access_token()}"
            yield request

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes granted, as the token endpoint last reported them."""
        return self._state.scopes if self._state is not None else ()

    @property
    def expires_at(self) -> float | None:
        return self._state.expires_at if self._state is not None else None

    @property  # type: ignore[override]
    def secret_values(self) -> tuple[str, ...]:
        """What the client scrubs from error messages."""
        token = self._state.access_token if self._state is not None else None
        return (token,) if token else ()

    def access_token(self) -> str:
        """A cached access token with at least ``margin`` seconds left, refreshed if need be."""
        with self._lock:
            if self._fresh() is None:
                return self._remember(self.provider.get_token(self.margin))
            return self._state.access_token  # type: ignore[union-attr,return-value]

    def handle_unauthorized(self, response: requests.Response) -> bool:
        """After a 401 to a request sent outside a client: whether a new access token may cure it.

        The step :meth:`auth_flow` takes after a 401, reading the token sent from the request.
        """
        sent = _bearer(response.request)
        return sent is not None and self._renewed_after_401(sent, response.text or "")

    def _renewed_after_401(self, sent: str, body: str) -> bool:
        """Get a different access token than ``sent`` if there is one; ``True`` means send again.

        The provider refreshes only if the token it holds is the one refused. A 401 for a missing
        scope, or for a token that itself came from a forced refresh less than
        :data:`FORCED_REFRESH_COOLDOWN` seconds ago, is not helped by a refresh: ``False`` at once.
        """
        if "scope does not match" in body.lower():
            return False
        with self._lock:
            cached = self._fresh()
            if cached is not None and cached != sent:
                return True  # another thread already got a new one
            forced = self._forced
            # Refused though fresh by the clock: not a matter of age (a wrong cloud_id, a user who
            # lost access), and refreshing again would only churn the refresh token. A token that
            # has meanwhile neared its expiry (a slow request) is refreshed again.
            if (
                forced is not None
                and forced[0] == sent
                and time.monotonic() - forced[1] < FORCED_REFRESH_COOLDOWN
                and cached == sent
            ):
                return False
            token = self._remember(self.provider.force_refresh(sent))
            if token == sent:
                return False
            self._forced = (token, time.monotonic())
            return True

    def _fresh(self) -> str | None:
        """The cached access token if it has more than the margin left (the one freshness test,
        :meth:`TokenState.is_fresh`), else ``None``."""
        state = self._state
        return state.access_token if state is not None and state.is_fresh(self.margin, self.clock()) else None

    def _remember(self, state: TokenState) -> str:
        """Cache ``state``'s access token (telling ``on_token`` about new values) and return it."""
        if not state.access_token:
            raise JiraOAuthError(f"the token provider ({self.provider.describe()}) returned no access token")
        if self.on_token is not None:
            if self._state is None or state.access_token != self._state.access_token:
                self.on_token(state.access_token)
            # A provider may keep the refresh token elsewhere (the token broker sends none).
            if state.refresh_token:
                # A digest, not the token: this object must never hold a refresh token.
                digest = hashlib.sha256(state.refresh_token.encode()).hexdigest()
                if digest != self._refresh_token_digest:
                    self.on_token(state.refresh_token)
                self._refresh_token_digest = digest
        self._state = state.with_changes(refresh_token="")
        return state.access_token


def _bearer(request: requests.PreparedRequest | None) -> str | None:
    header = request.headers.get("Authorization") if request is not None else None
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
