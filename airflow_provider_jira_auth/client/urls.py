"""The one place that builds Jira Cloud and Atlassian URLs.

Every base URL (site, ``auth_url``, ``api_url``) goes through :func:`normalize_base_url` once,
when a connection is read; the builders below then only append paths.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

from airflow_provider_jira_auth.client.errors import JiraConfigError, JiraPathError

EXAMPLE_SITE = "https://example.atlassian.net"
REST_API_PATH = "rest/api/3"


def is_loopback_host(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1: the only hosts plain ``http://`` may talk to."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(value: str | None, field: str, *, default_scheme: str = "https") -> str:
    """Validate a base URL and return it without a trailing ``/``.

    A bare host name (``example.atlassian.net``) gets ``default_scheme``. Plain ``http://`` is
    refused unless the host is loopback: credentials must not cross a network in clear text.

    :param value: what the user configured.
    :param field: the connection field it came from, named in the error.
    :param default_scheme: the scheme a bare host name gets.
    :raises JiraConfigError: naming ``field``, what is wrong and how to fix it.
    """
    if value is not None and not isinstance(value, str):
        raise JiraConfigError(field, f"expected a URL string, got {type(value).__name__}; use e.g. {EXAMPLE_SITE}")
    text = (value or "").strip()
    if not text:
        raise JiraConfigError(field, f"is empty; set it to a URL such as {EXAMPLE_SITE}")
    if any(ch.isspace() for ch in text):
        raise JiraConfigError(field, f"{text!r} contains spaces and is not a URL; use e.g. {EXAMPLE_SITE}")
    if "://" not in text:
        text = f"{default_scheme}://{text}"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise JiraConfigError(field, f"{text!r} is not a valid URL ({exc}); use e.g. {EXAMPLE_SITE}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise JiraConfigError(field, f"{text!r} has scheme {parts.scheme!r}; use https://, e.g. {EXAMPLE_SITE}")
    if not parts.hostname:
        raise JiraConfigError(field, f"{text!r} has no host name; use e.g. {EXAMPLE_SITE}")
    if "@" in parts.netloc:
        raise JiraConfigError(
            field, "must not contain a user name or password; put credentials in the connection's login/password"
        )
    if ("[" in parts.netloc or "]" in parts.netloc) and not re.fullmatch(r"\[[^\[\]]+\](:\d*)?", parts.netloc):
        # urlsplit reads "[::1].evil.example" as host ::1; HTTP clients refuse it only when called.
        raise JiraConfigError(
            field, f"{text!r} is not a valid URL (an IPv6 address in [] must be the whole host); use e.g. {EXAMPLE_SITE}"
        )
    if "?" in text or "#" in text:
        raise JiraConfigError(
            field, f"{text!r} must not contain '?' or '#'; use just the base URL, e.g. {EXAMPLE_SITE}"
        )
    if scheme == "http" and not is_loopback_host(parts.hostname):
        raise JiraConfigError(
            field,
            "http:// is only allowed for loopback hosts (localhost, 127.0.0.1, ::1); "
            f"use https://, e.g. {EXAMPLE_SITE}",
        )
    return f"{scheme}://{parts.netloc.lower()}{parts.path}".rstrip("/")


def site_rest_url(site_url: str) -> str:
    """REST root on the site itself: classic API tokens."""
    return f"{site_url}/{REST_API_PATH}"


def gateway_rest_url(api_url: str, cloud_id: str) -> str:
    """REST root through the API gateway: 3LO access tokens and scoped API tokens."""
    return f"{api_url}/ex/jira/{cloud_id}/{REST_API_PATH}"


def rest_endpoint_url(rest_url: str, path: str) -> str:
    """``rest_url/path``: the one join of an endpoint path to a REST root, for every request.

    The credential sent with a request is valid for the whole gateway, so the path must stay
    under ``rest_url``. Refused, before anything is sent: ``.`` and ``..`` segments, also
    percent-encoded (``%2e%2e``, ``.%2E``) or with Tomcat's ``;`` parameters (``..;``), which a
    server or proxy resolves to another API (``../../ex/confluence/...``); backslashes, which
    some servers read as ``/``; absolute URLs and ``//host`` forms. A query string after ``?``
    is not a path and is not checked.

    :param rest_url: the REST root, e.g. from :func:`site_rest_url` or :func:`gateway_rest_url`.
    :param path: relative to it, e.g. ``"issue/ENG-1/transitions"``.
    :raises JiraPathError: naming the path and why it was refused.
    """
    raw = path.partition("?")[0]
    decoded = raw
    for _ in range(4):  # %252e is %2e once a proxy decoded it, then '.'
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    reason = None
    if "\\" in decoded:
        reason = "contains a backslash"
    elif "://" in decoded or decoded.startswith("/"):
        reason = "is an absolute URL or starts with '//'"
    elif any(segment.partition(";")[0] in (".", "..") for segment in decoded.split("/")):
        reason = "has a '.' or '..' segment (maybe percent-encoded)"
    if reason:
        raise JiraPathError(
            f"Refusing to call Jira endpoint {path!r}: the path {reason}, which could leave the REST root "
            f"{urlsplit(rest_url).path} and send this connection's credentials to another API. "
            "Pass a path under it, such as 'issue/ENG-1/transitions'"
        )
    return f"{rest_url}/{path}"


def tenant_info_url(site_url: str) -> str:
    """Anonymous endpoint that tells a site's ``cloudId``."""
    return f"{site_url}/_edge/tenant_info"


def token_url(auth_url: str) -> str:
    """OAuth 2.0 token endpoint: code exchange and refresh."""
    return f"{auth_url}/oauth/token"


def authorize_url(auth_url: str) -> str:
    """OAuth 2.0 consent page."""
    return f"{auth_url}/authorize"


def accessible_resources_url(api_url: str) -> str:
    """The sites a 3LO grant covers, with their cloud ids and scopes."""
    return f"{api_url}/oauth/token/accessible-resources"
