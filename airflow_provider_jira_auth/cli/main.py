"""``airflow-jira-auth``: obtain the first refresh token (authorize) and show token health (status).

Runs where the ``airflow`` CLI runs: with the deployment's configuration and metadata DB.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import webbrowser
from typing import Any

from airflow_provider_jira_auth.client.errors import JiraError

CLIENT_SECRET_ENV = "JIRA_CLIENT_SECRET"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airflow-jira-auth", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    auth = commands.add_parser(
        "authorize",
        help="run the OAuth 2.0 (3LO) consent and store the refresh token in a jira_cloud connection",
        description=(
            "Opens Atlassian's consent page, catches the redirect (on a loopback redirect URI) or asks you "
            "to paste it, exchanges the code and writes the connection. The client secret is read from "
            f"${CLIENT_SECRET_ENV} or a prompt, never from the command line."
        ),
    )
    auth.add_argument("--conn-id", required=True, help="the jira_cloud connection to create or update")
    auth.add_argument(
        "--client-id", help="the app's client id (default: the connection's); one starting with '-' works too"
    )
    auth.add_argument("--site-url", help="the Jira site, e.g. https://your-site.atlassian.net (default: the connection's host)")
    auth.add_argument("--scopes", help="space-separated scopes (offline_access is always added)")
    auth.add_argument(
        "--redirect-uri",
        default="http://127.0.0.1:8765/callback",
        help="the callback URL registered for the app (default %(default)s). A loopback URL is served by this "
        "command; for any other, paste the URL the browser lands on",
    )
    auth.add_argument("--auth-url", help="authorization server (default: the connection's, or Atlassian's)")
    auth.add_argument("--api-url", help="API gateway (default: the connection's, or Atlassian's)")
    auth.add_argument("--no-browser", action="store_true", help="print the consent link instead of opening a browser")
    auth.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the redirect (default %(default)s)")
    auth.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the connection as JSON instead of writing it (for env vars or a secrets backend)",
    )

    status = commands.add_parser("status", help="show a jira_cloud connection's auth and token health (no secrets)")
    status.add_argument("--conn-id", required=True)
    status.add_argument("--json", action="store_true", help="print JSON")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, where an option's value may begin with '-' (``--client-id -Xy3``).

    argparse takes such a value for an option and fails with "expected one argument"; it is
    attached to its option (``--client-id=-Xy3``) unless it is one of the command's options.
    """
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    taking_a_value, known = set(), set()
    for sub in (parser, *_subparsers(parser)):
        for action in sub._actions:
            known.update(action.option_strings)
            if action.option_strings and action.nargs is None:  # exactly one value; flags have nargs=0
                taking_a_value.update(action.option_strings)
    joined: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        following = args[i + 1] if i + 1 < len(args) else None
        if arg in taking_a_value and following is not None and following.startswith("-") and following not in known:
            joined.append(f"{arg}={following}")
            i += 2
            continue
        joined.append(arg)
        i += 1
    return parser.parse_args(joined)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [
        sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in action.choices.values()
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "authorize":
            return authorize(args)
        return status(args)
    except JiraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


# -- authorize ---------------------------------------------------------------------------------


def authorize(args: argparse.Namespace) -> int:
    from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient
    from airflow_provider_jira_auth.consent.storage import find_connection, save_consent
    from airflow_provider_jira_auth.consent.flow import (
        DEFAULT_SCOPES,
        code_from_redirect,
        complete_consent,
        new_state,
        wait_for_callback,
        with_offline_access,
    )
    from airflow_provider_jira_auth.client.urls import is_loopback_host, normalize_base_url
    from airflow_provider_jira_auth.connection_fields import DEFAULT_API_URL, DEFAULT_AUTH_URL
    from airflow_provider_jira_auth.settings import extra_value

    existing, where = find_connection(args.conn_id)
    extra: dict[str, Any] = existing.extra_dejson if existing is not None else {}
    client_id = args.client_id or extra_value(extra, "client_id")
    if not client_id:
        raise JiraError("give --client-id (the connection has none): copy it from your app in the developer console")
    client_secret = os.environ.get(CLIENT_SECRET_ENV) or extra_value(extra, "client_secret")
    if not client_secret:
        if not sys.stdin.isatty():
            raise JiraError(f"set ${CLIENT_SECRET_ENV} to the app's client secret (there is no terminal to ask on)")
        client_secret = getpass.getpass("Client secret of the app (not echoed): ").strip()
    site_url = args.site_url or (existing.host if existing is not None else None)
    if site_url:
        site_url = normalize_base_url(site_url, "--site-url")
    scopes = with_offline_access(
        tuple((args.scopes or extra_value(extra, "scopes") or " ".join(DEFAULT_SCOPES)).replace(",", " ").split())
    )
    auth_url = normalize_base_url(args.auth_url or extra_value(extra, "auth_url") or DEFAULT_AUTH_URL, "--auth-url")
    api_url = normalize_base_url(args.api_url or extra_value(extra, "api_url") or DEFAULT_API_URL, "--api-url")

    state = new_state()
    token_client = OAuthTokenClient(auth_url, client_id, client_secret, conn_id=args.conn_id)
    link = token_client.authorization_url(args.redirect_uri, scopes, state)

    def show_link() -> None:
        print("Open this link, sign in as the Jira user the DAGs should act as, and accept:", flush=True)
        print(link, flush=True)
        if not args.no_browser:
            webbrowser.open(link)

    from urllib.parse import urlsplit

    redirect = urlsplit(args.redirect_uri)
    if is_loopback_host(redirect.hostname or "") and redirect.port:
        redirected = wait_for_callback(args.redirect_uri, args.timeout, on_ready=show_link)
    else:
        show_link()
        redirected = input("Paste the full URL your browser landed on after Accept: ")
    code = code_from_redirect(redirected, state, args.redirect_uri)

    def choose_site(sites: list[dict[str, Any]]) -> dict[str, Any]:
        if not sys.stdin.isatty():
            raise JiraError("the grant covers several Jira sites: give --site-url")
        for number, site in enumerate(sites, 1):
            print(f"  {number}. {site.get('name')}  {site.get('url')}")
        picked = input(f"Which site (1-{len(sites)})? ").strip()
        if not picked.isdigit() or not 1 <= int(picked) <= len(sites):
            raise JiraError(f"{picked!r} is not a number from 1 to {len(sites)}; nothing changed")
        return sites[int(picked) - 1]

    with token_client:
        consent = complete_consent(
            token_client, code=code, redirect_uri=args.redirect_uri, api_url=api_url,
            site_url=site_url, choose_site=choose_site,
        )
    fields = {
        "host": str(consent.site["url"]),
        "extra": {
            "auth_type": "oauth2",
            "client_id": client_id,
            "client_secret": client_secret,
            "cloud_id": str(consent.site["id"]),
            "scopes": " ".join(scopes),
            "auth_url": auth_url,
            "api_url": api_url,
        },
    }
    written = save_consent(args.conn_id, fields, consent.state, existing=existing, where=where, print_only=args.print_only)
    print(written)
    granted = " ".join(consent.state.scopes) or "(not reported)"
    print(f"Site {consent.site.get('name')} ({consent.site['url']}, cloud id {consent.site['id']}); scopes granted: {granted}")
    return 0


# -- status ------------------------------------------------------------------------------------


def status(args: argparse.Namespace) -> int:
    if args.json:
        # Only the JSON on stdout: Airflow 3.2 logs to stdout (e.g. alembic's plugin set-up) while
        # the connection is read, so stdout points at stderr until the report is ready.
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        try:
            report = _connection_status(args.conn_id)
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        print(json.dumps(report, indent=2))
        return 0
    report = _connection_status(args.conn_id)
    width = max(len(key) for key in report)
    for key, value in report.items():
        shown = " ".join(value) if isinstance(value, list) else value
        print(f"{key.replace('_', ' '):<{width}}  {'-' if shown in (None, '') else shown}")
    return 0


def _connection_status(conn_id: str) -> dict[str, Any]:
    from airflow_provider_jira_auth.consent.storage import connection_status

    return connection_status(conn_id)


if __name__ == "__main__":
    sys.exit(main())
