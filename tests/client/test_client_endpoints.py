"""The endpoint helpers: what each one sends and what it returns."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client import JiraClient, JiraNotFoundError, JiraPathError, text_to_adf

from client_scripted_server import Reply, ScriptedServer

CREATED = {"id": "10001", "key": "ENG-1", "self": "https://example.atlassian.net/rest/api/3/issue/10001"}


def test_get_issue_sends_fields_and_expand(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200, {"id": "1", "key": "ENG-1", "fields": {"summary": "x"}}))

    issue = client.get_issue("ENG-1", fields=["summary", "status"], expand="changelog")

    assert issue["fields"] == {"summary": "x"}
    sent = server.requests[0]
    assert (sent.method, sent.rest_path) == ("GET", "issue/ENG-1")
    assert sent.query == {"fields": ["summary,status"], "expand": ["changelog"]}


def test_get_issue_quotes_the_key_into_one_path_segment(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(404, {"errorMessages": ["Issue does not exist"]}))

    with pytest.raises(JiraNotFoundError):
        client.get_issue("ENG/1?x")

    assert server.requests[0].path == "/rest/api/3/issue/ENG%2F1%3Fx"


def test_get_issue_refuses_a_key_that_would_step_out_once_a_proxy_decodes_it(
    client: JiraClient, server: ScriptedServer
) -> None:
    with pytest.raises(JiraPathError, match=r"issue/\.\.%2Fmyself"):
        client.get_issue("../myself")

    assert server.requests == []


def test_create_issue_returns_id_key_and_self(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(201, CREATED))

    created = client.create_issue({"project": {"key": "ENG"}, "summary": "x", "description": "Hello"})

    assert created == CREATED
    sent = server.requests[0]
    assert (sent.method, sent.rest_path) == ("POST", "issue")
    assert sent.json["fields"]["description"] == text_to_adf("Hello")


def test_create_issue_does_not_modify_the_callers_fields(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(201, CREATED))
    fields = {"summary": "x", "description": "plain"}

    client.create_issue(fields)

    assert fields == {"summary": "x", "description": "plain"}


def test_update_issue_puts_fields_and_update(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(204))

    assert client.update_issue("ENG-1", fields={"summary": "y"}, update={"labels": [{"add": "a"}]}) is None

    sent = server.requests[0]
    assert (sent.method, sent.rest_path, sent.query) == ("PUT", "issue/ENG-1", {})
    assert sent.json == {"fields": {"summary": "y"}, "update": {"labels": [{"add": "a"}]}}


def test_update_issue_can_suppress_notifications(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(204))

    client.update_issue("ENG-1", fields={"summary": "y"}, notify_users=False)

    assert server.requests[0].query == {"notifyUsers": ["false"]}


def test_update_issue_needs_something_to_change(client: JiraClient) -> None:
    with pytest.raises(ValueError):
        client.update_issue("ENG-1")


def test_get_transitions_returns_the_list(client: JiraClient, server: ScriptedServer) -> None:
    transitions = [{"id": "31", "name": "Done", "to": {"name": "Done"}}]
    server.queue(Reply(200, {"transitions": transitions}))

    assert client.get_transitions("ENG-1") == transitions
    assert server.requests[0].rest_path == "issue/ENG-1/transitions"


def test_transition_issue_posts_the_transition_id(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(204))

    client.transition_issue("ENG-1", 31, fields={"resolution": {"name": "Done"}})

    sent = server.requests[0]
    assert (sent.method, sent.rest_path) == ("POST", "issue/ENG-1/transitions")
    assert sent.json == {"transition": {"id": "31"}, "fields": {"resolution": {"name": "Done"}}}


def test_add_comment_converts_text_to_adf(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(201, {"id": "5"}))

    assert client.add_comment("ENG-1", "Done by the DAG.\n\nSee the logs.") == {"id": "5"}

    sent = server.requests[0]
    assert (sent.method, sent.rest_path) == ("POST", "issue/ENG-1/comment")
    assert sent.json == {"body": text_to_adf("Done by the DAG.\n\nSee the logs.")}


def test_add_comment_sends_adf_as_is(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(201, {"id": "5"}))
    doc = {"type": "doc", "version": 1, "content": [{"type": "rule"}]}

    client.add_comment("ENG-1", doc)

    assert server.requests[0].json == {"body": doc}


def test_myself_and_server_info(client: JiraClient, server: ScriptedServer) -> None:
    server.queue(Reply(200, {"accountId": "a1"}), Reply(200, {"baseUrl": "https://x", "deploymentType": "Cloud"}))

    assert client.myself() == {"accountId": "a1"}
    assert client.server_info()["deploymentType"] == "Cloud"
    assert [r.rest_path for r in server.requests] == ["myself", "serverInfo"]
