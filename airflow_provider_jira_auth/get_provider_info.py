"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_jira_auth import __version__
from airflow_provider_jira_auth.connection_fields import (
    CONN_FIELDS,
    CONN_TYPE,
    HOOK_NAME,
    UI_FIELD_BEHAVIOUR,
)

INTEGRATION = "Jira Cloud"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-jira-auth",
        "name": "Jira Cloud (API token and OAuth 2.0 3LO)",
        "description": "Jira Cloud for Apache Airflow: API-token and OAuth 2.0 (3LO) connections with "
        "rotating refresh tokens kept current across workers.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://developer.atlassian.com/cloud/jira/platform/rest/v3/",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider_jira_auth.hooks.jira_cloud"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_jira_auth.operators.jira_cloud",
                    "airflow_provider_jira_auth.operators.transition",
                    "airflow_provider_jira_auth.operators.export",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider_jira_auth.sensors.jira_cloud"],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_jira_auth.triggers.jira_cloud",
                    "airflow_provider_jira_auth.triggers.issues_changed",
                ],
            }
        ],
        "notifications": ["airflow_provider_jira_auth.notifications.jira_cloud.JiraIssueNotifier"],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_jira_auth.hooks.jira_cloud.JiraCloudHook",
                "hook-name": HOOK_NAME,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
