"""The client side of history: paged per-issue reads, bulk changelogs, and completion a chunk at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_jira_auth.auth.basic import JiraBasicAuth
from airflow_provider_jira_auth.client import JiraClient, site_rest_url
from airflow_provider_jira_auth.client.history import complete_history
from airflow_provider_jira_auth.client.retry import RetryPolicy
from airflow_provider_jira_auth.testing import JiraCloudEmulator


@pytest.fixture
def emu() -> Iterator[JiraCloudEmulator]:
    with JiraCloudEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: JiraCloudEmulator) -> Iterator[JiraClient]:
    user = emu.default_user
    with JiraClient(site_rest_url(emu.url), JiraBasicAuth(user.email, user.api_token), timeout=10) as jira:
        yield jira


def _calls(emu: JiraCloudEmulator, suffix: str) -> int:
    return sum(1 for r in emu.requests if r.path.endswith(suffix))


def test_issue_changelog_pages_through_every_entry_oldest_first(emu: JiraCloudEmulator, client: JiraClient) -> None:
    emu.seed_issues(count=1)
    ids = emu.add_changelog("ENG-1", 250)
    emu.reset_requests()

    entries = list(client.issue_changelog("ENG-1"))

    assert [e["id"] for e in entries] == ids
    assert _calls(emu, "/issue/ENG-1/changelog") == 3


def test_issue_comments_pages_through_every_comment(emu: JiraCloudEmulator, client: JiraClient) -> None:
    emu.seed_issues(count=1)
    ids = emu.add_comments("ENG-1", 120)
    emu.reset_requests()

    assert [c["id"] for c in client.issue_comments("ENG-1", page_size=50)] == ids
    assert _calls(emu, "/issue/ENG-1/comment") == 3


def test_bulk_changelogs_follows_next_page_tokens_and_groups_by_issue(
    emu: JiraCloudEmulator, client: JiraClient
) -> None:
    keys = emu.seed_issues(count=3)
    first, second = emu.add_changelog(keys[0], 1500), emu.add_changelog(keys[2], 7)
    emu.reset_requests()

    found = client.bulk_changelogs(keys)

    by_key = {emu.get_issue(k)["id"]: k for k in keys}
    assert {by_key[i]: [e["id"] for e in entries] for i, entries in found.items()} == {keys[0]: first, keys[2]: second}
    assert _calls(emu, "/changelog/bulkfetch") == 2  # 1507 entries, 1000 a page


def test_completion_is_lazy_a_chunk_at_a_time(emu: JiraCloudEmulator, client: JiraClient) -> None:
    """The first issue comes out after one chunk was completed, before the search read further."""
    keys = emu.seed_issues(count=250)
    emu.add_changelog(keys[0], 45)
    emu.reset_requests()

    stream = complete_history(client, client.search_issues("project = ENG ORDER BY key", fields=["comment"]), chunk_size=100)
    first = next(stream)

    assert first["key"] == keys[0] and len(first["changelog"]["histories"]) == 45
    assert _calls(emu, "/search/jql") == 1
    assert _calls(emu, "/changelog/bulkfetch") == 1
    assert len(list(stream)) == 249
    assert _calls(emu, "/changelog/bulkfetch") == 3


def test_bad_chunk_size_is_refused_naming_it(client: JiraClient) -> None:
    with pytest.raises(ValueError, match="chunk_size must be between 1 and 1000"):
        complete_history(client, [], chunk_size=0)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_changelog_bulkfetch_only_reads_so_a_gateway_error_is_retried(
    emu: JiraCloudEmulator, status: int
) -> None:
    keys = emu.seed_issues(count=2)
    ids = emu.add_changelog(keys[1], 3)
    emu.fail_next("POST", r"/changelog/bulkfetch$", status=status)
    user = emu.default_user
    policy = RetryPolicy(backoff_initial=0.01, sleep=lambda _: None)
    with JiraClient(site_rest_url(emu.url), JiraBasicAuth(user.email, user.api_token), retry=policy) as jira:
        found = jira.bulk_changelogs(keys)

    assert [entry["id"] for entries in found.values() for entry in entries] == ids
    assert _calls(emu, "/changelog/bulkfetch") == 2
