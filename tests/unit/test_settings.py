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


def test_scoped_credential_flag_needs_the_gateway_and_asks_for_a_cloud_id():
    s = settings(**{**BASIC, "extra": {"scoped_credential": "true"}})
    assert s.uses_gateway
    assert s.rest_url("c-9").endswith("/ex/jira/c-9/rest/api/3")


@pytest.mark.parametrize(
    ("old", "new", "value", "attribute", "expected"),
    [
        ("scoped_token", "scoped_credential", "true", "scoped_credential", True),
        ("token_store", "grant_store", "variable", "grant_store", "variable"),
    ],
)
def test_keys_renamed_so_airflow_stops_masking_them_still_work_under_their_old_names(old, new, value, attribute, expected):
    with pytest.warns(DeprecationWarning, match=f"{old!r} is deprecated: rename it to {new!r}"):
        s = settings(**{**OAUTH, "extra": {**OAUTH["extra"], old: value}})
    assert getattr(s, attribute) == expected


def test_the_new_key_wins_over_the_old_one():
    s = settings(**{**BASIC, "extra": {"scoped_token": "true", "scoped_credential": "false"}})
    assert s.scoped_credential is False


def test_an_extra_that_is_not_json_is_named_instead_of_silently_dropped():
    class Conn:
        host, login, password, schema = "https://acme.atlassian.net", None, None, None
        extra = '{not json'
        extra_dejson: dict = {}  # what Airflow makes of it: nothing, and a log line

    with pytest.raises(JiraConfigError) as caught:
        JiraConnectionSettings.of("jira_test", Conn())
    assert caught.value.field == "extra"
    assert "not valid JSON (line 1, column 2" in str(caught.value)


def test_errors_name_the_form_label_first_then_the_key():
    with pytest.raises(JiraConfigError) as caught:
        settings(**dict(BASIC, password=None))
    assert str(caught.value).startswith("Jira connection field 'API token (basic auth)' (password): ")
    with pytest.raises(JiraConfigError) as caught:
        settings(**dict(BASIC, extra={"scoped_credential": "perhaps"}))
    assert str(caught.value).startswith("Jira connection field 'Scoped API token' (extra.scoped_credential): ")


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
    (dict(BASIC, extra={"timeout": "inf"}), "extra.timeout", "positive number"),
    (dict(BASIC, extra={"timeout": 1e308}), "extra.timeout", "up to 600"),
    (dict(BASIC, extra={"timeout": "NaN"}), "extra.timeout", "positive number"),
    (dict(BASIC, extra={"timeout": True}), "extra.timeout", "positive number"),
    (dict(OAUTH, extra={**OAUTH["extra"], "refresh_margin": 1e12}), "extra.refresh_margin", "up to 3600"),
    (dict(BASIC, extra={"scoped_credential": "perhaps"}), "extra.scoped_credential", "true or false"),
    (dict(BASIC, extra={"retry_attempts": 0}), "extra.retry_attempts", "1 for no retry"),
    (dict(BASIC, extra={"retry_attempts": "three"}), "extra.retry_attempts", "whole number"),
    (dict(BASIC, extra={"retry_attempts": 2.5}), "extra.retry_attempts", "whole number"),
    (dict(BASIC, extra={"retry_attempts": 500}), "extra.retry_attempts", "from 1 to 20"),
    (dict(BASIC, extra={"retry_delay": "soon"}), "extra.retry_delay", "positive number"),
    (dict(BASIC, extra={"retry_delay": 0}), "extra.retry_delay", "positive number"),
    (dict(BASIC, extra={"retry_max_delay": 1e9}), "extra.retry_max_delay", "up to 600"),
    (dict(BASIC, extra={"retry_delay": 10, "retry_max_delay": 5}), "extra.retry_max_delay", "below retry_delay"),
    (dict(BASIC, extra='{"auth_type": "oauth2",}'), "extra", "not valid JSON"),
    (dict(BASIC, extra='["oauth2"]'), "extra", "JSON object"),
    (dict(BASIC, extra={"api_url": "http://proxy.corp.example"}), "extra.api_url", "https://"),
    (dict(BASIC, extra={"api_url": 443}), "extra.api_url", "expected a URL string, got int"),
    (dict(OAUTH, extra={**OAUTH["extra"], "auth_url": ["https://auth.atlassian.com"]}), "extra.auth_url", "got list"),
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


def test_retry_extras_default_to_the_documented_policy_and_set_it():
    default = settings(**BASIC).retry.policy()
    assert (default.max_attempts, default.backoff_initial, default.backoff_cap, default.retry_after_floor) == (5, 2.0, 30.0, 1.0)
    chosen = settings(**dict(BASIC, extra={"retry_attempts": "2", "retry_delay": "0.05", "retry_max_delay": 0.2}))
    policy = chosen.retry.policy()
    assert (policy.max_attempts, policy.backoff_initial, policy.backoff_cap) == (2, 0.05, 0.2)
    assert policy.retry_after_floor == 0.05  # a short backoff is not lengthened after Retry-After: 0
