"""The ``jira_cloud`` connection form, declared once as data.

Airflow 3.2+ reads this from provider info without importing the hook; the hook turns the
same declaration into wtforms widgets for 3.0 and 3.1. Keep this module import-free: DAG
parsing and the providers manager load it.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "jira_cloud"
DEFAULT_CONN_ID = "jira_cloud_default"
HOOK_NAME = "Jira Cloud"

DEFAULT_AUTH_URL = "https://auth.atlassian.com"
DEFAULT_API_URL = "https://api.atlassian.com"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY_ATTEMPTS = 5
DEFAULT_RETRY_DELAY = 2.0
DEFAULT_RETRY_MAX_DELAY = 30.0

#: The connection extras (and operator ``jira_retry`` keys) that set how calls are retried.
RETRY_FIELDS = ("retry_attempts", "retry_delay", "retry_max_delay")

AUTH_TYPES = ("basic", "oauth2")

# name -> {label, description, schema}; "format": "password" makes the UI treat it as a secret.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "auth_type": {
        "label": "Auth type",
        "description": "basic: account email + API token. oauth2: an OAuth 2.0 (3LO) app with a consented refresh token.",
        "schema": {"type": ["string", "null"], "default": "basic", "enum": list(AUTH_TYPES)},
    },
    "cloud_id": {
        "label": "Cloud ID",
        "description": "The site's cloud id. Optional: looked up from the site when needed. Setting it "
        "sends Basic calls through the API gateway (needed for scoped API tokens).",
        "schema": {"type": ["string", "null"]},
    },
    "scoped_credential": {
        "label": "Scoped API token",
        "description": "Check if the API token was created with scopes: such tokens only work through the API gateway.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "client_id": {
        "label": "OAuth client ID",
        "description": "oauth2 only: the client id of your app in the Atlassian developer console.",
        "schema": {"type": ["string", "null"]},
    },
    "client_secret": {
        "label": "OAuth client secret",
        "description": "oauth2 only: the app's secret.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "broker_secret": {
        "label": "Token broker secret",
        "description": "oauth2 only: signs this connection's requests to the provider's token broker, so "
        "that another connection of the same OAuth app cannot obtain this one's access tokens. Written by "
        "the consent step; left empty, one derived from the connection's own refresh token is used (and "
        "stored, where Airflow can write the connection). Any long random string will do.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "refresh_token": {
        "label": "OAuth refresh token",
        "description": "oauth2 only: filled in by the consent step and kept current by the provider "
        "(Atlassian rotates it on every refresh).",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "scopes": {
        "label": "OAuth scopes",
        "description": "oauth2 only: the scopes the app asks for, space separated, e.g. "
        "'read:jira-work write:jira-work read:jira-user offline_access'.",
        "schema": {"type": ["string", "null"]},
    },
    "grant_store": {
        "label": "Token store",
        "description": "oauth2 only: where the rotating refresh token is kept: 'connection' (default; "
        "the connection must be in the metadata database), 'variable' (an Airflow Variable, for connections "
        "from environment variables or a secrets backend), 'file' (a file on each host, see 'Token file'), "
        "or a class path 'package.module.ClassName'.",
        "schema": {"type": ["string", "null"], "default": "connection"},
    },
    "grant_file": {
        "label": "Token file",
        "description": "oauth2 with the 'file' store only: the JSON file that holds the live tokens (mode 0600). "
        "Default: $AIRFLOW_HOME/jira_auth_tokens/<grant>.json.",
        "schema": {"type": ["string", "null"]},
    },
    "refresh_margin": {
        "label": "Refresh margin (seconds)",
        "description": "oauth2 only: refresh the access token this long before it expires (default 300; "
        "never more than a quarter of the lifetime Atlassian grants).",
        "schema": {"type": ["number", "null"]},
    },
    "broker_url": {
        "label": "Token broker URL",
        "description": "oauth2 only: where tasks reach the provider's token broker on the api-server "
        "(default: the api-server the worker already uses, + /jira-auth). https:// unless on loopback.",
        "schema": {"type": ["string", "null"]},
    },
    "auth_url": {
        "label": "Auth server URL",
        "description": "Atlassian's authorization server; change only for a proxy or an emulator.",
        "schema": {"type": ["string", "null"], "default": DEFAULT_AUTH_URL},
    },
    "api_url": {
        "label": "API gateway URL",
        "description": "Atlassian's API gateway; change only for a proxy or an emulator.",
        "schema": {"type": ["string", "null"], "default": DEFAULT_API_URL},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Timeout of each HTTP request to Jira.",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT},
    },
    "retry_attempts": {
        "label": "Retry attempts",
        "description": "Attempts per Jira call, the first included (default 5; 1: no retry). Only what is "
        "safe to repeat is retried; Retry-After is always honoured.",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_RETRY_ATTEMPTS},
    },
    "retry_delay": {
        "label": "Retry delay (seconds)",
        "description": "First wait before a retry, doubled at each one, with jitter (default 2).",
        "schema": {"type": ["number", "null"], "default": DEFAULT_RETRY_DELAY},
    },
    "retry_max_delay": {
        "label": "Retry max delay (seconds)",
        "description": "Longest wait between two attempts, Retry-After aside (default 30).",
        "schema": {"type": ["number", "null"], "default": DEFAULT_RETRY_MAX_DELAY},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true (default), false, or the path of a CA bundle (for a corporate proxy).",
        "schema": {"type": ["string", "null"], "default": "true"},
    },
}

#: Keys renamed because Airflow masks every key containing "token" (Airflow's secrets masker, ``should_hide_value_for_key``), which
#: showed non-secret settings as "***" and stored that literally from the form's defaults.
#: The old names keep working, with a deprecation warning naming the new key.
RENAMED_KEYS: dict[str, str] = {
    "scoped_credential": "scoped_token",
    "grant_store": "token_store",
    "grant_file": "token_file",
    "broker_url": "token_broker_url",
}

SECRET_FIELDS = tuple(name for name, spec in CONN_FIELDS.items() if spec["schema"].get("format") == "password")

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {
        "host": "Site URL",
        "login": "Email (basic auth)",
        "password": "API token (basic auth)",
    },
    "placeholders": {
        "host": "https://your-site.atlassian.net",
        "login": "you@example.com",
        "password": "API token from id.atlassian.com",
        "cloud_id": "looked up from the site when empty",
        "scopes": "read:jira-work write:jira-work read:jira-user offline_access",
        "grant_file": "$AIRFLOW_HOME/jira_auth_tokens/<grant>.json",
        "broker_url": "https://airflow.example.com/jira-auth",
        "auth_url": DEFAULT_AUTH_URL,
        "api_url": DEFAULT_API_URL,
    },
}


def field_label(field: str) -> str:
    """The form's label of a connection field (``"login"``, ``"extra.scopes"``), for messages."""
    name = field.removeprefix("extra.")
    if field in UI_FIELD_BEHAVIOUR["relabeling"]:
        return UI_FIELD_BEHAVIOUR["relabeling"][field]
    if name in CONN_FIELDS:
        return CONN_FIELDS[name]["label"]
    return {"host": "Host", "extra": "Extra", "conn_id": "Connection Id"}.get(field, field)
