"""Airflow 3.3 accepts the provider: schema-valid provider info, listed by the CLI, form declared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import jsonschema

from airflow_provider_jira_auth.connection_fields import CONN_FIELDS
from airflow_provider_jira_auth.get_provider_info import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DESIGN_EXTRA_KEYS = {
    "auth_type", "cloud_id", "client_id", "client_secret", "refresh_token", "scopes", "auth_url", "api_url", "timeout", "verify",
}


def test_provider_info_validates_against_airflows_schema():
    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_the_connection_form_declares_every_public_extra_key():
    assert DESIGN_EXTRA_KEYS <= set(CONN_FIELDS)


def test_airflow_treats_exactly_the_secret_fields_as_sensitive():
    # What the api-server sends the connection form (/ui/connections/hook_meta): from provider
    # info on 3.2+, from the hook's widgets before (built without flask_appbuilder installed).
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    ours = [meta for meta in HookMetaService.hook_meta_data() if meta.connection_type == "jira_cloud"]
    assert len(ours) == 1
    fields = {name: param["schema"] for name, param in ours[0].model_dump()["extra_fields"].items()}

    assert {name for name, schema in fields.items() if schema.get("format") == "password"} == {
        "client_secret", "refresh_token", "broker_secret",
    }
    assert {"client_id", "cloud_id", "scopes"} <= set(fields)  # the form is there, and not all of it is hidden
    assert fields["client_secret"]["title"] == CONN_FIELDS["client_secret"]["label"]


def test_airflow_lists_the_provider_and_its_hook():
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
    providers = subprocess.run([AIRFLOW, "providers", "list", "-o", "json"], capture_output=True, text=True, env=env, timeout=120)
    hooks = subprocess.run([AIRFLOW, "providers", "hooks", "-o", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert "airflow-provider-jira-auth" in providers.stdout, providers.stderr[-2000:]
    listed = json.loads(hooks.stdout[hooks.stdout.index("[") :])
    jira = [h for h in listed if h.get("connection_type") == "jira_cloud"]
    assert jira and jira[0]["class"] == "airflow_provider_jira_auth.hooks.jira_cloud.JiraCloudHook"


def test_the_plugin_mounts_the_broker_and_the_consent_page():
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
    result = subprocess.run([AIRFLOW, "plugins", "-o", "json"], capture_output=True, text=True, env=env, timeout=120)
    plugins = json.loads(result.stdout[result.stdout.index("[") :])
    ours = [p for p in plugins if p["name"] == "jira_auth"]
    assert ours and ours[0]["fastapi_apps"][0]["url_prefix"] == "/jira-auth"
