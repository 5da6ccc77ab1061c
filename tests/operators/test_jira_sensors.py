"""The sensors in poke, reschedule and deferrable mode; timeout and soft_fail as Airflow users expect."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from tests.operators.conftest import Jira

from airflow_provider_jira_auth._compat import (
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow_provider_jira_auth.sensors.jira_cloud import IssueCriteria, JiraIssueSensor, JiraJqlSensor
from airflow_provider_jira_auth.triggers.jira_cloud import JiraIssueTrigger, JiraJqlTrigger, JiraTriggerError


def has_label_shipped(issue: dict[str, Any]) -> bool:
    """A condition the triggerer can import (module level): used by the deferrable tests."""
    return "shipped" in issue["fields"].get("labels", [])


def _event(trigger) -> dict[str, Any]:
    async def first():
        return await anext(trigger.run())

    return asyncio.run(first()).payload


def _rebuilt(trigger):
    """The trigger as a triggerer builds it: from its serialized classpath and kwargs."""
    from airflow_provider_jira_auth._compat import import_string

    classpath, kwargs = trigger.serialize()
    return import_string(classpath)(**kwargs)


def _later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


# -- JiraJqlSensor ---------------------------------------------------------------------------------


def test_jql_sensor_is_done_when_enough_issues_match(jira: Jira, context) -> None:
    enough = JiraJqlSensor(task_id="w", jql="project = ENG", min_count=3, jira_conn_id=jira.conn_id).poke(context)
    too_few = JiraJqlSensor(task_id="w", jql="project = ENG", min_count=6, jira_conn_id=jira.conn_id).poke(context)

    assert enough.is_done and enough.xcom_value == {"count": 3, "keys": ["ENG-1", "ENG-2", "ENG-3"]}
    assert not too_few.is_done


def test_jql_sensor_asks_only_for_as_many_issues_as_it_needs(jira: Jira, context) -> None:
    jira.emu.seed_issues(project="ENG", count=200)
    jira.emu.reset_requests()

    JiraJqlSensor(task_id="w", jql="project = ENG", min_count=2, jira_conn_id=jira.conn_id).poke(context)

    assert jira.api_calls() == [("POST", "/rest/api/3/search/jql")]
    assert jira.emu.requests[-1].body["maxResults"] == 2


def test_jql_sensor_with_expect_none_waits_until_nothing_matches(jira: Jira, context) -> None:
    sensor = JiraJqlSensor(
        task_id="w", jql='project = ENG AND status = "To Do"', expect_none=True, jira_conn_id=jira.conn_id
    )

    assert not sensor.poke(context)
    for key in jira.emu.issue_keys("ENG"):
        jira.emu.set_status(key, "Done")
    result = sensor.poke(context)
    assert result.is_done and result.xcom_value == {"count": 0, "keys": []}


def test_jql_sensor_in_poke_mode_times_out(jira: Jira, context) -> None:
    sensor = JiraJqlSensor(
        task_id="w", jql="project = ENG AND labels = never", poke_interval=0.05, timeout=0.3, jira_conn_id=jira.conn_id
    )

    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(context)


def test_jql_sensor_in_poke_mode_with_soft_fail_is_skipped_on_timeout(jira: Jira, context) -> None:
    sensor = JiraJqlSensor(
        task_id="w",
        jql="project = ENG AND labels = never",
        poke_interval=0.05,
        timeout=0.3,
        soft_fail=True,
        jira_conn_id=jira.conn_id,
    )

    with pytest.raises(AirflowSkipException):
        sensor.execute(context)


def test_jql_sensor_in_poke_mode_returns_its_xcom_once_met(jira: Jira, context) -> None:
    sensor = JiraJqlSensor(
        task_id="w", jql="project = ENG AND labels = ready", poke_interval=0.05, timeout=10, jira_conn_id=jira.conn_id
    )
    _later(0.3, lambda: jira.emu.seed_issues(project="ENG", count=1, labels=["ready"]))

    assert sensor.execute(context) == {"count": 1, "keys": ["ENG-6"]}


def test_jql_sensor_in_reschedule_mode_frees_the_slot_until_met(jira: Jira, context) -> None:
    sensor = JiraJqlSensor(
        task_id="w",
        jql="project = ENG AND labels = ready",
        mode="reschedule",
        poke_interval=120,
        timeout=3600,
        jira_conn_id=jira.conn_id,
    )

    with pytest.raises(AirflowRescheduleException) as caught:
        sensor.execute(context)
    assert caught.value.reschedule_date > datetime.now(timezone.utc) + timedelta(seconds=100)

    jira.emu.seed_issues(project="ENG", count=1, labels=["ready"])
    context["ti"].first_reschedule = datetime.now(timezone.utc) - timedelta(minutes=5)
    assert sensor.execute(context) == {"count": 1, "keys": ["ENG-6"]}


def test_jql_sensor_in_reschedule_mode_times_out_from_the_first_try(jira: Jira, context) -> None:
    sensor = JiraJqlSensor(
        task_id="w", jql="project = ENG AND labels = ready", mode="reschedule", timeout=60, jira_conn_id=jira.conn_id
    )
    context["ti"].first_reschedule = datetime.now(timezone.utc) - timedelta(minutes=5)

    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(context)


def test_deferrable_jql_sensor_does_not_defer_when_already_met(jira: Jira, context) -> None:
    sensor = JiraJqlSensor(task_id="w", jql="project = ENG", deferrable=True, jira_conn_id=jira.conn_id)

    assert sensor.execute(context) == {"count": 1, "keys": ["ENG-1"]}


def test_deferrable_jql_sensor_defers_to_a_trigger_that_fires_when_met(jira: Jira, context) -> None:
    sensor = JiraJqlSensor(
        task_id="w",
        jql="project = ENG AND labels = ready",
        min_count=2,
        deferrable=True,
        poke_interval=0.05,
        timeout=30,
        jira_conn_id=jira.conn_id,
    )

    with pytest.raises(TaskDeferred) as caught:
        sensor.execute(context)
    deferred = caught.value
    assert isinstance(deferred.trigger, JiraJqlTrigger) and deferred.method_name == "execute_complete"
    assert timedelta(seconds=30) <= deferred.timeout <= timedelta(seconds=120)

    _later(0.3, lambda: jira.emu.seed_issues(project="ENG", count=2, labels=["ready"]))
    event = _event(_rebuilt(deferred.trigger))

    assert event == {"status": "success", "xcom": {"count": 2, "keys": ["ENG-6", "ENG-7"]}}
    assert sensor.resume_execution("execute_complete", {"event": event}, context) == event["xcom"]


# -- timeout and soft_fail in deferrable mode ------------------------------------------------------


def _deferred_trigger(sensor, context):
    with pytest.raises(TaskDeferred) as caught:
        sensor.execute(context)
    return caught.value.trigger


@pytest.mark.parametrize("soft_fail", [False, True])
def test_deferrable_sensor_times_out_in_the_trigger(jira: Jira, context, soft_fail: bool) -> None:
    sensor = JiraIssueSensor(
        task_id="w",
        issue_key="ENG-1",
        status="Done",
        deferrable=True,
        poke_interval=0.05,
        timeout=0.3,
        soft_fail=soft_fail,
        jira_conn_id=jira.conn_id,
    )
    # The trigger ends on its own deadline with a "timeout" event (the status is never Done here);
    # how long that took depends on the machine's load, so it is not asserted.
    event = _event(_rebuilt(_deferred_trigger(sensor, context)))

    assert event["status"] == "timeout"
    with pytest.raises(AirflowSkipException if soft_fail else AirflowSensorTimeout):
        sensor.resume_execution("execute_complete", {"event": event}, context)


@pytest.mark.parametrize("soft_fail", [False, True])
def test_airflows_own_deferral_timeout_is_a_sensor_timeout_too(soft_fail: bool, context) -> None:
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

    sensor = JiraIssueSensor(task_id="w", issue_key="ENG-1", status="Done", deferrable=True, soft_fail=soft_fail)

    with pytest.raises(AirflowSkipException if soft_fail else AirflowSensorTimeout):
        sensor.resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context)


def test_a_jira_error_in_the_trigger_fails_the_task_even_with_soft_fail(context) -> None:
    sensor = JiraIssueSensor(task_id="w", issue_key="ENG-1", status="Done", deferrable=True, soft_fail=True)
    event = {"status": "error", "error_type": "JiraNotFoundError", "message": "GET issue/ENG-1 -> HTTP 404"}

    with pytest.raises(JiraTriggerError, match="JiraNotFoundError: GET issue/ENG-1 -> HTTP 404"):
        sensor.resume_execution("execute_complete", {"event": event}, context)


def test_the_trigger_reports_a_missing_issue_as_an_error_event(jira: Jira) -> None:
    trigger = JiraIssueTrigger(issue_key="ENG-404", criteria={"status": "Done"}, jira_conn_id=jira.conn_id)

    event = _event(trigger)

    assert event["status"] == "error" and event["error_type"] == "JiraNotFoundError"


# -- JiraIssueSensor -------------------------------------------------------------------------------


def test_issue_sensor_waits_for_a_status_case_insensitively(jira: Jira, context) -> None:
    sensor = JiraIssueSensor(task_id="w", issue_key="ENG-1", status="in progress", jira_conn_id=jira.conn_id)

    assert not sensor.poke(context)
    jira.emu.set_status("ENG-1", "In Progress")
    result = sensor.poke(context)
    assert result.is_done
    assert result.xcom_value == {"issue_key": "ENG-1", "status": "In Progress", "status_category": "indeterminate"}


@pytest.mark.parametrize("category", ["done", "Done"])
def test_issue_sensor_waits_for_a_status_category_by_key_or_name(jira: Jira, context, category: str) -> None:
    sensor = JiraIssueSensor(task_id="w", issue_key="ENG-1", status_category=category, jira_conn_id=jira.conn_id)

    assert not sensor.poke(context)
    jira.emu.set_status("ENG-1", "Done")
    assert sensor.poke(context).is_done


def test_issue_sensor_waits_for_a_field_value(jira: Jira, context) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    sensor = JiraIssueSensor(
        task_id="w", issue_key="ENG-1", field="labels", value="Deployed", jira_conn_id=jira.conn_id
    )

    assert not sensor.poke(context)
    JiraCloudHook(jira.conn_id).get_conn().update_issue("ENG-1", update={"labels": [{"add": "deployed"}]})
    result = sensor.poke(context)
    assert result.is_done and "deployed" in result.xcom_value["labels"]


def test_issue_sensor_with_a_field_and_no_value_waits_for_it_to_be_set(jira: Jira, context) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    sensor = JiraIssueSensor(task_id="w", issue_key="ENG-5", field="labels", jira_conn_id=jira.conn_id)
    JiraCloudHook(jira.conn_id).get_conn().update_issue("ENG-5", fields={"labels": []})

    assert not sensor.poke(context)
    JiraCloudHook(jira.conn_id).get_conn().update_issue("ENG-5", fields={"labels": ["x"]})
    assert sensor.poke(context).is_done


def test_issue_sensor_with_a_callable_condition(jira: Jira, context) -> None:
    seen: list[str] = []

    def summary_mentions_fix(issue: dict[str, Any]) -> bool:
        seen.append(issue["key"])
        return "fixed" in issue["fields"]["summary"]

    sensor = JiraIssueSensor(task_id="w", issue_key="ENG-1", condition=summary_mentions_fix, jira_conn_id=jira.conn_id)

    assert not sensor.poke(context)
    jira.emu.get_issue("ENG-1")
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    JiraCloudHook(jira.conn_id).get_conn().update_issue("ENG-1", fields={"summary": "fixed it"})
    assert sensor.poke(context).is_done and seen == ["ENG-1", "ENG-1"]


def test_deferrable_issue_sensor_with_an_importable_condition(jira: Jira, context) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    sensor = JiraIssueSensor(
        task_id="w",
        issue_key="ENG-2",
        condition=has_label_shipped,
        fields=["labels"],
        deferrable=True,
        poke_interval=0.05,
        timeout=30,
        jira_conn_id=jira.conn_id,
    )
    trigger = _rebuilt(_deferred_trigger(sensor, context))
    assert trigger.criteria["condition"] == f"{__name__}.has_label_shipped"

    _later(
        0.3,
        lambda: JiraCloudHook(jira.conn_id).get_conn().update_issue("ENG-2", update={"labels": [{"add": "shipped"}]}),
    )
    event = _event(trigger)

    assert event["status"] == "success" and event["xcom"]["issue_key"] == "ENG-2"


def test_deferrable_issue_sensor_refuses_a_condition_the_triggerer_cannot_import(jira: Jira, context) -> None:
    sensor = JiraIssueSensor(
        task_id="w",
        issue_key="ENG-1",
        condition=lambda issue: True if issue["key"] == "never" else False,
        deferrable=True,
        jira_conn_id=jira.conn_id,
    )

    with pytest.raises(ValueError, match="module-level function"):
        sensor.execute(context)


def test_issue_sensor_needs_something_to_wait_for() -> None:
    with pytest.raises(ValueError, match="needs status, status_category, field or condition"):
        JiraIssueSensor(task_id="w", issue_key="ENG-1")
    with pytest.raises(ValueError, match="value needs field"):
        IssueCriteria(status="Done", value="x")


def test_issue_criteria_round_trips_through_plain_data() -> None:
    criteria = IssueCriteria(
        status="Done", field="labels", value=["a", "b"], condition="pkg.mod.fn", fields=("summary",)
    )

    assert IssueCriteria.deserialize(criteria.serialize()) == criteria
