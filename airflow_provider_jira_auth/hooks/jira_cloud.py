"""``JiraCloudHook``: a ``jira_cloud`` connection turned into an authenticated Jira client."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.log import mask_secret

from airflow_provider_jira_auth._compat import BaseHook, get_connection

from airflow_provider_jira_auth.auth.token_state import token_health
from airflow_provider_jira_auth.client.errors import JiraError
from airflow_provider_jira_auth.connection_fields import (
    CONN_FIELDS,
    CONN_TYPE,
    DEFAULT_CONN_ID,
    HOOK_NAME,
    SECRET_FIELDS,
    UI_FIELD_BEHAVIOUR,
)
from airflow_provider_jira_auth.settings import JiraConnectionSettings, RetrySettings, extra_value

if TYPE_CHECKING:
    from airflow_provider_jira_auth.client.auth_flow import JiraAuth

    from airflow_provider_jira_auth.auth.oauth2 import JiraOAuth2Auth, TokenProvider
    from airflow_provider_jira_auth.client.async_http import AsyncJiraClient
    from airflow_provider_jira_auth.client.http import JiraClient
    from airflow_provider_jira_auth.client.retry import RetryPolicy

log = logging.getLogger(__name__)


def _mask(value: Any) -> None:
    """Hide a secret from every Airflow log from now on (it is masked in this process)."""
    if value:
        mask_secret(str(value))


class JiraCloudHook(BaseHook):
    """Calls Jira Cloud with the credentials of a ``jira_cloud`` connection.

    The connection is read and validated on first use; misconfiguration raises
    :class:`~airflow_provider_jira_auth.client.errors.JiraConfigError` naming the field to fix.

    :param jira_conn_id: the ``jira_cloud`` connection to use.
    :param retry_policy: how calls are retried: a ``RetryPolicy``, or a mapping of
        ``retry_attempts``/``retry_delay``/``retry_max_delay`` laid over the connection's extras of
        the same names. Default: the connection's extras (5 attempts, 2 s doubling to 30 s).
    """

    conn_name_attr = "jira_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME
    #: how errors name the ``retry_policy`` mapping: an operator's hook says ``jira_retry``
    retry_argument = "retry_policy"

    def __init__(
        self, jira_conn_id: str = DEFAULT_CONN_ID, *, retry_policy: RetryPolicy | Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.jira_conn_id = jira_conn_id
        self.retry_policy = retry_policy
        self._client: JiraClient | None = None
        self._token_provider: TokenProvider | None = None

    # -- settings ---------------------------------------------------------------------------

    @cached_property
    def settings(self) -> JiraConnectionSettings:
        """The connection's settings, validated; every secret is masked as it is read."""
        return self.settings_from_connection(self.jira_conn_id, get_connection(self, self.jira_conn_id))

    # -- client -----------------------------------------------------------------------------

    def get_conn(self) -> JiraClient:
        """The hook's client: one pooled session, reused by every call of this hook."""
        if self._client is None:
            from airflow_provider_jira_auth.client.http import JiraClient

            settings = self.settings
            auth, rest_url = self._build_auth(settings)
            self._client = JiraClient(
                rest_url, auth, timeout=settings.timeout, verify=settings.verify, retry=self._retry(settings)
            )
        return self._client

    get_client = get_conn

    def _retry(self, settings: JiraConnectionSettings) -> RetryPolicy:
        """The hook's retry policy, else the connection's retry extras (with the hook's mapping laid over)."""
        chosen = self.retry_policy
        if chosen is None:
            return settings.retry.policy()
        if isinstance(chosen, Mapping):
            return RetrySettings.parse(chosen, self.retry_argument, base=settings.retry).policy()
        return chosen

    def _build_auth(self, settings: JiraConnectionSettings) -> tuple[JiraAuth, str]:
        if settings.auth_type == "basic":
            auth = self._basic_auth(settings)
            cloud_id = self._cloud_id(settings) if settings.uses_gateway else None
            return auth, settings.rest_url(cloud_id)
        oauth = self._oauth2_auth(settings)
        return oauth, settings.rest_url(settings.cloud_id or self._oauth2_cloud_id(settings, oauth))

    def _oauth2_auth(self, settings: JiraConnectionSettings) -> JiraOAuth2Auth:
        from airflow_provider_jira_auth.auth.oauth2 import JiraOAuth2Auth
        from airflow_provider_jira_auth.hooks.token_provider import token_provider_for

        margin = settings.refresh_margin
        self._token_provider = token_provider_for(settings, margin=margin)
        return JiraOAuth2Auth(self._token_provider, margin=margin, on_token=_mask)

    def _oauth2_cloud_id(self, settings: JiraConnectionSettings, oauth: JiraOAuth2Auth) -> str:
        from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient, pick_site

        assert settings.client_id and settings.client_secret
        with OAuthTokenClient(
            settings.auth_url, settings.client_id, settings.client_secret,
            timeout=settings.timeout, verify=settings.verify, conn_id=settings.conn_id,
        ) as token_client:
            resources = token_client.accessible_resources(oauth.access_token(), settings.api_url)
        cloud_id = str(pick_site(resources, settings.site_url)["id"])
        log.info(
            "Connection %r: the grant covers %s as cloud id %s; set cloud_id in its extra to skip this lookup",
            self.jira_conn_id, settings.site_url, cloud_id,
        )
        return cloud_id

    @staticmethod
    def _basic_auth(settings: JiraConnectionSettings) -> JiraAuth:
        from airflow_provider_jira_auth.auth.basic import JiraBasicAuth

        assert settings.email is not None and settings.api_token is not None
        auth = JiraBasicAuth(settings.email, settings.api_token, via_gateway=settings.uses_gateway)
        for secret in auth.secret_values:
            _mask(secret)
        return auth

    def _cloud_id(self, settings: JiraConnectionSettings) -> str:
        if settings.cloud_id:
            return settings.cloud_id
        from airflow_provider_jira_auth.client.discovery import fetch_cloud_id

        cloud_id = fetch_cloud_id(settings.site_url, timeout=settings.timeout, verify=settings.verify)
        log.info(
            "Connection %r: looked up cloud id %s from the site; set cloud_id in its extra to skip this call",
            self.jira_conn_id,
            cloud_id,
        )
        return cloud_id

    # -- calls ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Call any endpoint; ``path`` is relative to the REST root, e.g. ``request("GET", "myself")``.

        :return: the parsed JSON body, or ``None`` for an empty answer (204).
        """
        return self.get_conn().request(method, path, params=params, json=json)

    # -- token health (3LO) ---------------------------------------------------------------------

    def token_status(self) -> dict[str, Any]:
        """The connection's auth at a glance, for logs, XComs and the status command; no secrets.

        For 3LO it asks for a valid access token first, which refreshes if the stored one expired.
        """
        settings = self.settings
        status: dict[str, Any] = {
            "conn_id": self.jira_conn_id,
            "auth_type": settings.auth_type,
            "site_url": settings.site_url,
            "cloud_id": settings.cloud_id,
            "route": "api gateway" if settings.uses_gateway else "site",
        }
        if settings.auth_type == "oauth2":
            self.get_conn()
            assert self._token_provider is not None
            status.update(token_health(self._token_provider.get_token(0.0)), grant_source=self._token_provider.describe())
        return status

    def keep_alive(self, max_age_days: float = 7.0) -> dict[str, Any]:
        """Refresh (and so rotate) the refresh token if it is older than ``max_age_days``.

        Atlassian expires a refresh token unused for 90 days; a weekly run of this keeps an idle
        grant alive (see dags_examples/jira_oauth_keepalive.py). Returns :meth:`token_status`.
        """
        if self.settings.auth_type != "oauth2":
            raise JiraError(f"connection {self.jira_conn_id!r} uses {self.settings.auth_type} auth: nothing to keep alive")
        self.get_conn()
        assert self._token_provider is not None
        state = self._token_provider.get_token(0.0)
        age_days = token_health(state)["refresh_age_days"]
        if age_days is None or age_days >= max_age_days:
            log.info("Refresh token of %r is %s days old: refreshing to keep the grant alive", self.jira_conn_id, age_days)
            self._token_provider.refresh_now()
        return self.token_status()

    def test_connection(self) -> tuple[bool, str]:
        """Call ``/myself``; answer ``(False, what is wrong and how to fix it)`` on any failure.

        Airflow's Test button tests a *copy* of the stored connection under a random id. For 3LO
        that copy must not spend a refresh token that is no longer the live one (Atlassian would
        revoke the whole grant): the token stores key their state by the grant, so the copy finds
        the stored connection's live state, and refreshes, if at all, under that grant's lock
        and into that grant's store, exactly as a task would. Where no live state can be found,
        the test says so and sends nothing.
        """
        try:
            self.__dict__.pop("settings", None)
            self._client = None
            settings = self.settings
            me = self.get_conn().myself()
            checked = self._test_summary(settings)
        except JiraError as exc:
            return False, str(exc)
        except Exception as exc:  # the UI shows the message: keep it, whatever broke
            return False, f"{type(exc).__name__}: {exc}"
        route = "the API gateway" if settings.uses_gateway else "the site URL"
        who = me.get("displayName") or me.get("accountId") or "unknown user"
        kind = "OAuth 2.0 (3LO)" if settings.auth_type == "oauth2" else "API token"
        return True, f"Connected to {settings.site_url} through {route} as {who} ({kind}). {checked}"

    def _test_summary(self, settings: JiraConnectionSettings) -> str:
        if settings.auth_type != "oauth2":
            scoped = "scoped " if settings.scoped_credential else ""
            return f"Checked: GET /rest/api/3/myself with the {scoped}API token."
        assert self._token_provider is not None
        health = token_health(self._token_provider.get_token(0.0))
        scopes = " ".join(health["granted_scopes"]) or "not reported"
        age = health["refresh_age_days"]
        age_text = "unknown" if age is None else f"{age:g} days"
        return (
            f"Checked: GET /rest/api/3/myself with the grant's access token. Granted scopes: {scopes}. "
            f"Refresh token age: {age_text}. {self._token_provider.describe()}."
        )

    # -- the connection form for Airflow 3.0 and 3.1 (3.2+ reads provider info) -------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from wtforms import BooleanField, PasswordField, StringField

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            schema = spec["schema"]
            if schema.get("format") == "password":
                field_class: Any = PasswordField
            elif "boolean" in schema["type"]:
                field_class = BooleanField
            else:
                field_class = StringField
            kwargs: dict[str, Any] = {"description": spec.get("description")}
            if schema.get("default") is not None and field_class is not PasswordField:
                kwargs["default"] = schema["default"]
            widgets[name] = field_class(spec["label"], **kwargs)
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- for operators, sensors and triggers --------------------------------------------------

    @staticmethod
    def settings_from_connection(conn_id: str, conn: Any) -> JiraConnectionSettings:
        """Validate a connection already fetched, masking every secret as it is read.

        Airflow masks ``conn.password`` and the extra string, not values taken out of
        ``extra_dejson``. Triggers fetch the connection with ``await BaseHook.aget_connection``.
        """
        try:  # not extra_dejson: it logs a traceback for invalid JSON, which settings then names
            raw = conn.extra
            extra = json.loads(raw) if isinstance(raw, str) and raw.strip() else dict(conn.extra_dejson)
            extra = extra if isinstance(extra, dict) else {}
        except ValueError:
            extra = {}
        # The stored access token too: the connection store keeps it in the extra.
        for secret in (conn.password, extra_value(extra, "access_token"), *(extra_value(extra, n) for n in SECRET_FIELDS)):
            _mask(secret)
        return JiraConnectionSettings.of(conn_id, conn)

    @classmethod
    def from_connection(
        cls, conn_id: str, conn: Any, *, retry_policy: RetryPolicy | Mapping[str, Any] | None = None
    ) -> JiraCloudHook:
        """A hook over a connection already fetched (see :meth:`settings_from_connection`)."""
        hook = cls(conn_id, retry_policy=retry_policy)
        hook.__dict__["settings"] = cls.settings_from_connection(conn_id, conn)
        return hook

    def get_async_conn(self) -> AsyncJiraClient:
        """An asyncio client with this hook's credentials, for triggers.

        Building it may block (imports, a 3LO token and cloud-id lookup): from an event loop,
        call it with ``asyncio.to_thread``. The client applies the same auth objects as
        :meth:`get_conn`'s, so 3LO goes through the same token store or token broker.
        """
        from airflow_provider_jira_auth.client.async_http import AsyncJiraClient

        settings = self.settings
        auth, rest_url = self._build_auth(settings)
        return AsyncJiraClient(
            rest_url, auth, timeout=settings.timeout, verify=settings.verify, retry=self._retry(settings)
        )

    def granted_scopes(self) -> frozenset[str] | None:
        """3LO: the scopes the grant holds, as the token endpoint reported them (a token is
        fetched first if this hook has none yet). ``None`` for Basic auth, or when unreported."""
        from airflow_provider_jira_auth.scopes import granted_by

        if self.settings.auth_type != "oauth2":
            return None
        return granted_by(self.get_conn().auth)

    def check_scopes(self, *operations: str, scopes: Iterable[str] = (), what: str | None = None) -> None:
        """Fail before calling if a 3LO grant lacks a scope that ``operations`` need.

        :param operations: client operations, e.g. ``"create_issue"`` (see ``scopes.OPERATIONS``).
        :param scopes: more scopes to require (e.g. a :class:`JiraRequestOperator`'s).
        :param what: who is calling, for the message.
        :raises JiraMissingScopeError: naming the missing scope and the consent command.
        """
        from airflow_provider_jira_auth.scopes import check_granted, scopes_for

        required = scopes_for(*operations) | frozenset(scopes)
        if not required or self.settings.auth_type != "oauth2":
            return  # Basic auth: the scopes of a scoped API token are not visible to its holder
        check_granted(required, self.granted_scopes(), conn_id=self.jira_conn_id, what=what or "this call")
