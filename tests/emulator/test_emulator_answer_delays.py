"""The emulator's answer delays (latency like Jira Cloud's), its bulkfetch as Atlassian's spec
describes it, deleted issues, and the count of calls served at once: over real HTTP."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator

API = "/rest/api/3"
SCOPE_MISMATCH = {"code": 401, "message": "Unauthorized; scope does not match"}


def auth(emu: JiraCloudEmulator) -> tuple[str, str]:
    return emu.default_user.email, emu.default_user.api_token


def post(http: requests.Session, emu: JiraCloudEmulator, path: str, body: dict) -> requests.Response:
    return http.post(f"{emu.url}{API}{path}", json=body, auth=auth(emu), timeout=10)


def timed(call) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def delays(emu: JiraCloudEmulator) -> list[float]:
    """The delay each answer was given, in the order the requests came."""
    return [r.delay for r in emu.requests]


# -- answer delays ------------------------------------------------------------------------------------


def test_without_answer_delays_a_search_page_comes_back_at_once(emu, http) -> None:
    emu.seed_issues(count=100)

    response = post(http, emu, "/search/jql", {"jql": "project = ENG", "fields": ["summary"]})

    assert response.status_code == 200 and not emu.answer_delays.active
    assert delays(emu) == [0.0]


def test_a_page_of_issues_is_late_by_the_call_latency_plus_the_cost_of_each_issue(emu, http) -> None:
    emu.seed_issues(count=50)
    emu.set_answer_delays(0.1, 0.004)
    body = {"jql": "project = ENG", "fields": ["summary"], "maxResults": 50}

    response, seconds = timed(lambda: post(http, emu, "/search/jql", body))
    post(http, emu, "/search/jql", {**body, "maxResults": 1})

    assert len(response.json()["issues"]) == 50
    assert delays(emu) == pytest.approx([0.1 + 50 * 0.004, 0.1 + 1 * 0.004])
    assert seconds >= 0.3  # the delay is real: the answer cannot come sooner than that


def test_ids_listed_without_fields_are_charged_the_per_id_cost_not_the_per_issue_one(emu, http) -> None:
    emu.seed_issues(count=200)
    emu.set_answer_delays(0.05, 0.01, per_id=0.0)

    response = post(http, emu, "/search/jql", {"jql": "project = ENG", "fields": ["id"], "maxResults": 200})

    assert len(response.json()["issues"]) == 200
    assert delays(emu) == pytest.approx([0.05])  # not 2 s more: 200 x 0.01


def test_a_bulkfetch_is_charged_per_issue_returned(emu, http) -> None:
    emu.seed_issues(count=40)
    emu.set_answer_delays(0.0, 0.01)

    response = post(http, emu, "/issue/bulkfetch", {"issueIdsOrKeys": [f"ENG-{n}" for n in range(1, 41)]})

    assert len(response.json()["issues"]) == 40
    assert delays(emu) == pytest.approx([40 * 0.01])


def test_delayed_calls_sent_side_by_side_wait_side_by_side_and_are_counted_as_concurrent(emu) -> None:
    emu.set_answer_delays(0.3)
    # Each answer waits out its delay at a meeting of all four: were delayed answers served one
    # after the other (say, under the emulator's lock), the first would wait there alone until
    # the barrier's timeout broke it, and every call would get a 500.
    meeting = threading.Barrier(4, timeout=30)
    emu.sleep = lambda seconds: meeting.wait()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            requests.get(f"{emu.url}{API}/myself", auth=auth(emu), timeout=60).raise_for_status()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert delays(emu) == pytest.approx([0.3] * 4)
    assert emu.stats.peak_concurrent_calls == 4
    emu.reset_stats()
    assert emu.stats.peak_concurrent_calls == 0


def test_negative_answer_delays_are_refused(emu) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        emu.set_answer_delays(-0.1)


def test_the_command_line_sets_answer_delays() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_jira_auth.testing",
            "--issues",
            "3",
            "--answer-delay",
            "0.2",
            "--per-issue-delay",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line.rstrip("\n"))
        url = re.search(r"running at (\S+)", lines[0]).group(1)
        email = re.search(r"user:\s+(\S+)", "\n".join(lines)).group(1)
        token = re.search(r"API token:\s+(\S+)", "\n".join(lines)).group(1)

        response, seconds = timed(
            lambda: requests.post(
                f"{url}{API}/search/jql",
                json={"jql": "project = ENG", "fields": ["summary"]},
                auth=(email, token),
                timeout=10,
            )
        )

        assert len(response.json()["issues"]) == 3
        assert "answers delayed 0.2 s a call + 0.01 s an issue" in "\n".join(lines)
        # The emulator runs in another process: its answer is seen late, no sooner than 0.2 + 3 x 0.01.
        assert seconds >= 0.23
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- bulkfetch as the spec has it -----------------------------------------------------------------------


def test_bulkfetch_answers_in_ascending_id_order_whatever_order_was_asked(emu, http) -> None:
    emu.seed_issues(count=5)

    body = post(http, emu, "/issue/bulkfetch", {"issueIdsOrKeys": ["ENG-4", "10002", "eng-5", "ENG-1"]}).json()

    assert [i["key"] for i in body["issues"]] == ["ENG-1", "ENG-2", "ENG-4", "ENG-5"]
    assert body["issueErrors"] == []
    # The default fields are the navigable ones.
    assert {"summary", "status", "labels"} <= set(body["issues"][0]["fields"])


def test_bulkfetch_takes_the_specs_optional_members_and_refuses_others(emu, http) -> None:
    emu.seed_issues(count=1)
    full = {"issueIdsOrKeys": ["ENG-1"], "fields": ["summary"], "expand": ["names"], "fieldsByKeys": False,
            "properties": []}

    assert post(http, emu, "/issue/bulkfetch", full).json()["issues"][0]["fields"] == {
        "summary": emu.get_issue("ENG-1")["fields"]["summary"]
    }
    refused = post(http, emu, "/issue/bulkfetch", {"issueIdsOrKeys": ["ENG-1"], "jql": "project = ENG"})
    assert refused.status_code == 400 and "jql" in refused.text
    wrong = post(http, emu, "/issue/bulkfetch", {"issueIdsOrKeys": ["ENG-1"], "expand": "names"})
    assert wrong.status_code == 400


def test_fail_bulkfetch_of_puts_the_issue_in_issue_errors_for_that_many_answers(emu, http) -> None:
    emu.seed_issues(count=3)
    emu.fail_bulkfetch_of("ENG-2", times=2)
    ask = {"issueIdsOrKeys": ["ENG-1", "ENG-2", "ENG-3"], "fields": ["summary"]}

    answers = [post(http, emu, "/issue/bulkfetch", ask).json() for _ in range(3)]

    assert [[i["key"] for i in a["issues"]] for a in answers] == [["ENG-1", "ENG-3"]] * 2 + [["ENG-1", "ENG-2", "ENG-3"]]
    assert [[e["id"] for e in a["issueErrors"]] for a in answers] == [["10002"], ["10002"], []]
    assert answers[0]["issueErrors"][0]["errorMessage"]


def test_bulkfetch_needs_read_jira_work_through_the_gateway(emu, http) -> None:
    emu.seed_issues(count=1)
    writer = emu.add_user("writer@example.com", scopes=["write:jira-work"])
    reader = emu.add_user("reader@example.com", scopes=["read:jira-work"])
    url = f"{emu.api_url}/ex/jira/{emu.cloud_id}{API}/issue/bulkfetch"

    refused = http.post(url, json={"issueIdsOrKeys": ["ENG-1"]}, auth=(writer.email, writer.api_token))
    allowed = http.post(url, json={"issueIdsOrKeys": ["ENG-1"]}, auth=(reader.email, reader.api_token))

    assert refused.status_code == 401 and refused.json() == SCOPE_MISMATCH
    assert [i["key"] for i in allowed.json()["issues"]] == ["ENG-1"]


def test_a_deleted_issue_is_gone_from_lookups_bulkfetch_and_new_searches(emu, http) -> None:
    emu.seed_issues(count=3)

    emu.delete_issue("ENG-2")

    assert http.get(f"{emu.url}{API}/issue/ENG-2", auth=auth(emu)).status_code == 404
    fetched = post(http, emu, "/issue/bulkfetch", {"issueIdsOrKeys": ["ENG-1", "ENG-2", "ENG-3"]}).json()
    assert [i["key"] for i in fetched["issues"]] == ["ENG-1", "ENG-3"] and fetched["issueErrors"] == []
    found = post(http, emu, "/search/jql", {"jql": "project = ENG ORDER BY key"}).json()
    assert [i["id"] for i in found["issues"]] == ["10001", "10003"]
    with pytest.raises(KeyError):
        emu.delete_issue("ENG-2")
