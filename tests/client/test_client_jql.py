"""Values placed into JQL with jql_quote/jql_list: a value cannot widen the query it is placed in."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client import jql_list, jql_quote

WIDENING = 'x" OR project = HR OR labels = "y'


def search_keys(emu, jql):
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    return sorted(issue["key"] for issue in JiraCloudHook("jira_jql").get_conn().search_issues(jql, fields=["summary"]))


@pytest.fixture
def two_projects(jira_emulator, monkeypatch):
    emu = jira_emulator
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_JQL", emu.connection_json("basic"))
    emu.seed_issues("ENG", 2, labels=[("x",)])
    emu.seed_issues("HR", 3, labels=[("salary",)])
    return emu


def test_a_value_from_outside_placed_raw_widens_the_query(two_projects):
    """Why the helper exists: the emulator's JQL reads the raw value as more query."""
    keys = search_keys(two_projects, f'project = ENG AND labels = "{WIDENING}"')
    assert any(key.startswith("HR-") for key in keys)


def test_a_quoted_value_is_one_string_and_matches_only_that_label(two_projects):
    assert search_keys(two_projects, f"project = ENG AND labels = {jql_quote(WIDENING)}") == []
    assert search_keys(two_projects, f"project = ENG AND labels = {jql_quote('x')}") == ["ENG-1", "ENG-2"]


def test_a_quoted_list_matches_exactly_its_members(two_projects):
    assert search_keys(two_projects, f"key in {jql_list(['ENG-2', 'HR-1'])}") == ["ENG-2", "HR-1"]


@pytest.mark.parametrize(
    ("value", "literal"),
    [("plain", '"plain"'), ('say "hi"', '"say \\"hi\\""'), ("back\\slash", '"back\\\\slash"'), (42, '"42"')],
)
def test_quotes_and_backslashes_are_escaped(value, literal):
    assert jql_quote(value) == literal


@pytest.mark.parametrize("value", ["two\nlines", "tab\there", "nul\x00"])
def test_control_characters_are_refused(value):
    with pytest.raises(ValueError, match="control characters"):
        jql_quote(value)


def test_an_empty_list_is_refused_rather_than_sent_as_a_syntax_error():
    with pytest.raises(ValueError, match="at least one value"):
        jql_list([])
