"""A jira_cloud connection's fields -> validated settings, and every misconfiguration named."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client.errors import JiraConfigError
from airflow_provider_jira_auth.settings import JiraConnectionSettings

BASIC = dict(host="https://acme.atlassian.net", login="bot@acme.test", password="tok-123", extra={})
OAUTH = dict(
    host="https://acme.atlassian.net",
    login=None,
    password=None,
    extra={"auth_type": "oauth2", "client_id": "cid", "client_secret": "csecret", "refresh_token": "rt-1"},
)


def settings(**fields):
    return JiraConnectionSettings.from_connection("jira_test", **fields)


def test_basic_connection_calls_the_site_rest_root():
    s = settings(**BASIC)
    assert (s.auth_type, s.email, s.uses_gateway) == ("basic", "bot@acme.test", False)
    assert s.rest_url() == "https://acme.atlassian.net/rest/api/3"


def test_cloud_id_sends_basic_auth_through_the_gateway():
    s = settings(**{**BASIC, "extra": {"cloud_id": "c-1"}})
    assert s.rest_url() == "https://api.atlassian.com/ex/jira/c-1/rest/api/3"


def test_scoped_token_flag_needs_the_gateway_and_asks_for_a_cloud_id():
    s = settings(**{**BASIC, "extra": {"scoped_token": "true"}})
    assert s.uses_gateway
    assert s.rest_url("c-9").endswith("/ex/jira/c-9/rest/api/3")


def test_oauth2_always_uses_the_gateway():
    assert settings(**OAUTH).uses_gateway


def test_bare_host_gets_https_and_the_prefixed_extra_keys_of_older_uis_are_read():
    s = settings(**{**BASIC, "host": "acme.atlassian.net", "extra": {"extra__jira_cloud__timeout": "12"}})
    assert (s.site_url, s.timeout) == ("https://acme.atlassian.net", 12.0)


def test_empty_strings_from_the_ui_count_as_unset():
    s = settings(**{**BASIC, "extra": {"cloud_id": "", "auth_type": "", "timeout": ""}})
    assert (s.auth_type, s.cloud_id, s.uses_gateway, s.timeout) == ("basic", None, False, 30.0)


def test_verify_accepts_booleans_and_a_ca_bundle_path():
    assert settings(**{**BASIC, "extra": {"verify": "false"}}).verify is False
    assert settings(**{**BASIC, "extra": {"verify": "/etc/ssl/corp.pem"}}).verify == "/etc/ssl/corp.pem"


def test_secrets_are_not_in_the_repr():
    text = repr(settings(**OAUTH)) + repr(settings(**BASIC))
    for secret in ("tok-123", "csecret", "rt-1"):
        assert secret not in text


BAD_INPUT = [
    # (fields, the field named, words the fix must contain)
    (dict(BASIC, host=None), "host", "https://your-site.atlassian.net"),
    (dict(BASIC, host="  "), "host", "site URL is empty"),
    (dict(BASIC, host="not a url"), "host", ""),
    (dict(BASIC, host="http://acme.atlassian.net"), "host", "https://"),
    (dict(BASIC, extra={"auth_type": "bearer"}), "extra.auth_type", "'basic'"),
    (dict(BASIC, login=""), "login", "email"),
    (dict(BASIC, password=None), "password", "api-tokens"),
    (dict(BASIC, login=None, extra={"client_id": "x"}), "login", "auth_type to 'oauth2'"),
    (dict(BASIC, extra={"timeout": "soon"}), "extra.timeout", "positive number"),
    (dict(BASIC, extra={"timeout": -3}), "extra.timeout", "positive number"),
    (dict(BASIC, extra={"scoped_token": "perhaps"}), "extra.scoped_token", "true or false"),
    (dict(BASIC, extra={"api_url": "http://proxy.corp.example"}), "extra.api_url", "https://"),
    (dict(OAUTH, extra={**OAUTH["extra"], "client_id": None}), "extra.client_id", "developer console"),
    (dict(OAUTH, extra={**OAUTH["extra"], "client_secret": ""}), "extra.client_secret", "developer console"),
    (dict(OAUTH, extra={**OAUTH["extra"], "refresh_token": None}), "extra.refresh_token", "authorize --conn-id jira_test"),
]


@pytest.mark.parametrize(("fields", "field", "fix"), BAD_INPUT, ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD_INPUT)])
def test_bad_connection_fields_name_the_field_and_the_fix(fields, field, fix):
    with pytest.raises(JiraConfigError) as caught:
        settings(**fields)
    assert caught.value.field == field
    assert field in str(caught.value)
    assert fix in str(caught.value)


def test_http_is_accepted_for_loopback_hosts_only():
    assert settings(**dict(BASIC, host="http://127.0.0.1:8080")).site_url == "http://127.0.0.1:8080"
    assert settings(**dict(BASIC, host="http://localhost:8080/")).site_url == "http://localhost:8080"
