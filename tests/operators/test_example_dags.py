"""The example DAGs import cleanly, and run with ``dag.test()`` (real Airflow, in-process) against the emulator.

``dag.test()`` needs the DAG file inside the DAGs folder (it serializes the bundle), so each
test copies its file there first. It runs tasks and triggers in this process, with the ORM
available: deferrable sensors run their trigger inline and 3LO refreshes go to the store
directly. Under a real executor (tests/airflow_harness.py) the same trigger runs in a
triggerer and reaches 3LO tokens through the token broker (see test_jira_triggers.py).
"""

from __future__ import annotations

import inspect
import shutil
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_jira_auth.notifications.jira_cloud import dedup_label
from tests.db_connections import put_connection

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "dags_examples"
OPERATOR_EXAMPLES = sorted(EXAMPLES.glob("jira_operators_*.py"))

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_every_example_dag_imports_without_errors() -> None:
    from airflow_provider_jira_auth._compat import dag_bag_class

    bag = dag_bag_class()(dag_folder=str(EXAMPLES))

    assert bag.import_errors == {}
    assert {"jira_operators_basic", "jira_operators_oauth", "jira_operators_notifier"} <= set(bag.dag_ids)
    assert len(bag.dag_ids) == len(list(EXAMPLES.glob("*.py")))


def _dags_folder() -> Path:
    from airflow.configuration import conf

    folder = Path(conf.get("core", "dags_folder"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _load(path: Path, dag_id: str) -> Any:
    """The DAG from ``path``, copied into the DAGs folder (dag.test() serializes from there)."""
    from airflow_provider_jira_auth._compat import dag_bag_class

    target = _dags_folder() / path.name
    if path != target:
        shutil.copyfile(path, target)
    bag = dag_bag_class()(dag_folder=str(target))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def _states(dag_run: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
        ).all()
        return {ti.task_id + ("" if ti.map_index < 0 else f"[{ti.map_index}]"): str(ti.state) for ti in tis}


def test_the_basic_example_runs_the_whole_issue_lifecycle(jira_emulator, monkeypatch, tmp_path) -> None:
    emu = jira_emulator
    emu.seed_issues(project="ENG", count=12)
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_CLOUD_DEFAULT", emu.connection_json("basic"))

    dag_run = _load(EXAMPLES / "jira_operators_basic.py", "jira_operators_basic").test()

    assert dag_run.state == "success", _states(dag_run)
    ticket = emu.get_issue("ENG-13")["fields"]
    assert ticket["summary"].startswith("Nightly load report for ")
    assert ticket["status"]["name"] == "Done" and "reported" in ticket["labels"]
    assert len(ticket["comment"]["comments"]) == 1
    assert {r.auth for r in emu.requests if "/rest/api/3/" in r.path} == {"basic"}
    # comment_once: the comment carries its marker, so a retry of the task would find it.
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    comment_id = ticket["comment"]["comments"][0]["id"]
    (shown,) = JiraCloudHook("jira_cloud_default").get_conn().comments_by_id([comment_id], expand="properties")
    assert [p["key"] for p in shown["properties"]] == ["airflow.once"]


def test_the_oauth_example_runs_with_a_3lo_connection(jira_emulator, monkeypatch) -> None:
    emu = jira_emulator
    emu.seed_issues(project="ENG", count=3)
    put_connection("jira_cloud_oauth", emu.connection_json("oauth2"))

    dag_run = _load(EXAMPLES / "jira_operators_oauth.py", "jira_operators_oauth").test()

    assert dag_run.state == "success", _states(dag_run)
    batch = [emu.get_issue(key)["fields"] for key in emu.issue_keys("ENG")[3:]]
    assert [f["summary"] for f in batch] == [f"Migrate table {t}" for t in ("users", "orders", "payments", "events")]
    assert {f["status"]["name"] for f in batch} == {"Done"}  # closed by the mapped transition task
    assert {r.auth for r in emu.requests if "/rest/api/3/" in r.path} == {"bearer"}
    assert emu.stats.token_refreshes == 1  # one access token served every task of the run


SENSOR_AND_NOTIFIER_DAG = """
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from airflow_provider_jira_auth.notifications.jira_cloud import JiraIssueNotifier
from airflow_provider_jira_auth.sensors.jira_cloud import JiraIssueSensor, JiraJqlSensor

notify = JiraIssueNotifier(project_key="ENG")


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def jira_sensor_and_notifier_test():
    JiraIssueSensor(task_id="waits", issue_key="ENG-1", status="Done", deferrable=True, poke_interval=0.2, timeout=60)
    JiraJqlSensor(
        task_id="times_out_soft", jql="project = ENG AND labels = never", deferrable=True,
        poke_interval=0.2, timeout=1, soft_fail=True,
    )
    JiraJqlSensor(task_id="times_out", jql="project = ENG AND labels = never", poke_interval=0.2, timeout=1, retries=3)

    @task(retries=2, retry_delay=timedelta(seconds=0), on_retry_callback=notify, on_failure_callback=notify)
    def always_fails():
        raise RuntimeError("simulated failure")

    always_fails()


jira_sensor_and_notifier_test()
"""


def test_sensors_and_notifier_under_dag_test(jira_emulator, monkeypatch) -> None:
    emu = jira_emulator
    emu.seed_issues(project="ENG", count=2, statuses=["To Do"])
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_CLOUD_DEFAULT", emu.connection_json("basic"))
    path = _dags_folder() / "jira_sensor_and_notifier_test.py"
    path.write_text(textwrap.dedent(SENSOR_AND_NOTIFIER_DAG))

    # Someone closes ENG-1 once the deferrable sensor has looked at it (so it must defer).
    def close_after_first_look() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # polling the emulator's requests
            if any(r.method == "GET" and r.path.endswith("/issue/ENG-1") for r in emu.requests):
                emu.set_status("ENG-1", "Done")
                return
            time.sleep(0.05)

    threading.Thread(target=close_after_first_look, daemon=True).start()

    dag_run = _load(path, "jira_sensor_and_notifier_test").test()

    states = _states(dag_run)
    assert states["waits"] == "success"
    assert (
        len([r for r in emu.requests if r.method == "GET" and r.path.endswith("/issue/ENG-1")]) >= 2
    )  # poke, then trigger
    assert states["times_out_soft"] == "skipped"  # the trigger's timeout, skipped by soft_fail
    assert states["times_out"] == "failed"  # AirflowSensorTimeout fails without using its retries
    assert states["always_fails"] == "failed"

    # Three failures of one task (two retries, then for good): one ticket, two comments.
    label = dedup_label("jira_sensor_and_notifier_test", "always_fails")
    tickets = [key for key in emu.issue_keys("ENG") if label in emu.get_issue(key)["fields"]["labels"]]
    assert len(tickets) == 1
    fields = emu.get_issue(tickets[0])["fields"]
    comments = fields["comment"]["comments"]
    assert len(comments) == 2
    description = str(fields["description"])
    assert (
        "jira_sensor_and_notifier_test" in description
        and "Try: 1" in description
        and "simulated failure" in description
    )
    assert "Try: 3" in str(comments[-1]["body"])


def test_the_event_example_acknowledges_each_change_once_across_task_retries_and_redeliveries(
    jira_emulator, monkeypatch
) -> None:
    from airflow_provider_jira_auth.client import idempotency

    monkeypatch.setattr(idempotency, "SETTLE_WAITS", (0.05,))  # the looks after each lost answer
    emu = jira_emulator
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_CLOUD_DEFAULT", emu.connection_json("basic"))
    emu.seed_issues(project="ENG", count=2, statuses=["Done"])
    changes = [
        {"id": issue["id"], "key": issue["key"], "status": "Done", "updated": issue["fields"]["updated"]}
        for issue in (emu.get_issue(key) for key in emu.issue_keys())
    ]
    acknowledge = _load(EXAMPLES / "jira_issue_events.py", "jira_issue_events").get_task("acknowledge").python_callable
    # The first try comments on ENG-1, then Jira refuses every send to ENG-2 and the try fails.
    emu.fail_next("POST", r"/issue/ENG-2/comment$", status=503, times=4)

    def run(run_id: str) -> int:
        # As Airflow calls a @task: context entries go to the parameters of those names.
        context = {"run_id": run_id, "dag_run": SimpleNamespace(run_id=run_id)}
        params = inspect.signature(acknowledge).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        return acknowledge(changes, **{k: v for k, v in context.items() if takes_all or k in params})

    with pytest.raises(Exception, match="503"):
        run("asset_triggered__1")
    assert run("asset_triggered__1") == 2  # the retry
    assert run("asset_triggered__2") == 2  # the same changes fired again: another run

    for change in changes:
        comments = emu.get_issue(change["key"])["fields"]["comment"]["comments"]
        assert [c["body"]["content"][0]["content"][0]["text"] for c in comments] == ["Airflow saw this issue reach Done."]
