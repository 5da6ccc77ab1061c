"""A user's project tests its DAG with ``dag.test()`` using only the plugin's fixtures, in a fresh pytest.

The child pytest gets no Airflow settings at all (no AIRFLOW_HOME, no database URL), as on a
developer's machine: the plugin gives it a throw-away home, ``airflow_metadata_db`` migrates its
database and ``load_dag`` puts the DAG where ``dag.test()`` finds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

USER_DAG = '''
from datetime import datetime, timezone
from airflow.sdk import dag
from airflow_provider_jira_auth.operators.jira_cloud import JiraSearchOperator

@dag(schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc))
def count_bugs():
    JiraSearchOperator(task_id="bugs", jql="project = ENG", fields=["summary"])

count_bugs()
'''

USER_TEST = '''
import os
from pathlib import Path

pytest_plugins = ["airflow_provider_jira_auth.testing.pytest_plugin"]


def test_my_dag(jira_cloud_connection, load_dag):
    jira_cloud_connection.seed_issues(project="ENG", count=3)
    dag = load_dag(Path(__file__).parent / "dags" / "count_bugs.py")
    run = dag.test()
    assert run.state == "success"
    assert os.environ["AIRFLOW_HOME"] != str(Path.home() / "airflow")
'''


def test_a_users_dag_test_runs_with_the_plugins_fixtures_alone(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "count_bugs.py").write_text(textwrap.dedent(USER_DAG))
    (tmp_path / "test_my_dag.py").write_text(textwrap.dedent(USER_TEST))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST"))}
    env["HOME"] = str(tmp_path / "home")  # were ~/airflow touched, it would be here

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_dag.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )

    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
    assert not (tmp_path / "home" / "airflow").exists()
