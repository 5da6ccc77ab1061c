"""How calls are retried, set on the connection (extras) and per operator (``jira_retry``),
against the emulator over real HTTP."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tests.operators.conftest import connect

from airflow_provider_jira_auth.client.errors import JiraArgumentError, JiraServerError
from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook
from airflow_provider_jira_auth.operators.jira_cloud import JiraRequestOperator
from airflow_provider_jira_auth.testing import JiraCloudEmulator

FAST = {"retry_delay": 0.01, "retry_max_delay": 0.02}


def myself_calls(emu: JiraCloudEmulator) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/rest/api/3/myself"))


def test_the_connection_sets_attempts_and_waits(
    jira_emulator: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    jira = connect(jira_emulator, "basic", monkeypatch, retry_attempts=3, **FAST)
    jira_emulator.fail_next("GET", r"/myself$", status=503, times=10)

    with caplog.at_level(logging.WARNING), pytest.raises(JiraServerError):
        JiraCloudHook(jira.conn_id).get_conn().myself()

    assert myself_calls(jira_emulator) == 3
    waits = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(waits) == 2 and all(w.endswith("in 0.0 s") for w in waits), waits


def test_an_operator_overrides_the_connection(
    jira_emulator: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch, context: dict[str, Any]
) -> None:
    jira = connect(jira_emulator, "basic", monkeypatch, retry_attempts=4, **FAST)
    jira_emulator.fail_next("GET", r"/myself$", status=503, times=10)
    once = JiraRequestOperator(
        task_id="once", jira_conn_id=jira.conn_id, method="GET", endpoint="myself", jira_retry={"retry_attempts": 1}
    )

    with pytest.raises(JiraServerError):
        once.execute(context)
    assert myself_calls(jira_emulator) == 1

    # Keys it does not set come from the connection: four attempts, the connection's short waits.
    twice_more = JiraRequestOperator(
        task_id="more", jira_conn_id=jira.conn_id, method="GET", endpoint="myself", jira_retry={"retry_max_delay": 0.03}
    )
    with pytest.raises(JiraServerError):
        twice_more.execute(context)
    assert myself_calls(jira_emulator) == 1 + 4


@pytest.mark.parametrize(
    ("jira_retry", "field"),
    [
        ({"retry_attempt": 2}, "jira_retry.retry_attempt"),
        ({"retry_delay": "fast"}, "jira_retry.retry_delay"),
        ({"retry_attempts": 0}, "jira_retry.retry_attempts"),
    ],
)
def test_a_bad_jira_retry_fails_when_the_dag_is_parsed(jira_retry: dict[str, Any], field: str) -> None:
    with pytest.raises(JiraArgumentError) as caught:
        JiraRequestOperator(task_id="bad", method="GET", endpoint="myself", jira_retry=jira_retry)
    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize("jira_retry", [3, "retry_attempts=3", [("retry_attempts", 3)]])
def test_a_jira_retry_neither_mapping_nor_policy_fails_when_the_dag_is_parsed(jira_retry: Any) -> None:
    with pytest.raises(JiraArgumentError, match="jira_retry: must be a mapping of retry_attempts") as caught:
        JiraRequestOperator(task_id="bad", method="GET", endpoint="myself", jira_retry=jira_retry)
    assert caught.value.field == "jira_retry"


def test_a_jira_retry_that_clashes_with_the_connection_is_named_as_the_user_wrote_it(
    jira_emulator: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch, context: dict[str, Any]
) -> None:
    jira = connect(jira_emulator, "basic", monkeypatch, retry_delay=5)
    op = JiraRequestOperator(
        task_id="short", jira_conn_id=jira.conn_id, method="GET", endpoint="myself", jira_retry={"retry_max_delay": 1}
    )

    with pytest.raises(JiraArgumentError, match=r"^Jira argument jira_retry\.retry_max_delay: 1 s is below retry_delay"):
        op.execute(context)
    assert myself_calls(jira_emulator) == 0
