"""Which site a grant's access token is for: accessible-resources and ``pick_site``."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient, pick_site
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraOAuthError
from airflow_provider_jira_auth.testing import JiraCloudEmulator


@pytest.fixture
def resources(emu: JiraCloudEmulator, token_client: OAuthTokenClient, initial: TokenState) -> list[dict]:
    emu.add_site("marketing")
    emu.add_site("support")
    state = token_client.refresh(initial)
    return token_client.accessible_resources(state.access_token, emu.api_url)


def test_accessible_resources_lists_every_site_of_the_grant(emu: JiraCloudEmulator, resources: list[dict]) -> None:
    assert {entry["url"] for entry in resources} == {site.url for site in emu.sites}


def test_pick_site_matches_the_configured_site_among_several(emu: JiraCloudEmulator, resources: list[dict]) -> None:
    support = next(site for site in emu.sites if site.name == "support")

    assert pick_site(resources, support.url)["id"] == support.cloud_id


def test_pick_site_takes_the_jira_entry_when_confluence_shares_the_id(
    emu: JiraCloudEmulator, resources: list[dict]
) -> None:
    same_id = [entry for entry in resources if entry["id"] == emu.cloud_id]
    assert len(same_id) == 2 and not any("jira" in s for s in resources[0]["scopes"])  # the trap comes first

    site = pick_site(resources, emu.site_url)

    assert site["id"] == emu.cloud_id
    assert "read:jira-work" in site["scopes"]


def test_pick_site_ignores_case_and_trailing_slash(emu: JiraCloudEmulator, resources: list[dict]) -> None:
    assert pick_site(resources, emu.site_url.upper() + "/")["id"] == emu.cloud_id


def test_pick_site_without_a_match_lists_the_sites_the_grant_covers(
    emu: JiraCloudEmulator, resources: list[dict]
) -> None:
    with pytest.raises(JiraOAuthError, match="does not cover the site https://other.atlassian.net") as caught:
        pick_site(resources, "https://other.atlassian.net")

    for site in emu.sites:
        assert f"{site.name} ({site.url}, cloud id {site.cloud_id}, Jira)" in str(caught.value)


def test_pick_site_with_only_a_confluence_entry_asks_for_jira_scopes() -> None:
    resources = [
        {"id": "c1", "name": "wiki", "url": "https://acme.atlassian.net", "scopes": ["read:confluence-content.all"]}
    ]

    with pytest.raises(JiraOAuthError, match="without Jira scopes"):
        pick_site(resources, "https://acme.atlassian.net")


def test_accessible_resources_with_a_dead_access_token_asks_for_consent(
    emu: JiraCloudEmulator, token_client: OAuthTokenClient
) -> None:
    with pytest.raises(JiraOAuthError, match="HTTP 401.*airflow-jira-auth authorize"):
        token_client.accessible_resources("at-not-a-token", emu.api_url)
