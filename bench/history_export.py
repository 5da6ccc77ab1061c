#!/usr/bin/env python
"""What completing issues' history costs: ``complete_history`` against per-issue paging.

    python bench/history_export.py [--issues 300] [--changes 60] [--comments 30] [--latency 0.05]

The emulator holds ``--issues`` issues, each with ``--changes`` changelog entries and
``--comments`` comments (more than a search embeds: 40 entries, 20 comments), and answers each
call ``--latency`` seconds late, as Jira Cloud does. Two ways to export them with all history:

* ``per-issue``: search, then for every issue ``GET issue/{key}/changelog`` and
  ``GET issue/{key}/comment`` page by page (what a plain client does);
* ``complete_history``: search with the ``comment`` field, then ``changelog/bulkfetch`` for 100
  issues at a time and comment pages only for issues with more than the search embedded.

Prints, for each: REST calls, seconds, issues/s, peak traced memory (tracemalloc) while
streaming, and the ratios; and checks both exports carry the same entries and comments.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from airflow_provider_jira_auth.auth.basic import JiraBasicAuth
from airflow_provider_jira_auth.client import JiraClient, site_rest_url
from airflow_provider_jira_auth.client.history import complete_history, with_comment_field
from airflow_provider_jira_auth.testing import JiraCloudEmulator

JQL = "project = ENG ORDER BY key"


def per_issue(client: JiraClient) -> Iterator[dict[str, Any]]:
    for issue in client.search_issues(JQL, fields=["summary", "status"]):
        key = issue["key"]
        issue["changelog"] = {"histories": list(client.issue_changelog(key))}
        issue["fields"]["comment"] = {"comments": list(client.issue_comments(key))}
        yield issue


def bulk(client: JiraClient) -> Iterator[dict[str, Any]]:
    return complete_history(client, client.search_issues(JQL, fields=with_comment_field(["summary", "status"])))


def measure(emu: JiraCloudEmulator, client: JiraClient, run: Callable[[JiraClient], Iterator[dict[str, Any]]]):
    emu.reset_requests()
    tracemalloc.start()
    started = time.perf_counter()
    digest = []
    for issue in run(client):
        digest.append(
            (issue["key"], len(issue["changelog"]["histories"]), len(issue["fields"]["comment"]["comments"]))
        )
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    calls = sum(1 for r in emu.requests if "/rest/api/3/" in r.path)
    return calls, seconds, peak, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--issues", type=int, default=300)
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--comments", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds each answer is late")
    args = parser.parse_args()

    with JiraCloudEmulator() as emu:
        keys = emu.seed_issues(project="ENG", count=args.issues)
        for key in keys:
            emu.add_changelog(key, args.changes)
            emu.add_comments(key, args.comments)
        emu.set_answer_delays(args.latency)
        user = emu.default_user
        with JiraClient(site_rest_url(emu.url), JiraBasicAuth(user.email, user.api_token), timeout=30) as client:
            results = {name: measure(emu, client, run) for name, run in (("per-issue", per_issue), ("complete_history", bulk))}

    print(
        f"{args.issues} issues, {args.changes} changelog entries and {args.comments} comments each, "
        f"{args.latency:.3f} s an answer"
    )
    print(f"{'way':<18}{'calls':>8}{'seconds':>10}{'issues/s':>10}{'peak MB':>10}")
    for name, (calls, seconds, peak, _) in results.items():
        print(f"{name:<18}{calls:>8}{seconds:>10.2f}{args.issues / seconds:>10.1f}{peak / 1e6:>10.2f}")
    (c1, s1, m1, d1), (c2, s2, m2, d2) = results["per-issue"], results["complete_history"]
    print(f"complete_history vs per-issue: {c1 / c2:.2f}x fewer calls, {s1 / s2:.2f}x faster, memory {m2 / m1:.2f}x")
    print("same history in both exports:", "yes" if d1 == d2 else "NO")


if __name__ == "__main__":
    main()
