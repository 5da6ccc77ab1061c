"""``search_issues(parallelism=N)``: ids listed, then fetched N bulkfetch calls at a time, against the
emulator over real HTTP. The same issues in the same order as the plain stream, a bounded number of
pages in flight, failed pages retried alone, a page that finally fails named by its range, ids gone
between listing and fetch left out and reported."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from airflow_provider_jira_auth.auth.basic import JiraBasicAuth
from airflow_provider_jira_auth.client import JiraClient, JiraSearchPageError, JiraServerError, RetryPolicy, site_rest_url
from airflow_provider_jira_auth.client import parallel_search
from airflow_provider_jira_auth.client.parallel_search import MAX_PARALLELISM, ParallelSearch, window_for
from airflow_provider_jira_auth.testing import JiraCloudEmulator

FIELDS = ["summary", "status", "labels"]
# Not the ascending id order bulkfetch answers in: the client must put each page back in order.
JQL = "project = ENG ORDER BY key DESC"
BULKFETCH = "/rest/api/3/issue/bulkfetch"
SEARCH = "/rest/api/3/search/jql"


@pytest.fixture(scope="module")
def seeded() -> Iterator[JiraCloudEmulator]:
    """250 issues, shared by the tests that only read (do not change its issues or faults)."""
    with JiraCloudEmulator() as emu:
        emu.seed_issues(count=250)
        yield emu


@pytest.fixture
def emu() -> Iterator[JiraCloudEmulator]:
    with JiraCloudEmulator() as emulator:
        yield emulator


def connect(emu: JiraCloudEmulator, policy: RetryPolicy | None = None) -> JiraClient:
    user = emu.default_user
    return JiraClient(site_rest_url(emu.url), JiraBasicAuth(user.email, user.api_token), retry=policy, timeout=10)


def keys(issues) -> list[str]:
    return [issue["key"] for issue in issues]


def fetch_bodies(emu: JiraCloudEmulator) -> list[list[str]]:
    return [r.body["issueIdsOrKeys"] for r in emu.requests if r.path == BULKFETCH]


# -- the same issues, in the same order -------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 7, 100])
@pytest.mark.parametrize("parallelism", [2, 3, 8])
def test_the_issues_and_their_order_are_those_of_the_plain_stream(
    seeded: JiraCloudEmulator, page_size: int, parallelism: int
) -> None:
    with connect(seeded) as client:
        plain = list(client.search_issues(JQL, fields=FIELDS, page_size=page_size))
        seeded.reset_requests()

        parallel = list(client.search_issues(JQL, fields=FIELDS, page_size=page_size, parallelism=parallelism))

    assert len(plain) == 250 and keys(plain)[:2] == ["ENG-250", "ENG-249"]
    assert parallel == plain  # whole issues, fields included, in JQL order
    bodies = fetch_bodies(seeded)
    expected = [page_size] * (250 // page_size) + ([250 % page_size] if 250 % page_size else [])
    assert sorted(len(b) for b in bodies) == sorted(expected)  # pages arrive in any order
    assert sorted(i for b in bodies for i in b) == sorted(i["id"] for i in plain)  # each id asked for once


def test_the_listing_asks_for_ids_only_5000_a_page_and_in_the_queries_order(emu: JiraCloudEmulator) -> None:
    emu.seed_issues(count=30)
    with connect(emu) as client:
        list(client.search_issues("project = ENG ORDER BY summary", fields=FIELDS, page_size=10, parallelism=2))

    listing = [r.body for r in emu.requests if r.path == SEARCH]
    assert listing == [{"jql": "project = ENG ORDER BY summary", "fields": ["id"], "maxResults": 5000}]
    fetches = [r.body for r in emu.requests if r.path == BULKFETCH]
    assert len(fetches) == 3 and all(set(b) == {"issueIdsOrKeys", "fields"} and b["fields"] == FIELDS for b in fetches)


def test_a_listing_of_several_pages_is_followed_by_its_tokens(
    seeded: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel_search, "LISTING_PAGE_SIZE", 40)  # 7 listing pages instead of 5,000 issues
    with connect(seeded) as client:
        plain = list(client.search_issues(JQL, fields=FIELDS, page_size=30))
        seeded.reset_requests()

        parallel = list(client.search_issues(JQL, fields=FIELDS, page_size=30, parallelism=3))

    assert parallel == plain
    listing = [r.body for r in seeded.requests if r.path == SEARCH]
    assert len(listing) == 7 and all(b["maxResults"] == 40 for b in listing)
    assert [b.get("nextPageToken") is None for b in listing] == [True] + [False] * 6
    assert len({b.get("nextPageToken") for b in listing}) == 7


def test_max_results_stops_after_that_many_issues(seeded: JiraCloudEmulator) -> None:
    with connect(seeded) as client:
        plain = list(client.search_issues(JQL, fields=FIELDS, max_results=37))
        seeded.reset_requests()

        parallel = list(client.search_issues(JQL, fields=FIELDS, page_size=10, max_results=37, parallelism=4))

    assert parallel == plain and len(parallel) == 37
    assert [r.body["maxResults"] for r in seeded.requests if r.path == SEARCH] == [37]
    assert sorted(len(b) for b in fetch_bodies(seeded)) == [7, 10, 10, 10]


def test_expand_is_sent_to_bulkfetch_as_a_list(emu: JiraCloudEmulator) -> None:
    emu.seed_issues(count=3)
    with connect(emu) as client:
        list(client.search_issues(JQL, fields=["summary"], expand="names, changelog", parallelism=2))

    assert [r.body.get("expand") for r in emu.requests if r.path == BULKFETCH] == [["names", "changelog"]]


def test_parallelism_1_and_id_only_searches_are_the_plain_stream(seeded: JiraCloudEmulator) -> None:
    with connect(seeded) as client:
        one = client.search_issues(JQL, fields=FIELDS, parallelism=1)
        ids_only = client.search_issues(JQL, parallelism=4)

        assert not isinstance(one, ParallelSearch) and not isinstance(ids_only, ParallelSearch)
        seeded.reset_requests()
        assert len(list(one)) == 250 and len(list(ids_only)) == 250

    assert {r.path for r in seeded.requests} == {SEARCH}


@pytest.mark.parametrize("bad", [0, -1, MAX_PARALLELISM + 1, "4", 2.0, True, None])
def test_a_parallelism_out_of_range_is_refused_at_call_time(emu: JiraCloudEmulator, bad) -> None:
    with connect(emu) as client, pytest.raises(ValueError, match="parallelism"):
        client.search_issues(JQL, fields=FIELDS, parallelism=bad)

    assert emu.requests == []


def test_nothing_is_sent_before_the_first_issue_is_asked_for(seeded: JiraCloudEmulator) -> None:
    seeded.reset_requests()
    with connect(seeded) as client:
        threads = set(threading.enumerate())
        issues = client.search_issues(JQL, fields=FIELDS, parallelism=4)
        # Nothing sent, and no thread started that could send later.
        assert seeded.requests == [] and set(threading.enumerate()) <= threads
        assert next(issues)["key"] == "ENG-250"
        issues.close()


# -- bounded -----------------------------------------------------------------------------------------


def test_at_most_parallelism_calls_are_in_flight_at_once(emu: JiraCloudEmulator) -> None:
    emu.seed_issues(count=240)
    emu.set_answer_delays(0.02, 0.0005)
    with connect(emu) as client:
        emu.reset_stats()

        found = list(client.search_issues(JQL, fields=FIELDS, page_size=10, parallelism=3))

    assert len(found) == 240
    assert emu.stats.peak_concurrent_calls == 3  # all threads busy, never more


def test_the_listing_of_the_next_ids_is_the_one_call_beyond_the_threads(
    emu: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel_search, "LISTING_PAGE_SIZE", 50)
    emu.seed_issues(count=300)
    emu.set_answer_delays(0.03, 0.0002)
    with connect(emu) as client:
        emu.reset_stats()

        found = list(client.search_issues(JQL, fields=FIELDS, page_size=10, parallelism=3))

    assert len(found) == 300
    assert emu.stats.peak_concurrent_calls <= 3 + 1


def test_pages_are_only_asked_for_as_the_caller_consumes_them(emu: JiraCloudEmulator) -> None:
    emu.seed_issues(count=400)
    with connect(emu) as client:
        issues = client.search_issues(JQL, fields=FIELDS, page_size=10, parallelism=3)
        next(issues)
        time.sleep(0.5)  # ample for 40 pages, were they all sent

        asked = len(fetch_bodies(emu))
        rest = list(issues)

    # The window of queued or in-flight pages (2 x parallelism), plus the one refilled when the
    # first was taken.
    assert asked <= 2 * 3 + 1 and window_for(3) == 2 * 3
    assert len(rest) == 399 and len(fetch_bodies(emu)) == 40


# -- failures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["503", "dropped"])
def test_a_page_that_fails_transiently_is_retried_alone_and_nothing_is_lost_or_doubled(
    emu: JiraCloudEmulator, policy: RetryPolicy, sleeps: list[float], how: str
) -> None:
    emu.seed_issues(count=100)
    with connect(emu, policy) as client:
        plain = list(client.search_issues(JQL, fields=FIELDS))
        emu.reset_requests()
        emu.fail_next("POST", r"/issue/bulkfetch$", status=503, drop=how == "dropped")

        parallel = list(client.search_issues(JQL, fields=FIELDS, page_size=10, parallelism=4))

    assert parallel == plain
    bodies = fetch_bodies(emu)
    assert len(bodies) == 11  # ten pages, one of them twice
    failed = next(r.body["issueIdsOrKeys"] for r in emu.requests if r.path == BULKFETCH and r.status != 200)
    assert [b for b in bodies if b == failed] == [failed, failed]
    assert len(sleeps) == 1  # that one page waited, as the retry policy says


def test_ids_jira_could_not_return_this_time_are_asked_for_again(
    emu: JiraCloudEmulator, policy: RetryPolicy, sleeps: list[float]
) -> None:
    emu.seed_issues(count=30)
    emu.fail_bulkfetch_of("ENG-17", times=2)
    with connect(emu, policy) as client:
        found = list(client.search_issues("project = ENG ORDER BY key", fields=FIELDS, page_size=10, parallelism=2))

    assert keys(found) == [f"ENG-{n}" for n in range(1, 31)]
    assert fetch_bodies(emu).count(["10017"]) == 2 and len(fetch_bodies(emu)) == 5
    assert len(sleeps) == 2


def test_a_page_whose_issues_jira_never_returns_fails_the_search_naming_its_range(
    emu: JiraCloudEmulator, policy: RetryPolicy
) -> None:
    emu.seed_issues(count=60)
    emu.fail_bulkfetch_of("ENG-25", times=100)
    got: list[str] = []
    with connect(emu, policy) as client, pytest.raises(JiraSearchPageError) as raised:
        for issue in client.search_issues("project = ENG ORDER BY key", fields=FIELDS, page_size=10, parallelism=3):
            got.append(issue["key"])

    error = raised.value
    assert "issues 21-30 (ids 10021..10030)" in str(error) and "10025" in str(error)
    assert (error.start, error.end) == (21, 30) and error.ids[0] == "10021"
    assert got == [f"ENG-{n}" for n in range(1, 21)]  # the pages before it, none after
    assert fetch_bodies(emu).count(["10025"]) == policy.max_attempts - 1


def test_a_page_that_still_fails_after_its_retries_raises_with_its_range_and_the_cause(
    emu: JiraCloudEmulator, policy: RetryPolicy
) -> None:
    emu.seed_issues(count=20)
    emu.fail_next("POST", r"/issue/bulkfetch$", status=503, times=1000)
    with connect(emu, policy) as client, pytest.raises(JiraSearchPageError) as raised:
        list(client.search_issues("project = ENG ORDER BY key", fields=FIELDS, page_size=10, parallelism=2))

    message = str(raised.value)
    assert "fetching issues 1-10 (ids 10001..10010)" in message and "HTTP 503" in message
    assert isinstance(raised.value.__cause__, JiraServerError) and raised.value.cause is raised.value.__cause__


def test_a_listing_page_that_fails_raises_naming_where_the_listing_was(emu: JiraCloudEmulator, policy) -> None:
    emu.seed_issues(count=5)
    emu.fail_next("POST", r"/search/jql$", status=500)
    with connect(emu, policy) as client, pytest.raises(JiraSearchPageError, match=r"listing the ids of issues 1\.\."):
        list(client.search_issues(JQL, fields=FIELDS, parallelism=2))


def test_an_issue_deleted_between_listing_and_fetch_is_left_out_and_reported(
    emu: JiraCloudEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.seed_issues(count=300)
    gone_id = emu.get_issue("ENG-250")["id"]
    with connect(emu) as client:
        issues = client.search_issues("project = ENG ORDER BY key", fields=FIELDS, page_size=10, parallelism=2)
        first = next(issues)  # listed all 300; pages up to issue 50 asked for at most
        emu.delete_issue("ENG-250")
        with caplog.at_level(logging.WARNING, logger="airflow_provider_jira_auth.client.parallel_search"):
            rest = list(issues)

    assert keys([first, *rest]) == [f"ENG-{n}" for n in range(1, 301) if n != 250]
    assert issues.vanished == [gone_id]
    warning = next(r.getMessage() for r in caplog.records if "gone since they were listed" in r.getMessage())
    assert gone_id in warning and "issues 241-250" in warning


def test_an_id_jira_lists_twice_while_the_result_changes_is_yielded_once(
    emu: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(parallel_search, "LISTING_PAGE_SIZE", 40)
    emu.seed_issues(count=100)
    with connect(emu) as client:
        issues = client.search_issues(JQL, fields=FIELDS, page_size=10, parallelism=2)
        first = next(issues)  # the first listing pages (40 ids each) are read
        emu.seed_issues(count=1)  # ENG-101 sorts first: every later position moves back by one
        for _ in range(40):  # push the paged search out of Jira's (the emulator's) result cache
            client.request("POST", "search/approximate-count", json={"jql": "project = ENG"})
            list(client.search_issues("project = ENG", max_results=1))
        with caplog.at_level(logging.WARNING, logger="airflow_provider_jira_auth.client.parallel_search"):
            rest = list(issues)

    assert keys([first, *rest]) == [f"ENG-{n}" for n in range(100, 0, -1)]
    # The last id of the page read before the change comes again first on the next page.
    (relisted_id,) = issues.relisted
    assert int(relisted_id) - 10000 in (61, 21)
    assert any(relisted_id in r.getMessage() and "a second time" in r.getMessage() for r in caplog.records)
