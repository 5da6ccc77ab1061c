"""A deferrable JiraIssueSensor waits in a real triggerer and holds no worker slot meanwhile.

The deployment has ONE worker slot (LocalExecutor parallelism 1). The DAG runs the sensor and
an independent probe task: the probe can only run while the sensor waits if the sensor gave its
slot back by deferring. The test moves the issue to Done once the probe has finished.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.airflow_harness import AirflowEnvironment

DAGS = Path(__file__).parent / "dags_deferrable"
pytestmark = pytest.mark.airflow_executor


def task_states(deployment, dag_id):
    runs = deployment.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 1})
    if not runs["dag_runs"]:
        return {}
    run_id = runs["dag_runs"][0]["dag_run_id"]
    tis = deployment.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}


@pytest.mark.timeout(600)
def test_deferrable_issue_sensor_completes_in_the_triggerer_without_a_worker_slot(tmp_path_factory):
    with JiraCloudEmulator() as emu:
        emu.seed_issues(project="ENG", count=3, statuses=["To Do"])
        env = {"AIRFLOW_CONN_JIRA_DEFER_BASIC": emu.connection_json("basic")}
        with AirflowEnvironment(
            tmp_path_factory.mktemp("airflow-defer"), dags_folder=DAGS, env=env, parallelism=1, triggerer=True
        ) as deployment:
            outcome = {}
            runner = threading.Thread(
                target=lambda: outcome.update(result=deployment.run_dag("jira_deferrable_wait", timeout=400))
            )
            runner.start()

            seen: list[dict] = []
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:  # polling the api-server
                states = task_states(deployment, "jira_deferrable_wait")
                seen.append(states)
                if states.get("probe") == "success" and states.get("wait_for_done") == "deferred":
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"the probe never ran while the sensor was deferred: {seen[-5:]}")

            emu.set_status("ENG-1", "Done")
            runner.join(timeout=300)

        result = outcome["result"]
        result.assert_success()
        assert result.task_states == {"wait_for_done": "success", "probe": "success"}
        assert any(s.get("wait_for_done") == "deferred" for s in seen)
        # The triggerer, not a worker, polled Jira while the task was deferred.
        polls = [r for r in emu.requests if r.path.endswith("/issue/ENG-1")]
        assert len(polls) >= 2
