"""Atlassian's authorization server: consent, code exchange and rotating refresh tokens.

Refresh tokens follow Auth0's rotation rules, which Atlassian uses (Atlassian: "Implementing OAuth 2.0 (3LO)"):
every refresh retires the token sent and returns a new one; a retired token sent again
within the reuse leeway still works, sent later it revokes the whole grant ("family").
"""

from __future__ import annotations

import hmac
import itertools
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from ._accounts import User
from ._runtime import Counters
from ._scopes import KNOWN_SCOPES

_GRANULAR_SCOPE = re.compile(r"^[a-z-]+:[a-z0-9.-]+:(jira|jira-software|jira-service-management|confluence)$")



_ALPHANUMERIC = string.ascii_letters + string.digits


def new_client_id() -> str:
    """A client id as the developer console makes them: 32 letters and digits (never a leading '-')."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32))

@dataclass
class OAuthSettings:
    """Token lifetimes in seconds; change them at runtime through ``emu.oauth``."""

    access_token_ttl: float = 3600
    reuse_leeway: float = 600
    companion_ttl: float = 600
    # Every Nth successful refresh answers without refresh_token (0: never), as Atlassian sometimes does.
    omit_refresh_token_every: int = 0
    inactivity_expiry: float = 90 * 24 * 3600
    code_ttl: float = 600


@dataclass
class OAuthApp:
    """An app registered in Atlassian's developer console."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass
class Grant:
    """One consent of one user to one app: the family of all its tokens."""

    id: int
    client_id: str
    user: User
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class RefreshToken:
    value: str
    grant: Grant
    last_active: float
    retired_at: float | None = None  # when it was first exchanged


@dataclass
class AccessToken:
    value: str
    grant: Grant
    expires_at: float
    refresh_token: RefreshToken | None  # the refresh token it was issued with (its "companion")


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    user: User
    issued_at: float
    used: bool = False


class TokenError(Exception):
    """An error answer of ``POST /oauth/token``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.body = {"error": error, "error_description": description}


@dataclass
class AuthorizeResult:
    """What ``GET /authorize`` does: redirect back to the app, or show an error page."""

    status: int
    location: str | None = None
    message: str = ""


def _invalid_grant() -> TokenError:
    return TokenError(403, "invalid_grant", "Unknown or invalid refresh token.")


@dataclass
class OAuthServer:
    settings: OAuthSettings
    clock: Callable[[], float]
    counters: Counters
    apps: dict[str, OAuthApp] = field(default_factory=dict)
    _codes: dict[str, _AuthCode] = field(default_factory=dict)
    _grants: list[Grant] = field(default_factory=list)
    _refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    _access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    _grant_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _refreshes: int = 0

    # -- registration ---------------------------------------------------------------------

    def add_app(self, client_id: str | None, client_secret: str | None, redirect_uris: tuple[str, ...]) -> OAuthApp:
        app = OAuthApp(
            client_id=client_id or new_client_id(),
            client_secret=client_secret or "ATOA" + secrets.token_urlsafe(48),
            redirect_uris=tuple(redirect_uris),
        )
        if app.client_id in self.apps:
            raise ValueError(f"an OAuth app with client_id {app.client_id!r} already exists")
        self.apps[app.client_id] = app
        return app

    def add_redirect_uri(self, client_id: str, redirect_uri: str) -> OAuthApp:
        """Register one more callback URL on an app, as the developer console allows; no-op if known."""
        app = self.apps.get(client_id)
        if app is None:
            raise ValueError(f"no OAuth app with client_id {client_id!r}")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ValueError(f"{redirect_uri!r} is not a callback URL: use an absolute http(s) URL without '#'")
        if redirect_uri not in app.redirect_uris:
            app.redirect_uris = (*app.redirect_uris, redirect_uri)
        return app

    # -- consent ----------------------------------------------------------------------------

    def authorize(self, params: dict[str, str], user: User, consent: str) -> AuthorizeResult:
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            return AuthorizeResult(400, message="Invalid client_id: no app is registered with this client id.")
        redirect_uri = params.get("redirect_uri", "")
        # The callback must equal a registered one exactly; Atlassian never redirects to any other.
        if redirect_uri not in app.redirect_uris:
            return AuthorizeResult(400, message="The redirect_uri is not registered as a callback URL for this app.")

        def back(**answer: str) -> AuthorizeResult:
            if "state" in params:
                answer["state"] = params["state"]
            separator = "&" if "?" in redirect_uri else "?"
            return AuthorizeResult(302, location=redirect_uri + separator + urlencode(answer))

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="response_type must be code")
        if params.get("audience") != "api.atlassian.com":
            return back(error="invalid_request", error_description="audience must be api.atlassian.com")
        scopes = tuple(params.get("scope", "").split())
        unknown = [s for s in scopes if s not in KNOWN_SCOPES and not _GRANULAR_SCOPE.match(s)]
        if not scopes or unknown:
            return back(error="invalid_scope", error_description=f"Unknown or missing scope: {' '.join(unknown)}")
        if consent != "approve":
            return back(error="access_denied", error_description="The user denied access to the app.")
        code = secrets.token_urlsafe(32)
        self._codes[code] = _AuthCode(app.client_id, redirect_uri, scopes, user, self.clock())
        self.counters.bump("authorizations")
        return back(code=code)

    # -- the token endpoint -------------------------------------------------------------------

    def token(self, form: dict[str, Any]) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            try:
                return self._refresh(form)
            except TokenError:
                self.counters.bump("rejected_refreshes")
                raise
        raise TokenError(403, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")

    def _client(self, form: dict[str, Any]) -> OAuthApp:
        # Atlassian offers no PKCE: the client secret is mandatory on every token call.
        app = self.apps.get(str(form.get("client_id") or ""))
        secret = str(form.get("client_secret") or "")
        if app is None or not secret or not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
            raise TokenError(401, "access_denied", "Unauthorized")
        return app

    def _exchange_code(self, form: dict[str, Any]) -> dict[str, Any]:
        app = self._client(form)
        code = self._codes.get(str(form.get("code") or ""))
        now = self.clock()
        if (
            code is None
            or code.used
            or code.client_id != app.client_id
            or now > code.issued_at + self.settings.code_ttl
        ):
            raise TokenError(403, "invalid_grant", "Invalid authorization code")
        if form.get("redirect_uri") != code.redirect_uri:
            raise TokenError(403, "invalid_grant", "redirect_uri does not match the one of the authorization request")
        code.used = True
        self.counters.bump("code_exchanges")
        return self.new_grant(app.client_id, code.scopes, code.user)

    def new_grant(self, client_id: str, scopes: tuple[str, ...], user: User) -> dict[str, Any]:
        """A consented grant's first token response (refresh token only with offline_access)."""
        if client_id not in self.apps:
            raise ValueError(f"no OAuth app with client_id {client_id!r}")
        grant = Grant(next(self._grant_ids), client_id, user, tuple(scopes))
        self._grants.append(grant)
        now = self.clock()
        refresh = self._new_refresh_token(grant, now) if "offline_access" in grant.scopes else None
        return self._token_response(grant, now, refresh, include_refresh=refresh is not None)

    def _refresh(self, form: dict[str, Any]) -> dict[str, Any]:
        app = self._client(form)
        refresh = self._refresh_tokens.get(str(form.get("refresh_token") or ""))
        if refresh is None or refresh.grant.client_id != app.client_id:
            raise TokenError(403, "unauthorized_client", "refresh_token is invalid")
        grant = refresh.grant
        if grant.revoked:
            raise _invalid_grant()
        now = self.clock()
        if refresh.retired_at is not None:
            if now - refresh.retired_at <= self.settings.reuse_leeway:
                self.counters.bump("reuse_within_leeway")
                return self._rotate(refresh, now)
            # Reuse after the leeway looks like a stolen token: Auth0 kills the whole family.
            grant.revoked = True
            self.counters.bump("family_revocations")
            raise _invalid_grant()
        if now - refresh.last_active > self.settings.inactivity_expiry:
            raise _invalid_grant()
        return self._rotate(refresh, now)

    def _rotate(self, refresh: RefreshToken, now: float) -> dict[str, Any]:
        self._refreshes += 1
        self.counters.bump("token_refreshes")
        every = self.settings.omit_refresh_token_every
        if every and self._refreshes % every == 0:
            # No refresh_token in the answer: the one sent stays current.
            refresh.last_active = now
            return self._token_response(refresh.grant, now, refresh, include_refresh=False)
        if refresh.retired_at is None:
            refresh.retired_at = now
        return self._token_response(
            refresh.grant, now, self._new_refresh_token(refresh.grant, now), include_refresh=True
        )

    def _new_refresh_token(self, grant: Grant, now: float) -> RefreshToken:
        refresh = RefreshToken("rt-" + secrets.token_urlsafe(40), grant, last_active=now)
        self._refresh_tokens[refresh.value] = refresh
        return refresh

    def _token_response(
        self, grant: Grant, now: float, refresh: RefreshToken | None, *, include_refresh: bool
    ) -> dict[str, Any]:
        ttl = self.settings.access_token_ttl
        access = AccessToken("at-" + secrets.token_urlsafe(40), grant, now + ttl, refresh)
        self._access_tokens[access.value] = access
        answer: dict[str, Any] = {
            "access_token": access.value,
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
        }
        if include_refresh and refresh is not None:
            answer["refresh_token"] = refresh.value
        return answer

    # -- checks and administration ------------------------------------------------------------

    def check_access_token(self, value: str) -> AccessToken | None:
        """The access token if it is alive: known, unexpired, family not revoked."""
        access = self._access_tokens.get(value)
        if access is None or access.grant.revoked:
            return None
        now = self.clock()
        if now >= access.expires_at:
            return None
        companion = access.refresh_token
        # Once its refresh token was exchanged, an access token lives at most companion_ttl more.
        if companion is not None and companion.retired_at is not None:
            if now >= companion.retired_at + self.settings.companion_ttl:
                return None
        return access

    def revoke(self, refresh_token_or_client_id: str) -> int:
        """Revoke the grant of a refresh token, or every grant of a client id; returns how many."""
        refresh = self._refresh_tokens.get(refresh_token_or_client_id)
        if refresh is not None:
            grants = [refresh.grant]
        else:
            grants = [g for g in self._grants if g.client_id == refresh_token_or_client_id]
            if not grants:
                raise ValueError("no refresh token or client id with grants matches")
        for grant in grants:
            grant.revoked = True
        return len(grants)
