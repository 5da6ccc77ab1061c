"""The scopes the provider declares (``scopes.py``) are the ones Atlassian's OpenAPI spec requires.

Two checks:

* every operation of ``scopes.OPERATIONS``: its endpoints are operations of the spec, and its
  declared classic scopes equal the spec's (``x-atlassian-oauth2-scopes``, state ``Current``);
* every operator, sensor, trigger and notifier: it runs against the emulator over real HTTP, the
  calls it makes are recorded, and the scopes the spec requires for them must equal those it
  declares (the scopes a 3LO grant is checked for before it calls). A call to an endpoint it does
  not declare fails too, so a new call cannot slip past the pre-flight check.
"""

from __future__ import annotations

import asyncio
import inspect
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_jira_auth import scopes as scopes_module
from airflow_provider_jira_auth.notifications import jira_cloud as notifications
from airflow_provider_jira_auth.operators import export
from airflow_provider_jira_auth.operators import jira_cloud as operators
from airflow_provider_jira_auth.operators import transition as transition_operators
from airflow_provider_jira_auth.scopes import OPERATIONS, operation_for_request, scopes_for
from airflow_provider_jira_auth.sensors import jira_cloud as sensors
from airflow_provider_jira_auth.testing import JiraCloudEmulator
from airflow_provider_jira_auth.triggers import jira_cloud as triggers

from spec import classic_scopes, find_operation, load_spec

CONN_ID = "jira_contract"
Call = tuple[str, str]  # (method, path) as the emulator saw it


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


# -- the declarations --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_declared_scopes_of_each_operation_are_the_specs(spec: dict[str, Any], name: str) -> None:
    declared = OPERATIONS[name]
    required: set[str] = set()
    for method, template in declared.endpoints:
        found = find_operation(spec, method, template)
        assert found is not None, f"{name}: {method} {template} is not an operation of Jira Cloud's OpenAPI spec"
        assert found[0] == template, f"{name}: {method} {template} resolves to {found[0]} in the spec"
        required |= classic_scopes(found[1])

    assert set(declared.scopes) == required, (
        f"{name} declares {sorted(declared.scopes)}, Atlassian's spec requires {sorted(required)}"
    )


def test_every_client_endpoint_method_has_declared_scopes() -> None:
    from airflow_provider_jira_auth.client.http import JiraClient

    public = {n for n, _ in inspect.getmembers(JiraClient, inspect.isfunction) if not n.startswith("_")}

    assert public - {"request", "close"} <= set(OPERATIONS), "a JiraClient endpoint method has no scopes in scopes.py"


# -- what each class really calls ------------------------------------------------------------------


@dataclass
class FakeTI:
    dag_id: str = "contract"
    task_id: str = "task"
    run_id: str = "manual__1"
    try_number: int = 1
    log_url: str = "http://localhost:8080/log"
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _context() -> dict[str, Any]:
    return {"ti": FakeTI(), "exception": RuntimeError("x")}


def _trigger_event(trigger: Any) -> Any:
    async def first() -> Any:
        return await anext(trigger.run())

    return asyncio.run(first()).payload


def _declared(obj: Any) -> frozenset[str]:
    return scopes_for(*obj.jira_operations)


@dataclass
class Exercise:
    """Builds one object, runs it, and says which scopes it declares."""

    cls: type
    run: Callable[[], Any]
    declared: Callable[[], frozenset[str]]
    operations: Callable[[], tuple[str, ...]]


def _exercises() -> dict[str, Exercise]:
    ops = operators
    search = ops.JiraSearchOperator(task_id="t", jql="project = ENG", jira_conn_id=CONN_ID)
    search_parallel = ops.JiraSearchOperator(task_id="t", jql="project = ENG", parallelism=2, jira_conn_id=CONN_ID)
    search_history = ops.JiraSearchOperator(task_id="t", jql="project = ENG", history=True, jira_conn_id=CONN_ID)
    bulk_transition = transition_operators.JiraBulkTransitionOperator(
        task_id="t", jql="key = ENG-3", target_status="Done", jira_conn_id=CONN_ID
    )
    create = ops.JiraCreateIssueOperator(task_id="t", project_key="ENG", summary="one", jira_conn_id=CONN_ID)
    create_many = ops.JiraCreateIssueOperator(
        task_id="t", project_key="ENG", issues=[{"summary": "a"}, {"summary": "b"}], jira_conn_id=CONN_ID
    )
    create_once = ops.JiraCreateIssueOperator(
        task_id="t", project_key="ENG", summary="once", create_once=True, jira_conn_id=CONN_ID
    )
    update = ops.JiraUpdateIssueOperator(task_id="t", issue_key="ENG-1", fields={"summary": "x"}, jira_conn_id=CONN_ID)
    comment = ops.JiraCommentOperator(task_id="t", issue_key="ENG-1", body="hi", jira_conn_id=CONN_ID)
    comment_once = ops.JiraCommentOperator(task_id="t", issue_key="ENG-1", body="hi", comment_once=True, jira_conn_id=CONN_ID)
    transition = ops.JiraTransitionIssueOperator(
        task_id="t", issue_key="ENG-2", target_status="Done", jira_conn_id=CONN_ID
    )
    request = ops.JiraRequestOperator(
        task_id="t", endpoint="project/ENG", required_scopes=["read:jira-work"], jira_conn_id=CONN_ID
    )
    jql_sensor = sensors.JiraJqlSensor(task_id="t", jql="project = ENG", jira_conn_id=CONN_ID)
    issue_sensor = sensors.JiraIssueSensor(task_id="t", issue_key="ENG-1", status="To Do", jira_conn_id=CONN_ID)
    jql_trigger = triggers.JiraJqlTrigger(jql="project = ENG", jira_conn_id=CONN_ID)
    issue_trigger = triggers.JiraIssueTrigger(issue_key="ENG-1", criteria={"status": "To Do"}, jira_conn_id=CONN_ID)
    notifier = notifications.JiraIssueNotifier(project_key="ENG", jira_conn_id=CONN_ID)
    export_dir = tempfile.mkdtemp(prefix="jira-contract-")
    incremental = export.JiraIncrementalExportOperator(
        task_id="t", jql="project = ENG", output_path=f"{export_dir}/eng.jsonl", settle=0, jira_conn_id=CONN_ID
    )
    window = {"data_interval_end": datetime.now(timezone.utc), "prev_data_interval_end_success": None}
    incremental_history = export.JiraIncrementalExportOperator(
        task_id="t", jql="project = ENG", output_path=f"{export_dir}/eng-history.jsonl", settle=0, history=True,
        jira_conn_id=CONN_ID,
    )

    def export_history_up_to_now() -> None:
        # A window ending now holds the issues just seeded, so their history is read, once now is
        # past the millisecond of their last change (Jira's times are in milliseconds).
        seeded_by = int(time.time() * 1000)
        while int(time.time() * 1000) <= seeded_by:  # polling the clock: to the next millisecond
            time.sleep(0.001)
        end = {"data_interval_end": datetime.now(timezone.utc), "prev_data_interval_end_success": None}
        assert incremental_history.execute({**_context(), **end})["count"] > 0

    def notify_twice() -> None:
        notifier.notify(_context())  # opens the ticket
        notifier.notify(_context())  # comments on it

    def of(obj: Any, run: Callable[[], Any]) -> Exercise:
        return Exercise(type(obj), run, lambda: _declared(obj), lambda: tuple(obj.jira_operations))

    return {
        "JiraSearchOperator": of(search, lambda: search.execute(_context())),
        "JiraSearchOperator(parallel)": of(search_parallel, lambda: search_parallel.execute(_context())),
        "JiraSearchOperator(history)": of(search_history, lambda: search_history.execute(_context())),
        "JiraBulkTransitionOperator": of(bulk_transition, lambda: bulk_transition.execute(_context())),
        "JiraCreateIssueOperator(one)": of(create, lambda: create.execute(_context())),
        "JiraCreateIssueOperator(many)": of(create_many, lambda: create_many.execute(_context())),
        # Twice: the second run finds the first one's marker and checks whose it is (GET /myself).
        "JiraCreateIssueOperator(once)": of(create_once, lambda: [create_once.execute(_context()) for _ in "12"]),
        "JiraUpdateIssueOperator": of(update, lambda: update.execute(_context())),
        "JiraCommentOperator": of(comment, lambda: comment.execute(_context())),
        "JiraCommentOperator(once)": of(comment_once, lambda: [comment_once.execute(_context()) for _ in "12"]),
        "JiraTransitionIssueOperator": of(transition, lambda: transition.execute(_context())),
        # Any endpoint: what it declares is what the user passes as required_scopes.
        "JiraRequestOperator": Exercise(
            ops.JiraRequestOperator,
            lambda: request.execute(_context()),
            lambda: frozenset(request.required_scopes or ()),
            lambda: (),
        ),
        "JiraJqlSensor": of(jql_sensor, lambda: jql_sensor.poke(_context())),
        "JiraIssueSensor": of(issue_sensor, lambda: issue_sensor.poke(_context())),
        "JiraJqlTrigger": of(jql_trigger, lambda: _trigger_event(jql_trigger)),
        "JiraIssueTrigger": of(issue_trigger, lambda: _trigger_event(issue_trigger)),
        "JiraIssueNotifier": of(notifier, notify_twice),
        "JiraIncrementalExportOperator": of(incremental, lambda: incremental.execute({**_context(), **window})),
        "JiraIncrementalExportOperator(history)": of(incremental_history, export_history_up_to_now),
    }


@pytest.fixture(scope="module")
def recorded() -> Iterator[dict[str, tuple[Exercise, list[Call]]]]:
    """Each exercise run against a fresh emulator (Basic auth: nothing is pre-checked), with its calls."""
    results: dict[str, tuple[Exercise, list[Call]]] = {}
    with pytest.MonkeyPatch.context() as mp, JiraCloudEmulator() as emu:
        mp.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", emu.connection_json("basic"))
        for name, exercise in _exercises().items():
            keys = emu.seed_issues(project="ENG", count=3, statuses=["To Do"])
            # More history than a search embeds: the history export pages through the rest.
            emu.add_comments(keys[0], 25)
            emu.add_changelog(keys[0], 45)
            emu.reset_requests()
            exercise.run()
            failed = [(r.method, r.path, r.status) for r in emu.requests if not (r.status and 200 <= r.status < 300)]
            assert not failed, f"{name}: the emulator refused {failed}, so the exercise is not representative"
            results[name] = (exercise, [(r.method, r.path) for r in emu.requests if "/rest/api/3/" in r.path])
    yield results


def _public_jira_classes() -> set[type]:
    found = set()
    for module in (operators, transition_operators, export, sensors, triggers, notifications):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                obj.__module__ == module.__name__
                and not obj.__name__.startswith("_")
                and hasattr(obj, "jira_operations")
            ):
                found.add(obj)
    return found - {operators.JiraOperatorMixin}


def test_every_operator_sensor_trigger_and_notifier_is_exercised() -> None:
    exercised = {exercise.cls for exercise in _exercises().values()}

    missing = sorted(cls.__name__ for cls in _public_jira_classes() - exercised)

    assert not missing, f"add an exercise to _exercises() for {missing}, so the scopes they declare are checked"


@pytest.mark.parametrize("name", sorted(_exercises()))
def test_declared_scopes_equal_what_the_spec_requires_for_the_calls_made(
    spec: dict[str, Any], recorded: dict[str, tuple[Exercise, list[Call]]], name: str
) -> None:
    exercise, calls = recorded[name]
    assert calls, f"{name} made no REST call"
    required: set[str] = set()
    for method, path in calls:
        found = find_operation(spec, method, path)
        assert found is not None, f"{name} calls {method} {path}, which is not in Jira Cloud's OpenAPI spec"
        required |= classic_scopes(found[1])

    declared = exercise.declared()

    assert set(declared) == required, (
        f"{name} declares {sorted(declared)}; for the calls it makes ({sorted(set(calls))}) Atlassian's spec "
        f"requires {sorted(required)}"
    )


@pytest.mark.parametrize("name", sorted(n for n in _exercises() if n != "JiraRequestOperator"))
def test_every_call_is_one_of_the_declared_operations(
    recorded: dict[str, tuple[Exercise, list[Call]]], name: str
) -> None:
    exercise, calls = recorded[name]
    declared = set(exercise.operations())

    undeclared = sorted(
        {
            f"{m} {p}"
            for m, p in calls
            if (op := operation_for_request(m, p.partition("/rest/api/3/")[2])) is None or op.name not in declared
        }
    )

    assert not undeclared, f"{name} calls endpoints outside its jira_operations {sorted(declared)}: {undeclared}"


def test_the_module_documents_where_the_scopes_come_from() -> None:
    assert "x-atlassian-oauth2-scopes" in (scopes_module.__doc__ or "")
