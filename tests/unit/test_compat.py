"""The compatibility layer: the declared Airflow floor is the one the code enforces, and every
module of the package imports on the installed Airflow (the compat CI stage runs this on each minor)."""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

import airflow_provider_jira_auth
from airflow_provider_jira_auth import _compat

ROOT = Path(__file__).resolve().parents[2]


def test_the_declared_airflow_floor_is_the_one_the_code_enforces() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (airflow,) = [d for d in deps if re.match(r"apache-airflow\b(?!-)", d)]
    # the oldest release tested: the latest patch of the oldest supported minor (constraints/)
    assert airflow == f"apache-airflow>={_compat.MIN_AIRFLOW_VERSION}"
    oldest = sorted((ROOT / "constraints").glob("airflow-*.txt"), key=lambda p: Version(p.stem.removeprefix("airflow-")))[0]
    assert f"apache-airflow=={_compat.MIN_AIRFLOW_VERSION}" in oldest.read_text().splitlines()


def test_each_supported_minor_has_known_good_pins_in_the_repository() -> None:
    minors = {p.stem.removeprefix("airflow-") for p in (ROOT / "constraints").glob("airflow-*.txt")}
    assert f"{_compat.AIRFLOW_VERSION.major}.{_compat.AIRFLOW_VERSION.minor}" in minors | {"3.3"}
    assert f"{_compat.MIN_AIRFLOW_VERSION.major}.{_compat.MIN_AIRFLOW_VERSION.minor}" in minors


MODULES = sorted(
    m.name for m in pkgutil.walk_packages(airflow_provider_jira_auth.__path__, "airflow_provider_jira_auth.")
)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_the_names_come_from_where_this_airflow_keeps_them() -> None:
    import inspect

    import airflow.sdk.execution_time.task_runner as runner
    from airflow.sdk.bases.operator import BaseOperator

    # The task runner's run() catches these very classes: one from another module would be
    # treated as an ordinary error (retried instead of failed, timed out or skipped).
    # Imported at module level (3.3) or inside run() (older minors).
    source = inspect.getsource(runner)
    (imported_from,) = set(re.findall(r"from (airflow[\w.]*) import \([^)]*\bAirflowFailException\b", source))
    module = importlib.import_module(imported_from)
    for name in ("AirflowFailException", "AirflowSensorTimeout", "AirflowSkipException", "AirflowRescheduleException"):
        assert getattr(_compat, name) is getattr(module, name), name
    assert hasattr(_compat.BaseHook, "get_connection")
    assert _compat.task_conf().getboolean("core", "load_examples") is False  # tests/conftest.py sets it
    assert _compat.dag_bag_class().__name__ == "DagBag"
    assert _compat.import_string("airflow.sdk.bases.operator.BaseOperator") is BaseOperator
    assert _compat.should_hide_value_for_key("client_secret") and not _compat.should_hide_value_for_key("client_id")


def test_callback_error_reads_the_context_first() -> None:
    error = RuntimeError("boom")
    assert _compat.callback_error({"exception": error}) is error
    assert _compat.callback_error({"reason": "task_failure"}) == "task_failure"
    assert _compat.callback_error({}) is None


def test_callback_error_finds_the_error_the_task_runner_is_finalizing() -> None:
    # dag.test() on Airflow 3.2 calls finalize(ti, state, context, log, error) with the error,
    # but leaves context["exception"] unset: the notifier reads it from that call.
    error = RuntimeError("the source database did not answer")

    def finalize(ti, state, context, log, error=None):
        return _compat.callback_error(context)

    assert finalize(None, None, {}, None, error) is None

    namespace = {"__name__": "airflow.sdk.execution_time.task_runner", "_compat": _compat}
    exec(
        "def finalize(ti, state, context, log, error=None):\n    return _compat.callback_error(context)\n",
        namespace,
    )
    assert namespace["finalize"](None, None, {}, None, error) is error


def test_a_trigger_looks_connections_up_from_async_code(monkeypatch) -> None:
    import asyncio
    import concurrent.futures
    import json

    monkeypatch.setenv("AIRFLOW_CONN_JIRA_ASYNC", json.dumps({"conn_type": "jira_cloud", "host": "https://a.atlassian.net"}))

    # In a thread of its own, as a triggerer's loop: the browser tests' sync Playwright leaves an
    # event loop running in the main thread for the rest of the session.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        conn = pool.submit(asyncio.run, _compat.aget_connection("jira_async")).result()

    assert conn.conn_id == "jira_async" and conn.host == "https://a.atlassian.net"
