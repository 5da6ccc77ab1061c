"""A pacer lives as long as its process (a triggerer, a worker): what it remembers stays bounded.

Narrow unit tests on a virtual clock; tests/pacing/test_pacing.py shows the pacing itself over
real HTTP.
"""

from __future__ import annotations

from airflow_provider_jira_auth.client.pacing import PER_ISSUE_REASON, SitePacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_long_lived_pacer_remembers_only_the_issues_written_in_the_last_window() -> None:
    clock = Clock()
    pacer = SitePacer("https://example.invalid/rest/api/3", clock=clock)

    for n in range(20_000):  # a write a second to a new issue each time, for five and a half hours
        assert pacer.reserve("PUT", f"issue/ENG-{n}") == 0
        clock.now += 1.0

    assert len(pacer._issue_writes) <= 31  # the last 30 s: Jira's longest per-issue window


def test_a_per_issue_hold_is_forgotten_once_it_has_ended() -> None:
    clock = Clock()
    pacer = SitePacer("https://example.invalid/rest/api/3", clock=clock)
    refused = {"RateLimit-Reason": PER_ISSUE_REASON, "Retry-After": "5"}

    for n in range(1_000):
        pacer.observe("PUT", f"issue/ENG-{n}", 429, refused)
        clock.now += 1.0

    assert len(pacer._issue_held) <= 6  # the holds of the last 5 s
    pacer.observe("PUT", "issue/ENG-5000", 429, refused)
    assert pacer.reserve("PUT", "issue/ENG-5000") == 5.0  # a live hold still holds


def test_the_write_windows_still_space_one_issue_among_many() -> None:
    clock = Clock()
    pacer = SitePacer("https://example.invalid/rest/api/3", clock=clock)
    waits = []
    for n in range(21):
        pacer.reserve("PUT", f"issue/ENG-{1000 + n}")  # others, interleaved
        waits.append(pacer.reserve("PUT", "issue/ENG-1"))

    assert waits[:20] == [0.0] * 20
    assert waits[20] == 2.0  # the 21st write to ENG-1 waits for the first to leave its 2 s window
