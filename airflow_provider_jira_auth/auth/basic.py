"""The Basic auth flow with an Atlassian API token (classic or scoped)."""

from __future__ import annotations

from base64 import b64encode

from airflow_provider_jira_auth.client.auth_flow import AuthFlow, JiraAuth, R

_TOKEN_HINT = (
    "Check the connection's 'Email (basic auth)' (login: the account email) and 'API token (basic auth)' "
    "(password: the API token); API tokens created since December 2024 expire, so create a new one if it has. "
)
SITE_HINT = _TOKEN_HINT + (
    "If this is a scoped API token (created with scopes), it only works through the API gateway: "
    "tick 'Scoped API token' (extra scoped_credential), or set 'Cloud ID'"
)
GATEWAY_HINT = _TOKEN_HINT + (
    "Through the API gateway only scoped API tokens are accepted, and only with the scopes the "
    "call needs: check the token's scopes, or clear 'Cloud ID' and 'Scoped API token' (extra "
    "scoped_credential) to call the site URL with a classic token"
)


class JiraBasicAuth(JiraAuth):
    """``Authorization: Basic base64(email:api_token)``, built once.

    :param email: the Atlassian account email that owns the token.
    :param api_token: the API token; never shown by ``repr``.
    :param via_gateway: whether requests go through ``api.atlassian.com`` (scoped tokens).
    """

    blocking = False  # a fixed header

    def __init__(self, email: str, api_token: str, *, via_gateway: bool = False) -> None:
        self.email = email
        encoded = b64encode(f"{email}:{api_token}".encode()).decode("ascii")
        self._header = "Basic " + encoded
        # The encoded pair is as good as the token itself: callers mask it too.
        self.secret_values = (api_token, encoded)
        # Read by the client and appended to a 401's message: the usual cause of a 401 differs
        # by route (Atlassian: "Manage API tokens for your Atlassian account", scoped tokens).
        self.unauthorized_hint = GATEWAY_HINT if via_gateway else SITE_HINT

    def auth_flow(self, request: R) -> AuthFlow[R]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"JiraBasicAuth(email={self.email!r})"
