"""A ``jira_cloud`` connection, read and validated into plain settings.

No Airflow imports: the hook hands over the connection's fields, this module decides what
they mean and rejects what cannot work, naming the field and the fix.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_jira_auth.auth.token_state import DEFAULT_EXPIRY_MARGIN
from airflow_provider_jira_auth.client.errors import JiraArgumentError, JiraConfigError
from airflow_provider_jira_auth.client.urls import gateway_rest_url, normalize_base_url, site_rest_url
from airflow_provider_jira_auth.connection_fields import (
    AUTH_TYPES,
    CONN_TYPE,
    DEFAULT_API_URL,
    DEFAULT_AUTH_URL,
    DEFAULT_RETRY_ATTEMPTS,
    DEFAULT_RETRY_DELAY,
    DEFAULT_RETRY_MAX_DELAY,
    DEFAULT_TIMEOUT,
    RENAMED_KEYS,
    RETRY_FIELDS,
)

log = logging.getLogger(__name__)

#: Upper bounds of the numbers a connection may set: beyond them requests (and the clock
#: arithmetic of a refresh margin) stop making sense, or overflow.
MAX_TIMEOUT = 600.0
MAX_REFRESH_MARGIN = 3600.0
MAX_RETRY_ATTEMPTS = 20
MAX_RETRY_DELAY = 600.0

_warned_renames: set[str] = set()

_TRUE = {"true", "1", "yes", "on", "y", "t"}
_FALSE = {"false", "0", "no", "off", "n", "f", ""}


def extra_value(extra: Mapping[str, Any], name: str) -> Any:
    """The plain key first, then the ``extra__jira_cloud__<name>`` form older UIs stored.

    Empty strings count as unset: the UI stores untouched optional fields as ``""``. A key
    renamed since (``RENAMED_KEYS``) is still read under its old name, with a deprecation warning.
    """
    for key in (name, f"extra__{CONN_TYPE}__{name}"):
        value = extra.get(key)
        if value is not None and value != "":
            return value
    old = RENAMED_KEYS.get(name)
    if old is not None:
        value = extra_value(extra, old)
        if value is not None:
            message = f"Jira connection extra key {old!r} is deprecated: rename it to {name!r}"
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            if old not in _warned_renames:  # once per process in the task log
                _warned_renames.add(old)
                log.warning(message)
            return value
    return None


def grant_fingerprint(client_id: str, refresh_token: str) -> str:
    """Names an OAuth grant without revealing its refresh token: the token stores key their state by it.

    Two connections (or a connection and the copy Airflow's Test button makes of it) that hold
    the same client id and seed refresh token share one grant, and so one token state.
    """
    digest = hashlib.sha256(f"airflow-provider-jira-auth/grant\0{client_id}\0{refresh_token}".encode())
    return digest.hexdigest()[:24]


def derived_broker_secret(conn_id: str, client_id: str, refresh_token: str) -> str:
    """The broker secret of a connection that has none in its extra, from what only its readers hold.

    Keyed by the connection's refresh token (its own grant's secret, which readers of another
    connection of the same app do not have) over the connection id, so that it differs per
    connection even for copies of one grant, and cannot be computed from another connection's
    credentials. The client secret is not enough on its own: every connection of an OAuth app
    shares it. Where the provider can write the connection it pins this value as
    ``broker_secret`` before the refresh token first changes (:func:`pin_broker_secret`), so the
    key a task computed from the copy it read stays valid after rotations.
    """
    message = f"airflow-provider-jira-auth/broker-secret\0{conn_id}\0{client_id}".encode()
    return hmac.new(refresh_token.encode(), message, hashlib.sha256).hexdigest()


def pin_broker_secret(extra: Mapping[str, Any], conn_id: str) -> dict[str, Any]:
    """``extra`` with ``broker_secret`` filled in when it is missing, null or empty.

    The value is :func:`derived_broker_secret` of the refresh token the extra holds *now* (before
    a write replaces it), so the key tasks already sign with does not change; an extra without a
    refresh token (or client id) is returned as it is (the consent step gives it a random one).
    """
    extra = dict(extra)
    if extra_value(extra, "broker_secret"):
        return extra
    client_id, refresh_token = extra_value(extra, "client_id"), extra_value(extra, "refresh_token")
    if client_id and refresh_token:
        extra.pop(f"extra__{CONN_TYPE}__broker_secret", None)
        extra["broker_secret"] = derived_broker_secret(conn_id, str(client_id), str(refresh_token))
    return extra


def _parse_bool(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise JiraConfigError(f"extra.{name}", f"{value!r} is not a boolean; use true or false")


def _parse_verify(value: Any) -> bool | str:
    if value is None or isinstance(value, bool):
        return True if value is None else value
    text = str(value).strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE - {""}:
        return False
    return text  # a CA bundle path, handed to requests as is


def _parse_seconds(value: Any, name: str, default: float, maximum: float, where: str = "extra") -> float:
    if value is None:
        return default
    try:
        seconds = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError, OverflowError):
        seconds = -1.0
    if not (math.isfinite(seconds) and 0 < seconds <= maximum):
        raise _config_error(
            f"{where}.{name}", f"{value!r} is not a positive number of seconds up to {maximum:g}; use e.g. {default:g}"
        )
    return seconds


def _config_error(field: str, message: str) -> JiraConfigError:
    """A connection field's error, or an argument's (``jira_retry.retry_delay``) when not from the extra."""
    return JiraConfigError(field, message) if field.startswith("extra") else JiraArgumentError(field, message)


def _parse_attempts(value: Any, name: str) -> int:
    if value is None or value == "":
        return DEFAULT_RETRY_ATTEMPTS
    try:
        attempts = int(str(value).strip()) if not isinstance(value, (bool, float)) else 0
    except ValueError:
        attempts = 0
    if not 1 <= attempts <= MAX_RETRY_ATTEMPTS:
        raise _config_error(
            name,
            f"{value!r} is not a whole number of attempts from 1 to {MAX_RETRY_ATTEMPTS} (the first call included); "
            f"use e.g. {DEFAULT_RETRY_ATTEMPTS}, or 1 for no retry",
        )
    return attempts


@dataclass(frozen=True)
class RetrySettings:
    """How the client retries within one task try: attempts in total and the backoff's bounds."""

    attempts: int = DEFAULT_RETRY_ATTEMPTS
    delay: float = DEFAULT_RETRY_DELAY
    max_delay: float = DEFAULT_RETRY_MAX_DELAY

    @classmethod
    def parse(cls, values: Mapping[str, Any], where: str = "extra", base: RetrySettings | None = None) -> RetrySettings:
        """From ``retry_attempts``, ``retry_delay``, ``retry_max_delay`` (missing ones from ``base``).

        :param where: prefix of the field named in errors (``extra`` or an operator argument).
        :raises JiraConfigError: an unknown key or a bad value, naming it.
        """
        # The order of the two delays is checked once both are known: an operator's mapping alone
        # may lower retry_max_delay under the default delay for a connection whose delay is lower.
        check_order = base is not None or where == "extra"
        base = base or cls()
        unknown = sorted(set(values) - set(RETRY_FIELDS)) if where != "extra" else []
        if unknown:
            raise _config_error(f"{where}.{unknown[0]}", f"is not a retry setting; use {', '.join(RETRY_FIELDS)}")

        def get(name: str) -> Any:
            value = extra_value(values, name) if where == "extra" else values.get(name)
            return None if value == "" else value

        attempts = get("retry_attempts")
        delay, max_delay = get("retry_delay"), get("retry_max_delay")
        parsed = cls(
            attempts=base.attempts if attempts is None else _parse_attempts(attempts, f"{where}.retry_attempts"),
            delay=base.delay if delay is None else _parse_seconds(delay, "retry_delay", DEFAULT_RETRY_DELAY, MAX_RETRY_DELAY, where),
            max_delay=base.max_delay
            if max_delay is None
            else _parse_seconds(max_delay, "retry_max_delay", DEFAULT_RETRY_MAX_DELAY, MAX_RETRY_DELAY, where),
        )
        if check_order and parsed.max_delay < parsed.delay:
            raise _config_error(
                f"{where}.retry_max_delay",
                f"{parsed.max_delay:g} s is below retry_delay ({parsed.delay:g} s); the longest wait cannot be "
                "shorter than the first",
            )
        return parsed

    def policy(self) -> Any:
        """The :class:`~airflow_provider_jira_auth.client.retry.RetryPolicy` these settings describe.

        ``Retry-After`` stays the minimum wait; a small ``delay`` also lowers the floor put under
        ``Retry-After: 0`` (1 s by default), so that a short backoff is not lengthened there.
        """
        from airflow_provider_jira_auth.client.retry import RetryPolicy

        return RetryPolicy(
            max_attempts=self.attempts,
            backoff_initial=self.delay,
            backoff_cap=self.max_delay,
            retry_after_floor=min(1.0, self.delay),
        )


def _parse_timeout(value: Any) -> float:
    return _parse_seconds(value, "timeout", DEFAULT_TIMEOUT, MAX_TIMEOUT)


def _parse_extra(extra: Any) -> dict[str, Any]:
    """The extra as a dict; a string that is not a JSON object is an error, never silently ``{}``."""
    if extra is None or extra == "":
        return {}
    if isinstance(extra, Mapping):
        return dict(extra)
    try:
        value = json.loads(extra)
    except ValueError as exc:
        raise JiraConfigError(
            "extra",
            f"is not valid JSON (line {getattr(exc, 'lineno', '?')}, column {getattr(exc, 'colno', '?')}: "
            f"{getattr(exc, 'msg', exc)}); write it as a JSON object, e.g. "
            '{"auth_type": "oauth2", "client_id": "..."}',
        ) from None
    if not isinstance(value, dict):
        raise JiraConfigError("extra", f"must be a JSON object, not {type(value).__name__}; e.g. {{\"auth_type\": \"basic\"}}")
    return value


def _parse_scopes(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
    return tuple(dict.fromkeys(str(s).strip() for s in items if str(s).strip()))


@dataclass(frozen=True)
class JiraConnectionSettings:
    """Everything the provider needs from one ``jira_cloud`` connection, validated."""

    conn_id: str
    site_url: str
    auth_type: str
    email: str | None = None
    api_token: str | None = field(default=None, repr=False)
    cloud_id: str | None = None
    scoped_credential: bool = False
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    broker_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    grant_store: str | None = None
    auth_url: str = DEFAULT_AUTH_URL
    api_url: str = DEFAULT_API_URL
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    refresh_margin: float = DEFAULT_EXPIRY_MARGIN
    retry: RetrySettings = field(default_factory=RetrySettings)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def uses_gateway(self) -> bool:
        """3LO and scoped API tokens only work through the API gateway (Atlassian: "Implementing OAuth 2.0 (3LO)")."""
        return self.auth_type == "oauth2" or self.scoped_credential or bool(self.cloud_id)

    @property
    def broker_key_material(self) -> str | None:
        """This connection's own broker secret: ``broker_secret``, else one derived from its refresh token.

        ``None`` when it has neither (an oauth2 connection whose store holds the grant and whose
        extra has no seed): the broker then serves it to nobody. See :func:`derived_broker_secret`.
        """
        if self.broker_secret:
            return self.broker_secret
        if self.client_id and self.refresh_token:
            return derived_broker_secret(self.conn_id, self.client_id, self.refresh_token)
        return None

    @property
    def broker_signing_secret(self) -> str:
        """What signs this connection's token-broker requests: the app's client secret bound to
        this connection by its own secret (:attr:`broker_key_material`), or ``""`` when it has none.

        Never the client secret alone: every connection of one OAuth app shares it, so it would
        let whoever reads connection A sign for connection B (docs/security.md).
        """
        material = self.broker_key_material
        if not material:
            return ""
        return f"{self.client_secret or ''}\0{material}"

    @property
    def grant_id(self) -> str | None:
        """3LO: the fingerprint of the grant this connection holds (see :func:`grant_fingerprint`).

        The connection store rewrites ``refresh_token`` on every rotation, so it pins the
        fingerprint of the grant's first token in the extra (``grant_id``); other stores leave
        the connection's refresh token as the grant's seed.
        """
        if self.auth_type != "oauth2" or not self.client_id:
            return None
        pinned = extra_value(self.extra, "grant_id")
        if pinned and (self.grant_store or "connection") == "connection":
            return str(pinned)
        if not self.refresh_token:
            return None
        return grant_fingerprint(self.client_id, self.refresh_token)

    def rest_url(self, cloud_id: str | None = None) -> str:
        """The REST root these settings call: the site, or the gateway for ``cloud_id``."""
        if not self.uses_gateway:
            return site_rest_url(self.site_url)
        cloud_id = cloud_id or self.cloud_id
        if not cloud_id:
            raise JiraConfigError("extra.cloud_id", "the API gateway needs the site's cloud id")
        return gateway_rest_url(self.api_url, cloud_id)

    @classmethod
    def of(cls, conn_id: str, conn: Any, **extra_overrides: Any) -> JiraConnectionSettings:
        """From any Airflow connection object (SDK or ORM): its host, login, password, schema, extra.

        The raw extra is parsed here, not through ``extra_dejson``, which turns invalid JSON into
        ``{}`` and would make every later message blame the wrong field.
        """
        raw = getattr(conn, "extra", None)
        extra = _parse_extra(raw) if isinstance(raw, str) else dict(conn.extra_dejson)
        return cls.from_connection(
            conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra={**extra, **extra_overrides},
            schema=conn.schema,
        )

    @classmethod
    def from_connection(
        cls,
        conn_id: str,
        *,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any] | None,
        schema: str | None = None,
    ) -> JiraConnectionSettings:
        """Validate a connection's fields; raise :class:`JiraConfigError` naming the field to fix."""
        extra = _parse_extra(extra)
        default_scheme = schema.lower() if schema and schema.lower() in ("http", "https") else "https"
        if not host or not str(host).strip():
            raise JiraConfigError(
                "host", "the site URL is empty; set it to your Jira site, e.g. https://your-site.atlassian.net"
            )
        site_url = normalize_base_url(host, "host", default_scheme=default_scheme)

        auth_type = str(extra_value(extra, "auth_type") or "basic").strip().lower()
        if auth_type not in AUTH_TYPES:
            raise JiraConfigError(
                "extra.auth_type",
                f"{auth_type!r} is not supported; use 'basic' (account email + API token) or "
                "'oauth2' (an OAuth 2.0 3LO app)",
            )
        common: dict[str, Any] = dict(
            conn_id=conn_id,
            site_url=site_url,
            auth_type=auth_type,
            cloud_id=str(extra_value(extra, "cloud_id") or "").strip() or None,
            scoped_credential=_parse_bool(extra_value(extra, "scoped_credential"), "scoped_credential", False),
            scopes=_parse_scopes(extra_value(extra, "scopes")),
            grant_store=_parse_store(extra_value(extra, "grant_store")),
            auth_url=normalize_base_url(extra_value(extra, "auth_url") or DEFAULT_AUTH_URL, "extra.auth_url"),
            api_url=normalize_base_url(extra_value(extra, "api_url") or DEFAULT_API_URL, "extra.api_url"),
            timeout=_parse_timeout(extra_value(extra, "timeout")),
            refresh_margin=_parse_seconds(
                extra_value(extra, "refresh_margin"), "refresh_margin", DEFAULT_EXPIRY_MARGIN, MAX_REFRESH_MARGIN
            ),
            verify=_parse_verify(extra_value(extra, "verify")),
            retry=RetrySettings.parse(extra),
            extra=extra,
        )
        if auth_type == "basic":
            return cls(**common, **_basic_credentials(login, password, extra))
        broker_secret = extra_value(extra, "broker_secret")
        return cls(
            **common,
            **_oauth2_credentials(conn_id, extra, common["grant_store"]),
            broker_secret=str(broker_secret) if broker_secret else None,
        )


def _basic_credentials(login: str | None, password: str | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    oauth_hint = (
        " (the connection has OAuth fields: set extra auth_type to 'oauth2' if you meant 3LO)"
        if extra_value(extra, "client_id")
        else ""
    )
    if not login or not str(login).strip():
        raise JiraConfigError(
            "login", "basic auth needs the Atlassian account email that owns the API token" + oauth_hint
        )
    if not password:
        raise JiraConfigError(
            "password",
            "basic auth needs an API token; create one at "
            "https://id.atlassian.com/manage-profile/security/api-tokens" + oauth_hint,
        )
    return {"email": str(login).strip(), "api_token": str(password)}


def _parse_store(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _oauth2_credentials(conn_id: str, extra: Mapping[str, Any], grant_store: str | None) -> dict[str, Any]:
    values = {name: extra_value(extra, name) for name in ("client_id", "client_secret", "refresh_token")}
    if grant_store not in (None, "connection"):
        # Another store holds the live refresh token; the connection's is only its first seed.
        values["refresh_token"] = values["refresh_token"] or ""
    fixes = {
        "client_id": "copy it from your app's Settings page in the Atlassian developer console",
        "client_secret": "copy it from your app's Settings page in the Atlassian developer console",
        "refresh_token": f"obtain one with the consent step: airflow-jira-auth authorize --conn-id {conn_id}",
    }
    for name, value in values.items():
        if value is None:
            raise JiraConfigError(f"extra.{name}", f"auth_type 'oauth2' needs {name}; {fixes[name]}")
    return {name: str(value) or None for name, value in values.items()}
