"""Fixtures of the emulator's own tests: a fresh emulator, and a plain HTTP session to call it with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator


@pytest.fixture
def emu() -> Iterator[JiraCloudEmulator]:
    with JiraCloudEmulator() as emulator:
        yield emulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
