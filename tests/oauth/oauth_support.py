"""Helpers of the OAuth tests, importable by spawned worker processes too."""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_jira_auth.testing import JiraCloudEmulator, RecordedRequest

CONN_ID = "jira_oauth_test"


def token_calls(emu: JiraCloudEmulator) -> list[RecordedRequest]:
    """Requests the emulator's token endpoint answered."""
    return [r for r in emu.requests if r.path == "/oauth/token"]


def gateway_worker(config: dict[str, Any], ready: Any, start: Any, results: Any) -> None:
    """One "Airflow worker": its own provider on the shared file store, calling the gateway until the deadline.

    Runs in a spawned process: puts ``True`` on ``ready`` once set up, waits for ``start``, then puts
    ``{"ok", "failed", "errors", "started", "ended"}`` on ``results``.
    """
    from airflow_provider_jira_auth.auth.oauth2 import JiraOAuth2Auth, OAuthTokenClient, RefreshingTokenProvider
    from airflow_provider_jira_auth.auth.stores.file import FileTokenStore
    from airflow_provider_jira_auth.client.errors import JiraError
    from airflow_provider_jira_auth.client.http import JiraClient
    from airflow_provider_jira_auth.client.retry import RetryPolicy
    from airflow_provider_jira_auth.client.urls import gateway_rest_url

    policy = RetryPolicy(backoff_initial=0.05, retry_after_floor=0.05)
    store = FileTokenStore(CONN_ID, config["store_path"])
    token_client = OAuthTokenClient(
        config["auth_url"], config["client_id"], config["client_secret"], conn_id=CONN_ID, timeout=10, retry=policy
    )
    provider = RefreshingTokenProvider(store, token_client, margin=config["margin"])
    auth = JiraOAuth2Auth(provider, margin=config["margin"])
    ok = failed = 0
    errors: list[str] = []
    with JiraClient(gateway_rest_url(config["api_url"], config["cloud_id"]), auth, retry=policy, timeout=10) as jira:
        ready.put(True)
        start.wait()
        started = time.time()
        deadline = time.monotonic() + config["duration"]
        while time.monotonic() < deadline:
            try:
                jira.myself()
                ok += 1
            except JiraError as exc:
                failed += 1
                errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(config["pause"])  # real: workers call on through real token lifetimes until the deadline
        ended = time.time()
    token_client.close()
    results.put(
        {
            "ok": ok,
            "failed": failed,
            "errors": errors[:5],
            "started": started,
            "ended": ended,
        }
    )
