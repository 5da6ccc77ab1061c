"""Fixtures: the OAuth layer over real HTTP against the Jira Cloud emulator; retry waits go to a list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oauth_support import CONN_ID

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient
from airflow_provider_jira_auth.auth.stores.file import FileTokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.retry import RetryPolicy
from airflow_provider_jira_auth.testing import JiraCloudEmulator


@pytest.fixture
def emu() -> Iterator[JiraCloudEmulator]:
    with JiraCloudEmulator() as emulator:
        yield emulator


@pytest.fixture
def grant(emu: JiraCloudEmulator) -> dict:
    """A consented grant of the default app: its first token response."""
    return emu.issue_grant(emu.default_app.client_id)


@pytest.fixture
def initial(grant: dict) -> TokenState:
    """The state right after consent: a refresh token and no access token yet."""
    return TokenState(refresh_token=grant["refresh_token"])


@pytest.fixture
def token_client(emu: JiraCloudEmulator, policy: RetryPolicy) -> Iterator[OAuthTokenClient]:
    app = emu.default_app
    with OAuthTokenClient(
        emu.auth_url, app.client_id, app.client_secret, conn_id=CONN_ID, timeout=5, retry=policy
    ) as client:
        yield client


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "tokens" / f"{CONN_ID}.json"


@pytest.fixture
def file_store(store_path: Path, initial: TokenState) -> FileTokenStore:
    store = FileTokenStore(CONN_ID, store_path)
    store.seed(initial)
    return store
