"""pytest fixtures around the Jira Cloud emulator, and a metadata database for ``dag.test()``.

Enable them in a ``conftest.py``::

    pytest_plugins = ["airflow_provider_jira_auth.testing.pytest_plugin"]

``dag.test()`` runs a DAG in the test process, but it still needs what a deployment has: a
migrated metadata database (else ``sqlite3.OperationalError: no such table: task_instance``)
and the DAG's file inside the DAGs folder (it serializes the DAG from there). So:

* when the test session starts and ``AIRFLOW_HOME`` is not set, the plugin points Airflow at a
  throw-away home in a temporary directory (SQLite database, example DAGs off), so that no test
  touches ``~/airflow``. Set ``AIRFLOW_HOME`` (or ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``) yourself
  to choose another;
* :func:`airflow_metadata_db` migrates that database once per session (``airflow db migrate``);
* :func:`load_dag` puts a DAG file in the DAGs folder and returns the DAG, ready for ``.test()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .emulator import JiraCloudEmulator

_OWN_HOME: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    """A throw-away Airflow home, unless the environment names one (or Airflow is configured already)."""
    if "AIRFLOW_HOME" in os.environ or "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in os.environ or "airflow" in sys.modules:
        return
    home = Path(tempfile.mkdtemp(prefix="airflow-test-home-"))
    _OWN_HOME.append(home)
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    while _OWN_HOME:
        shutil.rmtree(_OWN_HOME.pop(), ignore_errors=True)


@dataclass(frozen=True)
class AirflowMetadataDB:
    """The migrated metadata database of the test session."""

    sql_alchemy_conn: str
    home: Path
    dags_folder: Path


@pytest.fixture(scope="session")
def airflow_metadata_db() -> AirflowMetadataDB:
    """The session's Airflow metadata database, migrated (``airflow db migrate``): what ``dag.test()`` needs."""
    from airflow.configuration import AIRFLOW_HOME, conf

    airflow = Path(sys.executable).with_name("airflow")
    command = [str(airflow)] if airflow.exists() else [sys.executable, "-m", "airflow"]
    proc = subprocess.run([*command, "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode:
        pytest.fail(f"airflow db migrate failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    dags_folder = Path(conf.get("core", "dags_folder"))
    dags_folder.mkdir(parents=True, exist_ok=True)
    return AirflowMetadataDB(
        sql_alchemy_conn=conf.get("database", "sql_alchemy_conn"),
        home=Path(AIRFLOW_HOME),
        dags_folder=dags_folder,
    )


@pytest.fixture
def load_dag(airflow_metadata_db: AirflowMetadataDB) -> Callable[..., Any]:
    """``load_dag(path, dag_id=None)``: the DAG of ``path``, its file copied into the DAGs folder, for ``.test()``.

    Fails the test, with Airflow's message, if the file does not import.
    """
    from airflow_provider_jira_auth._compat import dag_bag_class

    def load(path: str | os.PathLike[str], dag_id: str | None = None) -> Any:
        source = Path(path).resolve()
        target = airflow_metadata_db.dags_folder / source.name
        if source != target.resolve():
            shutil.copyfile(source, target)
        bag = dag_bag_class()(dag_folder=str(target))
        if bag.import_errors:
            pytest.fail(f"{source} does not import: {bag.import_errors}")
        chosen = dag_id or (bag.dag_ids[0] if len(bag.dag_ids) == 1 else None)
        if chosen is None or chosen not in bag.dag_ids:
            pytest.fail(f"{source} defines {sorted(bag.dag_ids)}: name the dag_id to load")
        return bag.get_dag(chosen)

    return load


@pytest.fixture
def jira_emulator() -> Iterator[JiraCloudEmulator]:
    """A fresh, running emulator for one test, stopped afterwards."""
    with JiraCloudEmulator() as emulator:
        yield emulator


@pytest.fixture
def jira_cloud_connection(jira_emulator: JiraCloudEmulator, monkeypatch: pytest.MonkeyPatch) -> JiraCloudEmulator:
    """Points connection ``jira_cloud_default`` (Basic auth) at ``jira_emulator``; returns the emulator."""
    monkeypatch.setenv("AIRFLOW_CONN_JIRA_CLOUD_DEFAULT", jira_emulator.connection_json("basic"))
    return jira_emulator
