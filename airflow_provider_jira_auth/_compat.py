"""What differs between the Airflow 3 minors this provider supports (3.0, 3.1, 3.2, 3.3), in one place.

Every other module imports these names from here instead of choosing an import path itself, so
supporting a minor, or dropping one, is an edit to this file alone. Each choice is made by the
installed Airflow version, never by trying an import and catching the error: a broken install
then fails with Airflow's own ImportError instead of silently taking the other branch.

- ``BaseHook``: ``airflow.sdk`` from 3.1, ``airflow.hooks.base`` in 3.0.
- ``AirflowFailException``, ``AirflowSensorTimeout``, ``AirflowSkipException``,
  ``AirflowRescheduleException``, ``TaskDeferred``: ``airflow.sdk.exceptions`` from 3.2,
  ``airflow.exceptions`` before (the classes the task runner of 3.0 and 3.1 catches).
- ``task_conf()``: ``airflow.sdk.configuration.conf`` from 3.2, ``airflow.configuration.conf`` before.
- ``redact``, ``should_hide_value_for_key``: the SDK's secrets masker, at
  ``airflow.sdk.log`` / ``airflow.sdk._shared.secrets_masker`` from 3.1,
  ``airflow.sdk.execution_time.secrets_masker`` in 3.0.
- ``import_string``: ``airflow.sdk._shared.module_loading`` from 3.2, ``airflow.utils.module_loading`` before.
- ``dag_bag_class()``: ``airflow.dag_processing.dagbag`` from 3.2, ``airflow.models.dagbag`` before.
- ``resolve_user_from_token``: ``airflow.api_fastapi.core_api.security.resolve_user_from_token``
  from 3.1, ``get_user`` (same job) in 3.0.
- ``get_connection(hook, conn_id)``: ``hook.get_connection``, except for a JSON environment
  variable connection that Airflow refuses and reports as not defined: a port that is not a
  number is a ``JiraConfigError`` naming ``port`` (every minor); on 3.0 and 3.1, which refuse an
  extra that is not JSON, the connection is handed over as it is, so the hook's settings name
  the JSON error.
- ``aget_connection(conn_id)``: the same from async code (a trigger): ``BaseHook.aget_connection``
  from 3.1; 3.0 has none, and its triggers call ``BaseHook.get_connection`` through asgiref's
  ``sync_to_async``.
- ``resume_sensor(...)``: ``BaseSensorOperator.resume_execution``; 3.0 fails a ``soft_fail``
  sensor whose deferral timed out (Airflow's own trigger timeout), 3.1+ skips it: so does this.
- ``callback_error(context)``: ``context["exception"]``, except under ``dag.test()`` on 3.2,
  which leaves it empty in task callbacks (see the function).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION_STRING
from packaging.version import Version

if TYPE_CHECKING:
    from airflow.configuration import AirflowConfigParser

__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_VERSION",
    "MIN_AIRFLOW_VERSION",
    "aget_connection",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "TaskDeferred",
    "callback_error",
    "dag_bag_class",
    "get_connection",
    "import_string",
    "redact",
    "resolve_user_from_token",
    "resume_sensor",
    "should_hide_value_for_key",
    "task_conf",
]

#: The oldest Airflow this provider runs on; pyproject's ``apache-airflow>=`` says the same
#: (a unit test checks they agree).
MIN_AIRFLOW_VERSION = Version("3.0.6")

AIRFLOW_VERSION = Version(Version(AIRFLOW_VERSION_STRING).base_version)
AIRFLOW_V_3_1_PLUS = AIRFLOW_VERSION >= Version("3.1.0")
AIRFLOW_V_3_2_PLUS = AIRFLOW_VERSION >= Version("3.2.0")

if AIRFLOW_VERSION < MIN_AIRFLOW_VERSION:  # pragma: no cover - pip refuses this install
    raise ImportError(f"airflow-provider-jira-auth needs apache-airflow>={MIN_AIRFLOW_VERSION}, found {AIRFLOW_VERSION_STRING}")

if AIRFLOW_V_3_1_PLUS:
    from airflow.sdk import BaseHook
else:
    from airflow.hooks.base import BaseHook

if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
else:
    from airflow.exceptions import (  # the task runner of 3.0 and 3.1 catches these classes
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )


def redact(value: Any) -> Any:
    """``value`` with the secrets Airflow's masker knows replaced, as in task logs."""
    if AIRFLOW_V_3_1_PLUS:
        from airflow.sdk.log import redact as mask
    else:
        from airflow.sdk.execution_time.secrets_masker import redact as mask
    return mask(value)


def task_conf() -> AirflowConfigParser:
    """Airflow's configuration as a task or DAG file reads it."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.sdk.configuration import conf
    else:
        from airflow.configuration import conf
    return conf


def should_hide_value_for_key(name: str) -> bool:
    """Whether Airflow masks a connection extra or Variable of this name."""
    if AIRFLOW_V_3_1_PLUS:
        from airflow.sdk._shared.secrets_masker import should_hide_value_for_key as hide
    else:
        from airflow.sdk.execution_time.secrets_masker import should_hide_value_for_key as hide
    return bool(hide(name))


def import_string(dotted_path: str) -> Any:
    """The object a ``module.attr`` path names (what Airflow does with a trigger's class path)."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.sdk._shared.module_loading import import_string as load
    else:
        from airflow.utils.module_loading import import_string as load
    return load(dotted_path)


def dag_bag_class() -> type:
    """Airflow's ``DagBag``, which moved to ``airflow.dag_processing`` in 3.2."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    return DagBag


async def resolve_user_from_token(token: str) -> Any:
    """The api-server user a JWT belongs to; raises FastAPI's ``HTTPException`` for a bad token."""
    if AIRFLOW_V_3_1_PLUS:
        from airflow.api_fastapi.core_api.security import resolve_user_from_token as resolve
    else:
        from airflow.api_fastapi.core_api.security import get_user as resolve
    return await resolve(token)


async def aget_connection(conn_id: str) -> Any:
    """A connection looked up from async code (a trigger), without blocking the event loop;
    a connection in the environment that Airflow refuses is judged as :func:`get_connection` does."""
    from airflow.exceptions import AirflowNotFoundException
    from asgiref.sync import sync_to_async

    try:
        if AIRFLOW_V_3_1_PLUS:
            return await BaseHook.aget_connection(conn_id)
        return await sync_to_async(BaseHook.get_connection)(conn_id)
    except AirflowNotFoundException:
        # Through asgiref, as Airflow's own lookup: masking a secret talks to the supervisor
        # synchronously, which asgiref hands back to the triggerer's event loop.
        conn = await sync_to_async(_refused_from_environment)(conn_id)
        if conn is None:
            raise
        return conn


def get_connection(hook: Any, conn_id: str) -> Any:
    """``hook.get_connection(conn_id)``, with a clear error for a connection Airflow refuses.

    Airflow reports a connection in the environment (``AIRFLOW_CONN_<ID>`` holding a JSON
    object) that it cannot read as not defined, the reason at most in a debug log. For that form
    this names what is wrong: a port that is not a number is a ``JiraConfigError`` naming
    ``port``; on Airflow 3.0 and 3.1, an extra that is not JSON gives the connection as Airflow
    3.2+ does, the extra string as written, so that validating it says what is wrong and where.
    Any other missing connection is Airflow's error, unchanged.
    """
    from airflow.exceptions import AirflowNotFoundException

    try:
        return hook.get_connection(conn_id)
    except AirflowNotFoundException:
        conn = _refused_from_environment(conn_id)
        if conn is None:
            raise
        return conn


def _refused_from_environment(conn_id: str) -> Any:
    """For a connection Airflow did not find: raise or return as :func:`get_connection` says, or None."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", "")
    try:
        fields = json.loads(raw) if raw.lstrip().startswith("{") else None
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    _refuse_a_bad_port(conn_id, fields.get("port"))
    if AIRFLOW_V_3_2_PLUS or not _is_not_json(fields.get("extra")):
        return None
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    kept = {k: fields[k] for k in ("conn_type", "description", "host", "schema", "login", "password") if k in fields}
    if fields.get("port") not in (None, ""):
        kept["port"] = int(fields["port"])
    conn = Connection(conn_id=conn_id, extra=fields["extra"], **kept)  # 3.0's has no from_json
    for secret in (conn.password, conn.extra):
        if secret:
            mask_secret(str(secret))
    return conn


def _refuse_a_bad_port(conn_id: str, port: Any) -> None:
    if port in (None, ""):
        return
    try:
        int(port)  # as Airflow reads it
        return
    except (TypeError, ValueError):
        pass
    from airflow_provider_jira_auth.client.errors import JiraConfigError

    raise JiraConfigError(
        "port", f"{port!r} in AIRFLOW_CONN_{conn_id.upper()} is not a number: leave it out (Jira Cloud needs no port)"
    )


def _is_not_json(extra: Any) -> bool:
    """Whether ``extra`` is a string that is not JSON."""
    if not isinstance(extra, str):
        return False
    try:
        json.loads(extra)
    except ValueError:
        return True
    return False


def resume_sensor(resume: Any, sensor: Any, next_method: str, next_kwargs: Any, context: Any) -> Any:
    """``resume(next_method, next_kwargs, context)``, the sensor's ``BaseSensorOperator.resume_execution``.

    Airflow 3.0 turns a deferral timeout into ``AirflowSensorTimeout`` after its ``soft_fail``
    check, so a ``soft_fail`` sensor fails; 3.1 and later skip it, as in poke mode.
    """
    if AIRFLOW_V_3_1_PLUS:
        return resume(next_method, next_kwargs, context)
    try:
        return resume(next_method, next_kwargs, context)
    except AirflowSensorTimeout as e:
        if getattr(sensor, "soft_fail", False):
            raise AirflowSkipException("Skipping due to soft_fail is set to True.") from e
        raise


_TASK_RUNNER = "airflow.sdk.execution_time.task_runner"


def callback_error(context: Mapping[str, Any]) -> BaseException | str | None:
    """The error a failure or retry callback is about, or None when Airflow passed none.

    ``context["exception"]`` (task callbacks) or ``context["reason"]`` (DAG callbacks). Under
    ``dag.test()`` / ``airflow dags test`` Airflow 3.2 runs task callbacks without setting
    ``context["exception"]``; the error is still the ``error`` argument of the task runner's
    ``finalize()``, which is running the callback, so it is read from there.
    """
    error = context.get("exception") or context.get("reason")
    if error is not None:
        return error
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "finalize" and frame.f_globals.get("__name__") == _TASK_RUNNER:
            found = frame.f_locals.get("error")
            return found if isinstance(found, BaseException) else None
        frame = frame.f_back
    return None
