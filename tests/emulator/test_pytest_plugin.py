"""The pytest fixtures users enable with pytest_plugins = ["airflow_provider_jira_auth.testing.pytest_plugin"]."""

from __future__ import annotations

import json
import os

import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator

pytest_plugins = ["airflow_provider_jira_auth.testing.pytest_plugin"]


def test_jira_emulator_fixture_is_a_running_emulator(jira_emulator: JiraCloudEmulator) -> None:
    assert requests.get(f"{jira_emulator.url}/_edge/tenant_info", timeout=5).json()["cloudId"] == jira_emulator.cloud_id


def test_jira_cloud_connection_points_the_default_connection_at_the_emulator(
    jira_cloud_connection: JiraCloudEmulator,
) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_JIRA_CLOUD_DEFAULT"])
    assert conn["host"] == jira_cloud_connection.url
    response = requests.get(f"{conn['host']}/rest/api/3/myself", auth=(conn["login"], conn["password"]), timeout=5)
    assert response.status_code == 200
