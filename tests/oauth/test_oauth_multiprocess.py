"""Eight processes, one file store, rotating refresh tokens with a 1 s reuse leeway: nobody loses the grant."""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

from oauth_support import gateway_worker

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient
from airflow_provider_jira_auth.auth.stores.file import FileTokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.testing import JiraCloudEmulator

PROCESSES = 8
DURATION = 8.0
TTL = 1
MARGIN = 0.1


def test_processes_sharing_a_file_store_refresh_once_per_window_and_never_revoke_the_family(
    emu: JiraCloudEmulator, store_path: Path, file_store: FileTokenStore, token_client: OAuthTokenClient
) -> None:
    emu.oauth.access_token_ttl = TTL
    emu.oauth.reuse_leeway = 1  # a stale refresh token used a second late kills the grant
    emu.oauth.omit_refresh_token_every = 3
    app = emu.default_app
    config = {
        "store_path": str(store_path),
        "auth_url": emu.auth_url,
        "api_url": emu.api_url,
        "cloud_id": emu.cloud_id,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "margin": MARGIN,
        "duration": DURATION,
        "pause": 0.005,
    }
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    workers = [context.Process(target=gateway_worker, args=(config, ready, start, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=60)
    start.set()
    reports = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)

    calls = sum(r["ok"] for r in reports)
    refreshes = emu.stats.token_refreshes
    elapsed = max(r["ended"] for r in reports) - min(r["started"] for r in reports)
    windows = math.ceil(elapsed / (TTL - MARGIN))  # a token is replaced MARGIN seconds before it expires
    print(
        f"{calls} calls, {refreshes} refreshes in {elapsed:.1f} s ({windows} expiry windows), {emu.stats.auth_failures} 401s"
    )
    assert [r["errors"] for r in reports if r["failed"]] == []
    assert calls > PROCESSES * 50
    assert emu.stats.family_revocations == 0
    assert emu.stats.rejected_refreshes == 0
    assert emu.stats.reuse_within_leeway == 0
    assert refreshes <= windows + 2, (refreshes, windows)
    # The stored refresh token is the current one: the emulator still exchanges it.
    stored = file_store.load()
    assert isinstance(stored, TokenState)
    assert token_client.refresh(stored).access_token
    assert emu.stats.family_revocations == 0 and emu.stats.reuse_within_leeway == 0
