"""The consent round trip of the 3LO flow, without Airflow: URL, callback, code exchange, site.

Used by the ``airflow-jira-auth authorize`` command; no Airflow imports here.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient, pick_site
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraOAuthError
from airflow_provider_jira_auth.client.urls import is_loopback_host

DEFAULT_SCOPES = ("read:jira-work", "write:jira-work", "read:jira-user", "offline_access")


class ConsentError(JiraOAuthError):
    """The consent did not give a usable grant; nothing was written."""


@dataclass(frozen=True)
class Consent:
    state: TokenState
    site: dict[str, Any]


def with_offline_access(scopes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``offline_access`` is what makes Atlassian hand out a refresh token: always ask for it."""
    return tuple(dict.fromkeys([*scopes, "offline_access"]))


def new_state() -> str:
    return secrets.token_urlsafe(32)


def code_from_redirect(redirected_url: str, expected_state: str, redirect_uri: str) -> str:
    """The ``code`` of the URL the browser came back to, after checking it is ours."""
    parts = urlsplit(redirected_url.strip())
    expected = urlsplit(redirect_uri)
    if (parts.scheme, parts.netloc, parts.path.rstrip("/")) != (expected.scheme, expected.netloc, expected.path.rstrip("/")):
        raise ConsentError(
            f"the pasted URL does not start with the redirect URI {redirect_uri}: paste the whole address "
            "the browser showed after you clicked Accept"
        )
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    if not hmac.compare_digest(query.get("state", ""), expected_state):
        raise ConsentError(
            "the state in the redirect does not match the one this command sent: the URL is from another "
            "consent attempt (or was tampered with). Run the command again and use the new link"
        )
    if "error" in query:
        description = query.get("error_description", "")
        if query["error"] == "access_denied":
            raise ConsentError(f"the consent was denied in the browser{': ' + description if description else ''}; nothing changed")
        raise ConsentError(f"Atlassian answered {query['error']}: {description}; nothing changed")
    if not query.get("code"):
        raise ConsentError("the redirect carries no code: paste the whole address the browser showed")
    return query["code"]


def wait_for_callback(redirect_uri: str, timeout: float, on_ready: Callable[[], None] | None = None) -> str:
    """Serve the loopback redirect URI once and return the full URL the browser came back to."""
    parts = urlsplit(redirect_uri)
    if not is_loopback_host(parts.hostname or "") or not parts.port:
        raise ConsentError(f"{redirect_uri} is not a loopback URL with a port: paste the redirected URL instead")
    received: dict[str, str] = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if urlsplit(self.path).path.rstrip("/") != parts.path.rstrip("/"):
                self.send_error(404)
                return
            received["url"] = f"{parts.scheme}://{parts.netloc}{self.path}"
            body = b"<html><body><h3>Jira consent received.</h3><p>You can close this tab.</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            done.set()

        def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: keep it out
            return

    try:
        server = HTTPServer((parts.hostname or "127.0.0.1", parts.port), Handler)
    except OSError as exc:
        raise ConsentError(f"cannot listen on {parts.hostname}:{parts.port} for the redirect ({exc}); free the port or paste the URL instead") from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        if on_ready:
            on_ready()
        if not done.wait(timeout):
            raise ConsentError(f"no redirect reached {redirect_uri} within {timeout:.0f}s; nothing changed")
        return received["url"]
    finally:
        server.shutdown()
        server.server_close()


def complete_consent(
    token_client: OAuthTokenClient,
    *,
    code: str,
    redirect_uri: str,
    api_url: str,
    site_url: str | None,
    choose_site: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
) -> Consent:
    """Exchange the code, then find the Jira site the grant is for."""
    state = token_client.exchange_code(code, redirect_uri)
    assert state.access_token
    resources = token_client.accessible_resources(state.access_token, api_url)
    jira_sites = [r for r in resources if any("jira" in str(s) for s in r.get("scopes") or ())]
    if site_url:
        site = pick_site(resources, site_url)
    elif len(jira_sites) == 1:
        site = jira_sites[0]
    elif jira_sites and choose_site is not None:
        site = choose_site(jira_sites)
    else:
        listed = ", ".join(str(r.get("url")) for r in jira_sites) or "none"
        raise ConsentError(f"the grant covers several Jira sites ({listed}): give --site-url to pick one")
    return Consent(state=state, site=site)
