"""Test session set-up: a throw-away Airflow home and metadata database for in-process tests.

Airflow reads its configuration once, when first imported, so the environment is set here,
before any test module imports it. The metadata database is PostgreSQL when the machine runs
one (a fresh database per session, dropped at the end), SQLite otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow_harness import DEFAULT_POSTGRES_ADMIN_DSN, _create_database, _drop_database, postgres_available

pytest_plugins = ["airflow_provider_jira_auth.testing.pytest_plugin"]

ROOT = Path(__file__).resolve().parents[1]

_HOME = Path(tempfile.mkdtemp(prefix="jira-auth-tests-"))
_PG_DB: str | None = None
if postgres_available():
    _PG_DB = f"jira_auth_tests_{uuid.uuid4().hex[:10]}"
    _create_database(DEFAULT_POSTGRES_ADMIN_DSN, _PG_DB, "airflow-provider-jira-auth test session")
    _SQL_CONN = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{_PG_DB}"
else:
    _SQL_CONN = f"sqlite:///{_HOME / 'airflow.db'}"

os.environ.update(
    AIRFLOW_HOME=str(_HOME),
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=_SQL_CONN,
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(_HOME / "dags"),
    # Encrypted like a real deployment: Variables and connection extras go through Fernet.
    AIRFLOW__CORE__FERNET_KEY="RlP4ZHhSjdVuBXpIq9tRfKJVZSTDnPo1tXEFzDQ7Ybs=",
)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[str]:
    """A migrated metadata database for this session; yields its SQLAlchemy URL."""
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    if proc.returncode:
        pytest.fail(f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    yield _SQL_CONN


@pytest.fixture
def sleeps() -> list[float]:
    """The waits a retry policy asked for, in order (nothing actually sleeps)."""
    return []


@pytest.fixture
def policy(sleeps: list[float]):
    """A retry policy with tiny waits that records them in ``sleeps`` instead of sleeping."""
    from airflow_provider_jira_auth.client.retry import RetryPolicy

    return RetryPolicy(backoff_initial=0.01, retry_after_floor=0.01, sleep=sleeps.append)


# The folders whose tests start real Airflow processes (api-server, scheduler, triggerer, many
# task processes) run first: spread over xdist workers (`make test`), a long test that starts
# last would keep the whole run waiting alone. Within a folder, and for every other folder, the
# collection order stays, so a module's tests stay together with its fixtures.
_SLOW_FIRST = ("stress", "executor", "events", "writeback", "security", "harness", "cli", "ui", "export", "bench")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path))
        folder = path.relative_to(ROOT / "tests").parts[0] if path.is_relative_to(ROOT / "tests") else ""
        return _SLOW_FIRST.index(folder) if folder in _SLOW_FIRST else len(_SLOW_FIRST)

    items.sort(key=rank)  # stable: the collection order within a rank


# Folders whose modules share one session-scoped Airflow deployment (tests/ui/conftest.py): under
# `--dist loadfile` each such folder goes to one xdist worker, which starts the deployment once.
_ONE_WORKER_FOLDERS = ("tests/ui/",)


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """`--dist loadfile`, with each of :data:`_ONE_WORKER_FOLDERS` as one unit of work."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FolderAwareLoadFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((folder for folder in _ONE_WORKER_FOLDERS if path.startswith(folder)), path)

    return FolderAwareLoadFileScheduling(config, log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _PG_DB:
        try:
            from airflow import settings

            if getattr(settings, "engine", None) is not None:
                settings.engine.dispose()
        except Exception:
            pass
        _drop_database(DEFAULT_POSTGRES_ADMIN_DSN, _PG_DB)
