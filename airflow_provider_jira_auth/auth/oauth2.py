"""OAuth 2.0 (3LO) for Jira Cloud, in three layers, each usable alone:

* ``auth/token_endpoint.py``: :class:`OAuthTokenClient` talks to Atlassian's token endpoint
  (refresh, code exchange) and accessible-resources; :func:`pick_site`; the error mapping.
* ``auth/refreshing.py``: :class:`RefreshingTokenProvider` keeps one grant's :class:`TokenState`
  current through a :class:`TokenStore` (see docs/token-rotation.md).
* ``auth/bearer.py``: :class:`JiraOAuth2Auth`, the auth flow that puts ``Authorization: Bearer ...``
  on requests and refreshes once after a 401 naming the token.

This module names them in one place, for users and for the hook.
"""

from __future__ import annotations

from airflow_provider_jira_auth.auth.bearer import FORCED_REFRESH_COOLDOWN, UNAUTHORIZED_HINT, JiraOAuth2Auth
from airflow_provider_jira_auth.auth.refreshing import RefreshingTokenProvider, TokenProvider
from airflow_provider_jira_auth.auth.token_endpoint import (
    CLIENT_ERRORS,
    GRANT_ERRORS,
    TOKEN_ENDPOINT_POLICY,
    OAuthTokenClient,
    consent_command,
    pick_site,
    token_endpoint_error,
)

__all__ = [
    "CLIENT_ERRORS",
    "FORCED_REFRESH_COOLDOWN",
    "GRANT_ERRORS",
    "TOKEN_ENDPOINT_POLICY",
    "UNAUTHORIZED_HINT",
    "JiraOAuth2Auth",
    "OAuthTokenClient",
    "RefreshingTokenProvider",
    "TokenProvider",
    "consent_command",
    "pick_site",
    "token_endpoint_error",
]
