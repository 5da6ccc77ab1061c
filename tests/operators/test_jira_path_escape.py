"""An endpoint path stays under the REST root: the connection's credentials go to Jira's REST API only.

A Jira credential (a 3LO access token, a scoped API token) is accepted by the whole gateway, so
``../../ex/confluence/<cloudId>/...`` after ``/ex/jira/<cloudId>/rest/api/3/`` would carry it to
Confluence. The client refuses such paths before sending anything, whichever way they are
written, for the operator, the hook and the triggers' async client alike.
"""

from __future__ import annotations

import pytest
from tests.operators.conftest import Jira
from tests.operators.test_jira_async_client import run

from airflow_provider_jira_auth.client.errors import JiraError, JiraPathError
from airflow_provider_jira_auth.operators.jira_cloud import JiraRequestOperator

ESCAPES = [
    "../../../../../../ex/confluence/{cloud_id}/wiki/rest/api/space",
    "issue/ENG-1/../../../../../../ex/confluence/{cloud_id}/wiki/rest/api/space",
    "issue/./ENG-1",
    "..",
    "%2e%2e/%2e%2e/%2e%2e/ex/confluence/{cloud_id}/wiki/rest/api/space",
    "%2E./%2E./%2E./serverInfo",
    ".%2e/.%2E/.%2e/serverInfo",
    "issue/%2e/ENG-1",
    "%252e%252e/%252e%252e/%252e%252e/serverInfo",
    "..;/..;/..;/serverInfo",
    "..\\..\\..\\serverInfo",
    "issue%5c..%5c..%5cserverInfo",
    "https://evil.example.com/rest/api/3/myself",
    "//evil.example.com/rest/api/3/myself",
    "/%2F%2Fevil.example.com/rest/api/3/myself",
]


def _endpoint(template: str, jira: Jira) -> str:
    return template.format(cloud_id=jira.emu.cloud_id)


@pytest.mark.parametrize("template", ESCAPES)
def test_the_request_operator_refuses_a_path_out_of_the_rest_root_and_sends_nothing(
    jira: Jira, context, template: str
) -> None:
    endpoint = _endpoint(template, jira)
    before = len(jira.emu.requests)
    op = JiraRequestOperator(task_id="escape", endpoint=endpoint, jira_conn_id=jira.conn_id)

    with pytest.raises(JiraPathError) as refused:
        op.execute(context)

    assert "Refusing to call Jira endpoint" in str(refused.value)
    assert repr(endpoint.strip("/"))[1:-1] in str(refused.value)
    assert isinstance(refused.value, JiraError) and isinstance(refused.value, ValueError)
    assert len(jira.emu.requests) == before  # not even a token refresh


@pytest.mark.parametrize("template", [ESCAPES[0], ESCAPES[4], ESCAPES[9], ESCAPES[10]])
def test_the_hook_refuses_a_path_out_of_the_rest_root_and_sends_nothing(jira: Jira, template: str) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    endpoint = _endpoint(template, jira)
    before = len(jira.emu.requests)

    for method in ("GET", "POST", "DELETE"):
        with pytest.raises(JiraPathError, match="Refusing to call Jira endpoint"):
            JiraCloudHook(jira.conn_id).request(method, endpoint, json={} if method == "POST" else None)

    assert len(jira.emu.requests) == before


@pytest.mark.parametrize("template", [ESCAPES[0], ESCAPES[4], ESCAPES[10]])
def test_the_async_client_of_the_triggers_refuses_it_too(jira: Jira, template: str) -> None:
    endpoint = _endpoint(template, jira)
    before = len(jira.emu.requests)

    with pytest.raises(JiraPathError, match="Refusing to call Jira endpoint"):
        run(jira, lambda client: client.request("GET", endpoint))

    assert len(jira.emu.requests) == before


def test_ordinary_paths_still_reach_jira(jira: Jira, context) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    op = JiraRequestOperator(
        task_id="transitions",
        endpoint="issue/ENG-1/transitions",
        response_filter=lambda answer: sorted(t["name"] for t in answer["transitions"]),
        jira_conn_id=jira.conn_id,
    )
    hook = JiraCloudHook(jira.conn_id)

    assert op.execute(context) == ["Done", "Start Progress"]
    assert hook.request("GET", "/rest/api/3/issue/ENG-2?fields=summary")["key"] == "ENG-2"
    assert hook.request("GET", "issue/ENG-3", params={"fields": "summary"})["key"] == "ENG-3"
    assert run(jira, lambda client: client.request("GET", "issue/ENG-4/transitions"))["transitions"]
    # Dots in the query string are not path steps.
    assert hook.request("GET", 'search/jql?jql=labels = "../.." ORDER BY key')["issues"] == []
    assert jira.api_calls()[-1] == ("GET", "/rest/api/3/search/jql")
