"""Run the Jira Cloud emulator in the foreground: ``python -m airflow_provider_jira_auth.testing``."""

from __future__ import annotations

import argparse
import shlex
import threading

from .emulator import JiraCloudEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_jira_auth.testing", description="Run an offline Jira Cloud emulator."
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--issues", type=int, default=0, help="seed this many issues in project ENG")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    with JiraCloudEmulator(port=args.port, seed=args.seed, verbose=args.verbose) as emu:
        if args.issues:
            emu.seed_issues(count=args.issues)
        user, app = emu.default_user, emu.default_app
        print(f"Jira Cloud emulator running at {emu.url} (cloudId {emu.cloud_id})")
        print(f"  site, gateway (api_url) and auth server (auth_url) all at {emu.url}")
        print(f"  user:      {user.email}")
        print(f"  API token: {user.api_token}")
        print(f"  OAuth app: client_id {app.client_id}  client_secret {app.client_secret}")
        print("Airflow connection (Basic auth):")
        print(f"AIRFLOW_CONN_JIRA_CLOUD_DEFAULT={shlex.quote(emu.connection_json('basic'))}")
        print("Airflow connection (OAuth 2.0 3LO, with a consented grant's refresh token):")
        print(f"AIRFLOW_CONN_JIRA_CLOUD_OAUTH={shlex.quote(emu.connection_json('oauth2'))}")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
