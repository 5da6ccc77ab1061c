"""The jira_cloud connection form, judged by Airflow's own rules: what it masks, what it shows."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth._compat import should_hide_value_for_key
from airflow_provider_jira_auth.auth.stores import airflow_db
from airflow_provider_jira_auth.connection_fields import CONN_FIELDS, RENAMED_KEYS, field_label

# The secrets a jira_cloud connection holds in its extra, by what they are (Atlassian: "Implementing OAuth 2.0 (3LO)").
SECRETS = {"client_secret", "refresh_token", "broker_secret"}


@pytest.mark.parametrize("name", sorted(CONN_FIELDS))
def test_airflow_masks_a_declared_field_exactly_when_it_is_a_secret(name):
    is_password = CONN_FIELDS[name]["schema"].get("format") == "password"
    assert is_password == (name in SECRETS)
    assert should_hide_value_for_key(name) == (name in SECRETS), (
        f"Airflow {'masks' if should_hide_value_for_key(name) else 'shows'} the extra key {name!r}"
    )


def test_the_state_the_connection_store_writes_is_masked_only_where_it_is_secret():
    secret_keys = {airflow_db.EXTRA_REFRESH_TOKEN, airflow_db.EXTRA_ACCESS_TOKEN}
    public_keys = {
        airflow_db.EXTRA_EXPIRES_AT, airflow_db.EXTRA_ROTATED_AT, airflow_db.EXTRA_GRANTED_SCOPES,
        airflow_db.EXTRA_REFRESH_STARTED_AT, airflow_db.EXTRA_GRANT_ID, airflow_db.EXTRA_LIFETIME,
    }
    assert all(should_hide_value_for_key(k) for k in secret_keys)
    assert not any(should_hide_value_for_key(k) for k in public_keys)


def test_the_renamed_keys_were_masked_and_their_new_names_are_not():
    for new, old in RENAMED_KEYS.items():
        assert should_hide_value_for_key(old) and not should_hide_value_for_key(new)
        assert new in CONN_FIELDS


def test_the_token_state_variable_is_masked():
    assert should_hide_value_for_key(airflow_db.VARIABLE_PREFIX + "grant_abc")


def test_a_non_password_field_keeps_its_default_through_airflows_hook_meta_rules():
    """hook_meta sends a masked field's default as '***', which a saved form stores literally."""
    for name, spec in CONN_FIELDS.items():
        default = spec["schema"].get("default")
        if default is not None:
            assert not should_hide_value_for_key(name), name


def test_labels_of_the_form_name_the_fields_in_messages():
    assert field_label("login") == "Email (basic auth)"
    assert field_label("password") == "API token (basic auth)"
    assert field_label("extra.scoped_credential") == "Scoped API token"
    assert field_label("extra.grant_store") == "Token store"
