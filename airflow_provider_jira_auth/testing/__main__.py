"""Run the Jira Cloud emulator in the foreground: ``python -m airflow_provider_jira_auth.testing``."""

from __future__ import annotations

import argparse
import json
import shlex
import threading

from .emulator import JiraCloudEmulator, airflow_consent_callback

CONNECT_CONN_ID = "jira_cloud_connect"
CONNECT_SCOPES = "read:jira-work write:jira-work read:jira-user"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_jira_auth.testing", description="Run an offline Jira Cloud emulator."
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--issues", type=int, default=0, help="seed this many issues in project ENG")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--answer-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="answer every Jira REST call this late, like the real service (e.g. 0.15)",
    )
    parser.add_argument(
        "--per-issue-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="and this much later for each issue an answer carries with fields (e.g. 0.002)",
    )
    parser.add_argument(
        "--per-id-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="and this much later for each issue listed by id or key only (default 0)",
    )
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URL",
        help="register another callback URL on the OAuth app (repeatable), e.g. http://127.0.0.1:8765/callback "
        "for `airflow-jira-auth authorize`",
    )
    parser.add_argument(
        "--airflow-url",
        metavar="URL",
        help="base URL of an Airflow api-server with this provider, e.g. http://localhost:8080: registers the "
        "callback of its 'Connect to Jira' page",
    )
    args = parser.parse_args(argv)
    if min(args.answer_delay, args.per_issue_delay, args.per_id_delay) < 0:
        parser.error("answer delays must be >= 0 seconds")

    with JiraCloudEmulator(port=args.port, seed=args.seed, verbose=args.verbose) as emu:
        if args.issues:
            emu.seed_issues(count=args.issues)
        emu.set_answer_delays(args.answer_delay, args.per_issue_delay, per_id=args.per_id_delay)
        user, app = emu.default_user, emu.default_app
        extra_uris = list(args.redirect_uri)
        if args.airflow_url:
            extra_uris.append(airflow_consent_callback(args.airflow_url))
        try:
            for uri in extra_uris:
                emu.add_redirect_uri(app.client_id, uri)
        except ValueError as exc:
            parser.error(str(exc))
        print(f"Jira Cloud emulator running at {emu.url} (cloudId {emu.cloud_id})")
        print(f"  site, gateway (api_url) and auth server (auth_url) all at {emu.url}")
        print(f"  user:      {user.email}")
        print(f"  API token: {user.api_token}")
        print(f"  OAuth app: client_id {app.client_id}  client_secret {app.client_secret}")
        print(f"  callback URLs of the app: {' '.join(app.redirect_uris)}")
        if emu.answer_delays.active:
            delays = emu.answer_delays
            print(
                f"  answers delayed {delays.per_call:g} s a call + {delays.per_issue:g} s an issue "
                f"+ {delays.per_id:g} s an id-only issue"
            )
        print("Airflow connection (Basic auth):")
        print(f"AIRFLOW_CONN_JIRA_CLOUD_DEFAULT={shlex.quote(emu.connection_json('basic'))}")
        print("Airflow connection (OAuth 2.0 3LO, with a consented grant's refresh token):")
        print(f"AIRFLOW_CONN_JIRA_CLOUD_OAUTH={shlex.quote(emu.connection_json('oauth2'))}")
        if args.airflow_url:
            connect = {
                "conn_type": "jira_cloud",
                "host": emu.url,
                "extra": {
                    "auth_type": "oauth2",
                    "client_id": app.client_id,
                    "client_secret": app.client_secret,
                    "auth_url": emu.auth_url,
                    "api_url": emu.api_url,
                    "scopes": CONNECT_SCOPES,
                },
            }
            print("Airflow connection to consent to on the 'Connect to Jira' page (no refresh token yet):")
            print(f"airflow connections add {CONNECT_CONN_ID} --conn-json {shlex.quote(json.dumps(connect))}")
            print(f"  then open {args.airflow_url.rstrip('/')}/jira-auth/connect and press 'Connect to Jira'")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
