"""JiraIssueNotifier: one ticket per failing task, comments on it for later failures."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from tests.operators.conftest import FakeTaskInstance, Jira, connect

from airflow_provider_jira_auth.notifications.jira_cloud import MAX_LABEL_LENGTH, JiraIssueNotifier, dedup_label


def _failure(ti: FakeTaskInstance, error: str = "boom") -> dict[str, Any]:
    # "dag" as in every callback context Airflow passes (3.0's notifier reads it unconditionally)
    return {"ti": ti, "dag": None, "exception": RuntimeError(error)}


def _tickets(jira: Jira, label: str) -> list[str]:
    return [key for key in jira.emu.issue_keys("ENG") if label in jira.emu.get_issue(key)["fields"]["labels"]]


def test_the_first_failure_opens_a_ticket_with_the_run_details(jira: Jira) -> None:
    ti = FakeTaskInstance(dag_id="etl", task_id="load", try_number=1)
    notifier = JiraIssueNotifier(project_key="ENG", issue_type="Bug", labels=["data"], jira_conn_id=jira.conn_id)

    notifier(_failure(ti, "disk full"))

    (key,) = _tickets(jira, "airflow:etl:load")
    fields = jira.emu.get_issue(key)["fields"]
    assert fields["summary"] == "Airflow: etl.load failed" and fields["issuetype"]["name"] == "Bug"
    assert fields["labels"] == ["airflow:etl:load", "data"]
    text = str(fields["description"])
    for expected in (
        "DAG: etl",
        "Task: load",
        f"Run: {ti.run_id}",
        "Try: 1",
        f"Log: {ti.log_url}",
        "RuntimeError: disk full",
    ):
        assert expected in text


def test_retries_comment_on_the_open_ticket_instead_of_opening_another(jira: Jira) -> None:
    notifier = JiraIssueNotifier(project_key="ENG", jira_conn_id=jira.conn_id)
    ti = FakeTaskInstance(dag_id="etl", task_id="load")

    for try_number in (1, 2, 3):
        notifier(_failure(replace(ti, try_number=try_number)))

    (key,) = _tickets(jira, "airflow:etl:load")
    comments = jira.emu.get_issue(key)["fields"]["comment"]["comments"]
    assert [("Try: 2" in str(c["body"]), "Try: 3" in str(c["body"])) for c in comments] == [
        (True, False),
        (False, True),
    ]
    assert [m for m, p in jira.api_calls() if p == "/rest/api/3/issue"] == ["POST"]


def test_once_the_ticket_is_done_the_next_failure_opens_a_new_one(jira: Jira) -> None:
    notifier = JiraIssueNotifier(project_key="ENG", jira_conn_id=jira.conn_id)
    ti = FakeTaskInstance(dag_id="etl", task_id="load")
    notifier(_failure(ti))
    (first,) = _tickets(jira, "airflow:etl:load")
    jira.emu.set_status(first, "Done")

    notifier(_failure(replace(ti, run_id="scheduled__2026-01-02")))

    assert len(_tickets(jira, "airflow:etl:load")) == 2


def test_each_task_gets_its_own_ticket(jira: Jira) -> None:
    notifier = JiraIssueNotifier(project_key="ENG", jira_conn_id=jira.conn_id)

    notifier(_failure(FakeTaskInstance(dag_id="etl", task_id="load")))
    notifier(_failure(FakeTaskInstance(dag_id="etl", task_id="extract")))

    assert len(_tickets(jira, "airflow:etl:load")) == len(_tickets(jira, "airflow:etl:extract")) == 1


def test_templated_fields_are_rendered_with_the_callback_context(jira: Jira) -> None:
    notifier = JiraIssueNotifier(
        project_key="ENG",
        summary="{{ ti.task_id }} broke in {{ ti.dag_id }}",
        description="Owner: {{ params.owner }}",
        fields={"priority": {"name": "{{ params.priority }}"}},
        jira_conn_id=jira.conn_id,
    )

    notifier({**_failure(FakeTaskInstance(dag_id="etl", task_id="load")), "params": {"owner": "ada", "priority": "High"}})

    (key,) = _tickets(jira, "airflow:etl:load")
    fields = jira.emu.get_issue(key)["fields"]
    assert fields["summary"] == "load broke in etl" and "Owner: ada" in str(fields["description"])
    assert fields["priority"]["name"] == "High"


def test_a_dag_level_callback_gets_one_ticket_per_dag(jira: Jira) -> None:
    notifier = JiraIssueNotifier(project_key="ENG", jira_conn_id=jira.conn_id)
    context = {"dag": None, "dag_run": SimpleNamespace(dag_id="etl", run_id="manual__1"), "reason": "task_failure"}

    notifier(context)
    notifier(context)

    (key,) = _tickets(jira, "airflow:etl")
    assert jira.emu.get_issue(key)["fields"]["summary"] == "Airflow: etl failed"


def test_a_custom_jql_finds_the_ticket_to_comment_on(jira: Jira) -> None:
    JiraIssueNotifier(project_key="ENG", jira_conn_id=jira.conn_id, jql="key = ENG-2")(_failure(FakeTaskInstance()))

    assert len(jira.emu.get_issue("ENG-2")["fields"]["comment"]["comments"]) == 1
    assert jira.emu.issue_keys("ENG") == [f"ENG-{n}" for n in range(1, 6)]


def test_dedup_labels_are_unambiguous_and_fit_jira() -> None:
    assert dedup_label("etl", "group.load") == "airflow:etl:group.load"
    assert dedup_label("etl") == "airflow:etl"
    long = dedup_label("d" * 200, "t" * 200)
    assert len(long) == MAX_LABEL_LENGTH and long != dedup_label("d" * 200, "t" * 199 + "u")


def test_a_grant_without_write_scope_fails_before_calling(oauth_connect) -> None:
    from airflow_provider_jira_auth.scopes import JiraMissingScopeError

    jira = oauth_connect(("read:jira-work", "offline_access"))

    with pytest.raises(JiraMissingScopeError, match=r"JiraIssueNotifier for etl\.load needs the scope write:jira-work"):
        JiraIssueNotifier(project_key="ENG", jira_conn_id=jira.conn_id).notify(
            _failure(FakeTaskInstance(dag_id="etl", task_id="load"))
        )
    assert jira.api_calls() == []


class _Log:
    """Records what the notifier logs (Airflow's logger is stdlib on 3.0, structlog later)."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, bool]] = []

    def error(self, msg: str, *args: Any, exc_info: Any = None, **_: Any) -> None:
        self.errors.append((msg % args if args else msg, bool(exc_info)))

    def info(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def notifier_log(monkeypatch) -> _Log:
    log = _Log()
    monkeypatch.setattr(JiraIssueNotifier, "log", property(lambda self: log))
    return log


def test_when_jira_cannot_be_reached_the_callback_fails_loudly(jira_emulator, monkeypatch, notifier_log) -> None:
    # Airflow only logs what a callback raises, after the task's state is decided: the log line
    # is all that tells the reader no ticket exists.
    jira = connect(jira_emulator, "basic", monkeypatch, timeout=2)
    jira_emulator.stop()
    notifier = JiraIssueNotifier(project_key="ENG", jira_conn_id=jira.conn_id)

    with pytest.raises(Exception) as raised:
        notifier.notify(_failure(FakeTaskInstance(dag_id="etl", task_id="load", try_number=2)))

    ((message, with_traceback),) = notifier_log.errors
    assert with_traceback
    assert "NO Jira ticket was opened or updated for the failure of etl.load" in message
    assert "try 2" in message and "project ENG" in message and type(raised.value).__name__ in message


def test_a_notifier_that_cannot_load_the_hook_fails_loudly(jira: Jira, monkeypatch, notifier_log) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "airflow_provider_jira_auth.hooks.jira_cloud", None)  # ImportError
    with pytest.raises(ImportError):
        JiraIssueNotifier(project_key="ENG", jira_conn_id=jira.conn_id).notify(_failure(FakeTaskInstance()))

    ((message, _),) = notifier_log.errors
    assert "NO Jira ticket was opened or updated for the failure of jira_tests.task" in message
    assert jira.api_calls() == []
