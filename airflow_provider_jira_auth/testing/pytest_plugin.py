"""pytest fixtures around the Jira Cloud emulator.

Enable them in a ``conftest.py``::

    pytest_plugins = ["airflow_provider_jira_auth.testing.pytest_plugin"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emulator import JiraCloudEmulator


@pytest.fixture
def jira_emulator() -> Iterator[JiraCloudEmulator]:
    """A fresh, running emulator for one test, stopped afterwards."""
    with JiraCloudEmulator() as emulator:
        yield emulator


@pytest.fixture
def jira_cloud_connection(jira_emulator: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch) -> JiraCloudEmulator:
    """Points connection ``jira_cloud_default`` (Basic auth) at ``jira_emulator``; returns the emulator."""
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_CLOUD_DEFAULT", jira_emulator.connection_json("basic"))
    return jira_emulator
