"""Bulk create (``issue/bulk``, 50 per call) and bulk fetch (``issue/bulkfetch``, 100 per call)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_jira_auth.client import JiraBulkError, JiraClient, JiraPermissionError, text_to_adf

from client_scripted_server import Recorded, Reply, ScriptedServer

_next_id = iter(range(10_000, 100_000))


def bulk_created(failed: dict[int, str] | None = None, status: int = 201) -> Any:
    """A reply creating every element of the request except ``failed`` (chunk position -> message)."""
    failed = failed or {}

    def reply(request: Recorded) -> Reply:
        count = len(request.json["issueUpdates"])
        issues = []
        for n in range(count):
            if n not in failed:
                issue_id = next(_next_id)
                issues.append(
                    {"id": str(issue_id), "key": f"ENG-{issue_id}", "self": f"https://x/rest/api/3/issue/{issue_id}"}
                )
        errors = [
            {
                "failedElementNumber": n,
                "status": 400,
                "elementErrors": {"errorMessages": [], "errors": {"summary": message}},
            }
            for n, message in failed.items()
        ]
        return Reply(status, {"issues": issues, "errors": errors})

    return reply


def fields(n: int) -> dict[str, Any]:
    return {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": f"issue {n}"}


def test_120_creates_are_sent_in_3_calls(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_created(), bulk_created(), bulk_created())

    result = client.create_issues(fields(n) for n in range(120))

    assert [len(r.json["issueUpdates"]) for r in server.requests] == [50, 50, 20]
    assert all(r.rest_path == "issue/bulk" for r in server.requests)
    assert result.ok
    assert [issue["index"] for issue in result.created] == list(range(120))
    assert server.requests[2].json["issueUpdates"][19] == {"fields": fields(119)}


def test_element_errors_are_indexed_across_chunks(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_created({3: "too long"}), bulk_created({0: "required", 19: "bad"}), bulk_created())

    result = client.create_issues((fields(n) for n in range(120)), raise_on_error=False)

    assert [e.index for e in result.errors] == [3, 50, 69]
    assert result.errors[1].errors == {"summary": "required"}
    assert result.errors[1].status == 400
    assert "summary: required" in result.errors[1].message
    created = [issue["index"] for issue in result.created]
    assert len(created) == 117 and {3, 50, 69}.isdisjoint(created)
    assert created[:4] == [0, 1, 2, 4]


def test_element_errors_raise_bulk_error_with_the_result(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_created({1: "required"}))

    with pytest.raises(JiraBulkError) as caught:
        client.create_issues([fields(0), fields(1), fields(2)])

    assert [e.index for e in caught.value.result.errors] == [1]
    assert [i["index"] for i in caught.value.result.created] == [0, 2]
    assert "#1: summary: required" in str(caught.value)


def test_chunk_where_every_element_fails_is_reported_per_element(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_created({0: "required", 1: "required"}, status=400))

    result = client.create_issues([fields(0), fields(1)], raise_on_error=False)

    assert result.created == []
    assert [e.index for e in result.errors] == [0, 1]


def test_failed_request_after_created_chunks_reports_the_rest_as_errors(
    client: JiraClient, server: ScriptedServer
) -> None:
    server.queue(bulk_created(), Reply(403, {"errorMessages": ["no"]}))

    with pytest.raises(JiraBulkError) as caught:
        client.create_issues(fields(n) for n in range(120))

    result = caught.value.result
    assert len(result.created) == 50
    assert [e.index for e in result.errors] == list(range(50, 120))
    assert result.errors[0].status == 403
    assert "not sent" in result.errors[-1].message
    assert isinstance(caught.value.__cause__, JiraPermissionError)
    assert len(server.requests) == 2


def test_lost_answer_after_created_chunks_is_reported_as_outcome_unknown(
    client: JiraClient, server: ScriptedServer
) -> None:
    server.queue(bulk_created(), Reply(drop=True))

    with pytest.raises(JiraBulkError) as caught:
        client.create_issues(fields(n) for n in range(100))

    errors = caught.value.result.errors
    assert [e.index for e in errors] == list(range(50, 100))
    assert errors[0].status is None and "outcome unknown" in errors[0].message
    assert len(server.requests) == 2


def test_failed_first_request_raises_its_own_error(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(403, {"errorMessages": ["no"]}))

    with pytest.raises(JiraPermissionError):
        client.create_issues(fields(n) for n in range(120))


def test_items_with_fields_and_update_are_sent_as_given(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_created())
    item = {"fields": fields(0), "update": {"labels": [{"add": "etl"}]}}

    client.create_issues([item])

    assert server.requests[0].json["issueUpdates"] == [item]


def test_plain_text_description_is_sent_as_adf(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_created())

    client.create_issues([{**fields(0), "description": "line one\nline two"}])

    sent = server.requests[0].json["issueUpdates"][0]["fields"]["description"]
    assert sent == text_to_adf("line one\nline two")


def test_no_issues_sends_nothing(client: JiraClient, server: ScriptedServer) -> None:
    result = client.create_issues([])

    assert result.ok and result.created == []
    assert server.requests == []


def bulk_fetched(request: Recorded) -> Reply:
    """Returns every requested key except those containing "404"; keys containing "ERR" come as issueErrors."""
    keys = request.json["issueIdsOrKeys"]
    issues = [{"id": str(1000 + n), "key": key} for n, key in enumerate(keys) if "404" not in key and "ERR" not in key]
    errors = [{"id": key, "errorMessage": "try again"} for key in keys if "ERR" in key]
    return Reply(200, {"issues": issues, "issueErrors": errors})


def test_bulk_fetch_is_chunked_by_100(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_fetched, bulk_fetched, bulk_fetched)
    keys = [f"ENG-{n}" for n in range(250)]

    issues = list(client.bulk_fetch(keys, fields=["summary"]))

    assert [i["key"] for i in issues] == keys
    assert [len(r.json["issueIdsOrKeys"]) for r in server.requests] == [100, 100, 50]
    assert all(r.rest_path == "issue/bulkfetch" and r.json["fields"] == ["summary"] for r in server.requests)


def test_bulk_fetch_is_lazy(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_fetched, bulk_fetched)

    issues = client.bulk_fetch(f"ENG-{n}" for n in range(150))
    assert server.requests == []
    for _ in range(100):
        next(issues)
    assert len(server.requests) == 1


def test_bulk_fetch_collects_missing_keys_and_issue_errors(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(bulk_fetched)

    fetched = client.bulk_fetch(["ENG-1", "ENG-404", "ENG-ERR", "eng-2"])
    issues = list(fetched)

    assert [i["key"] for i in issues] == ["ENG-1", "eng-2"]
    assert fetched.missing == ["ENG-404"]
    assert fetched.issue_errors == [{"id": "ENG-ERR", "errorMessage": "try again"}]
