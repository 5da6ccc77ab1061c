"""Run DAGs under a real Airflow executor from pytest.

``dag.test()`` and ``airflow dags test`` run tasks in the test process: the ORM is not blocked and
task logs are not masked there (Airflow 3: tasks run in-process, outside the supervisor). This module starts a
throw-away Airflow deployment instead -- its own AIRFLOW_HOME, its own metadata database, an
``airflow api-server``, an ``airflow scheduler`` with the LocalExecutor and an
``airflow dag-processor`` -- so that tasks run in processes forked and supervised the way
production runs them.

Why scheduler + dag-processor rather than ``airflow dags test --use-executor`` with an api-server:
both fork and supervise tasks the same way (LocalExecutor), but ``dags test`` pays a CLI start, a
parse of the DAGs folder and an executor start on every run (13-16 s for 8 tasks sleeping 3 s,
against 5-8 s here), and it is not how a deployment schedules. The services cost ~2 s more at start.

It is a plain module (no pytest import at module level); ``airflow_environment_fixture()`` builds a
pytest fixture from it. It never imports Airflow into the test process: Airflow reads its
configuration once at import time, and every environment has its own.

Usage (as ``tests.airflow_harness`` under ``python -m pytest`` from the project root, or as
``airflow_harness`` with ``tests/`` on ``sys.path``)::

    # tests/conftest.py
    from tests.airflow_harness import airflow_environment_fixture

    airflow_env = airflow_environment_fixture(Path(__file__).parent / "dags", env={...})

    # a test
    def test_x(airflow_env):
        result = airflow_env.run_dag("my_dag", conf={"k": "v"})
        result.assert_success()
        assert "***" in result.logs["my_task"]

Everything the environment writes lives under ``root``: ``home/`` (AIRFLOW_HOME, airflow.cfg,
``env.sh`` to reproduce by hand), ``logs/tasks`` (task logs), ``logs/services/<name>.log`` (stdout and
stderr of api-server, scheduler, dag-processor, db-migrate, CLI calls in ``cli.log``; what the harness
did, with timings, in ``harness.log``), ``airflow.db`` with SQLite. ``diagnostics()`` gives their tails.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "AirflowEnvironment",
    "AirflowHarnessError",
    "DagRunResult",
    "airflow_environment_fixture",
    "postgres_available",
]

DEFAULT_POSTGRES_ADMIN_DSN = os.environ.get(
    "AIRFLOW_HARNESS_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
"""libpq DSN of a database the harness may connect to in order to CREATE/DROP its own databases."""

_DB_PREFIX = "airflow_harness_"
_TERMINAL_RUN_STATES = {"success", "failed"}
_API_TOKEN_TTL = 3600


class AirflowHarnessError(RuntimeError):
    """The Airflow environment could not be started or did not behave; message carries log tails."""


# --------------------------------------------------------------------------------------------------
# results


@dataclass
class DagRunResult:
    """The outcome of one DAG run.

    ``task_states`` and ``logs`` are keyed by task id, or ``"task_id[map_index]"`` for mapped tasks.
    ``logs`` holds the raw text of every attempt's log file, oldest first (Airflow 3 writes one JSON
    object per line); ``log_files`` the files it was read from.
    """

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]
    logs: dict[str, str]
    log_files: dict[str, list[Path]] = field(default_factory=dict)
    duration: float = 0.0
    diagnostics: str = ""  # tails of the service logs, filled when the run did not succeed

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    def events(self, task_id: str) -> list[dict[str, Any]]:
        """The task's log lines parsed as JSON (lines that are not JSON become ``{"event": line}``)."""
        out: list[dict[str, Any]] = []
        for line in self.logs.get(task_id, "").splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            out.append(obj if isinstance(obj, dict) else {"event": line})
        return out

    def text(self, task_id: str) -> str:
        """Human-readable log of one task: ``level event`` per line, exceptions as tracebacks."""
        lines = []
        for e in self.events(task_id):
            lines.append(f"{e.get('level', ''):<8} {e.get('event', '')}")
            lines += _format_error_detail(e.get("error_detail"))
        return "\n".join(lines)

    def describe(self) -> str:
        lines = [f"dag run {self.dag_id}/{self.run_id}: {self.state} in {self.duration:.1f}s"]
        lines += [f"  {tid}: {st}" for tid, st in sorted(self.task_states.items())]
        for tid, st in sorted(self.task_states.items()):
            if st not in ("success", "skipped"):
                lines += [f"---- log of {tid} ({st}) ----", _tail(self.text(tid), 60)]
        if self.diagnostics:
            lines += [self.diagnostics]
        return "\n".join(lines)

    def assert_success(self) -> DagRunResult:
        """Raise ``AssertionError`` (with the logs of the tasks that did not succeed and the service
        log tails) unless the run and every task succeeded (or were skipped)."""
        if self.state != "success" or any(s not in ("success", "skipped") for s in self.task_states.values()):
            raise AssertionError(self.describe())
        return self


def _format_error_detail(detail: Any) -> list[str]:
    """Airflow 3 logs an exception as ``error_detail``: a list of {exc_type, exc_value, frames}."""
    if not detail:
        return []
    if not isinstance(detail, list):
        return [f"    {detail}"]
    out = []
    for exc in detail:
        if not isinstance(exc, dict):
            out.append(f"    {exc}")
            continue
        out += [
            f"    File {f.get('filename')}:{f.get('lineno')} in {f.get('name')}"
            for f in exc.get("frames", [])
        ]
        out.append(f"    {exc.get('exc_type')}: {exc.get('exc_value')}")
    return out


# --------------------------------------------------------------------------------------------------
# process bookkeeping: every Airflow process is a session leader; stop() kills whole sessions


def _session_members(sid: int) -> list[int]:
    """PIDs whose session id is ``sid`` (Linux /proc). Task runners call setpgid(), not setsid(),
    so they stay in their service's session even though they leave its process group."""
    pids = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read().decode(errors="replace")
            except OSError:
                continue
            # pid (comm) state ppid pgrp session ...; comm may contain spaces and parentheses.
            # Zombies are dead already (waiting for their parent to reap them).
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 3 and int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                pids.append(int(entry))
    return pids


def _kill_session(sid: int, sig: int) -> None:
    members = _session_members(sid) if os.path.isdir("/proc") else []
    groups = {sid}
    for pid in members:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)
    for pid in members:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def _session_alive(sid: int) -> bool:
    if os.path.isdir("/proc"):
        return bool(_session_members(sid))
    try:
        os.killpg(sid, 0)
        return True
    except OSError:
        return False


def _describe_session(sid: int) -> str:
    out = []
    for pid in _session_members(sid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "?"
        out.append(f"{pid}:{cmd[:70]}")
    return ", ".join(out)


def _terminate_sessions(
    sids: Iterable[int], grace: float = 10.0, report: Callable[[str], None] | None = None
) -> None:
    """SIGTERM each session leader (as a container runtime would: the scheduler then ends its
    executor workers and reaps them), SIGTERM the rest after ``grace / 2``, SIGKILL what is left
    after ``grace``. ``report`` hears which processes needed escalation."""
    sids = list(sids)
    for sid in sids:
        with contextlib.suppress(OSError):
            os.kill(sid, signal.SIGTERM)
    start = time.monotonic()
    escalated = False
    while True:  # polling: a session's end is signalled to no one but its parent
        alive = [s for s in sids if _session_alive(s)]
        if not alive:
            return
        elapsed = time.monotonic() - start
        if elapsed > grace:
            if report:
                report(f"SIGKILL after {elapsed:.1f}s: " + "; ".join(_describe_session(s) for s in alive))
            for sid in alive:
                _kill_session(sid, signal.SIGKILL)
            return
        if elapsed > grace / 2 and not escalated:
            escalated = True
            if report:
                report(
                    f"SIGTERM to all after {elapsed:.1f}s: " + "; ".join(_describe_session(s) for s in alive)
                )
            for sid in alive:
                _kill_session(sid, signal.SIGTERM)
        time.sleep(0.1)


# The watchdog outlives a test process that is SIGKILLed (where atexit never runs): it polls its
# parent and, once reparented, kills the recorded sessions and drops the recorded database.
_WATCHDOG_SOURCE = textwrap.dedent(
    """
    import json, os, signal, sys, time
    state_file, parent = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.path.insert(0, sys.argv[3])
    import airflow_harness as h
    while os.getppid() == parent:  # polling: nothing tells a process its parent died
        time.sleep(1)
        try:
            with open(state_file) as f:
                if json.load(f).get("stopped"):
                    sys.exit(0)
        except (OSError, ValueError):
            pass
    try:
        with open(state_file) as f:
            state = json.load(f)
    except (OSError, ValueError):
        sys.exit(0)
    if not state.get("stopped"):
        h._terminate_sessions(state.get("sessions", []), grace=5)
        if state.get("database"):
            h._drop_database(state["admin_dsn"], state["database"])
    """
)


# --------------------------------------------------------------------------------------------------
# PostgreSQL helpers (psycopg2 is a test dependency)


def postgres_available(admin_dsn: str = DEFAULT_POSTGRES_ADMIN_DSN, timeout: float = 2.0) -> bool:
    """True when the PostgreSQL server of ``admin_dsn`` accepts connections."""
    try:
        import psycopg2
    except ImportError:
        return False
    try:
        psycopg2.connect(admin_dsn, connect_timeout=max(1, int(timeout))).close()
        return True
    except Exception:
        return False


def _pg_admin(admin_dsn: str):
    import psycopg2

    conn = psycopg2.connect(admin_dsn, connect_timeout=5)
    conn.autocommit = True
    return conn


def _create_database(admin_dsn: str, name: str, comment: str) -> None:
    conn = _pg_admin(admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
            cur.execute(f'COMMENT ON DATABASE "{name}" IS %s', (comment,))
    finally:
        conn.close()


def _drop_database(admin_dsn: str, name: str) -> None:
    try:
        conn = _pg_admin(admin_dsn)
    except Exception:
        return
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # PostgreSQL 13+
            except Exception:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    except Exception:
        pass
    finally:
        conn.close()


def _drop_stale_databases(admin_dsn: str) -> list[str]:
    """Drop harness databases left by a process of this host that no longer exists."""
    host = socket.gethostname()
    dropped = []
    try:
        conn = _pg_admin(admin_dsn)
    except Exception:
        return dropped
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT d.datname, shobj_description(d.oid, 'pg_database'),"
                " (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname)"
                " FROM pg_database d WHERE d.datname LIKE %s",
                (_DB_PREFIX + "%",),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    for name, comment, connections in rows:
        try:
            owner = json.loads(comment or "{}")
        except ValueError:
            continue
        if owner.get("host") != host or connections:
            continue
        pid = int(owner.get("pid", 0))
        if pid and not _pid_alive(pid):
            _drop_database(admin_dsn, name)
            dropped.append(name)
    return dropped


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# --------------------------------------------------------------------------------------------------
# misc helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _read_tail(path: Path, lines: int = 40, max_bytes: int = 200_000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return _tail(f.read().decode(errors="replace"), lines)
    except OSError as e:
        return f"<cannot read {path}: {e}>"


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# --------------------------------------------------------------------------------------------------
# the environment


Database = Literal["postgres", "sqlite", "auto"]


class AirflowEnvironment:
    """One throw-away Airflow deployment: AIRFLOW_HOME under ``root``, its own metadata DB, services.

    :param root: an empty (or new) directory owned by this environment.
    :param dags_folder: the DAGs folder (the ``dags-folder`` bundle). Files may be added later:
        ``run_dag`` waits until the dag-processor has stored the DAG (it lists the folder every 5 s).
    :param database: ``postgres`` (a fresh database ``airflow_harness_<pid>_<hex>`` on
        ``postgres_admin_dsn``, dropped by ``stop()``), ``sqlite`` (``root/airflow.db``), or ``auto``
        (PostgreSQL if it answers, SQLite otherwise). SQLite runs parallel tasks fine, but NOT tasks
        that write through the public REST API (e.g. PATCH a connection) while other tasks run: the
        api-server then stalls on SQLite's lock and requests fail. Ask for ``postgres`` there.
    :param env: extra environment variables for every Airflow process (and so for every task),
        e.g. ``AIRFLOW_CONN_*``. They override the harness' own settings.
    :param config: extra Airflow settings ``{"section": {"key": "value"}}``; override the defaults.
    :param parallelism: ``[core] parallelism`` (LocalExecutor worker processes) and
        ``max_active_tasks_per_dag``.
    :param triggerer: also start ``airflow triggerer`` (deferrable operators).
    """

    def __init__(
        self,
        root: Path | str,
        *,
        dags_folder: Path | str,
        database: Database = "auto",
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        parallelism: int = 16,
        api_workers: int = 1,
        triggerer: bool = False,
        postgres_admin_dsn: str = DEFAULT_POSTGRES_ADMIN_DSN,
        python: str | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        if database not in ("postgres", "sqlite", "auto"):
            raise ValueError(f"database must be 'postgres', 'sqlite' or 'auto', not {database!r}")
        self.root = Path(root).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        self.parallelism = parallelism
        self.api_workers = api_workers
        self.triggerer = triggerer
        self.python = python or sys.executable
        self.startup_timeout = startup_timeout
        self.postgres_admin_dsn = postgres_admin_dsn
        self._requested_database: Database = database
        self._extra_env = dict(env or {})
        self._extra_config = {s: dict(v) for s, v in (config or {}).items()}

        self.home = self.root / "home"
        self.log_dir = self.root / "logs"
        self.task_log_folder = self.log_dir / "tasks"
        self.service_log_dir = self.log_dir / "services"
        self.database_kind: Literal["postgres", "sqlite"] | None = None
        self.database_name: str | None = None  # PostgreSQL only
        self.sql_alchemy_conn: str = ""
        self.port = 0
        self.api_url = ""
        self.env: dict[str, str] = {}
        self.timings: dict[str, float] = {}

        self._services: dict[str, subprocess.Popen] = {}
        self._sessions: set[int] = set()  # every session we started, services and CLI runs
        self._lock = threading.RLock()
        self._state_file = self.root / "harness-state.json"
        self._watchdog: subprocess.Popen | None = None
        self._token: tuple[str, float] | None = None
        # generated once: every process, and every re-configuration, must agree on them
        self._fernet_key = _fernet_key()
        self._jwt_secret = secrets.token_hex(32)
        self._api_secret_key = secrets.token_hex(16)
        self._started = False
        self._stopped = False
        self._run_counter = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> AirflowEnvironment:
        """Configure, migrate the DB, start the services and wait until they are healthy.

        On failure everything started so far is stopped and ``AirflowHarnessError`` carries the
        service log tails.
        """
        if self._started:
            return self
        self._started = True
        t0 = time.monotonic()
        try:
            for d in (self.home, self.task_log_folder, self.service_log_dir):
                d.mkdir(parents=True, exist_ok=True)
            atexit.register(self.stop)
            self._choose_database()
            self._start_watchdog()
            self._configure()
            t = time.monotonic()
            self.airflow("db", "migrate", timeout=300, log_name="db-migrate")
            self.timings["db_migrate"] = time.monotonic() - t
            t = time.monotonic()
            self._start_services()
            self.timings["services_start"] = time.monotonic() - t
        except BaseException as e:
            diag = self.diagnostics()
            self.stop()
            if not isinstance(e, Exception):  # KeyboardInterrupt, pytest's Failed/Exit, ...
                raise
            if isinstance(e, AirflowHarnessError):
                raise AirflowHarnessError(f"{e}\n{diag}") from None
            raise AirflowHarnessError(f"starting Airflow failed: {e!r}\n{diag}") from e
        self.timings["start_total"] = time.monotonic() - t0
        self._note(
            f"started {self.database_kind} {self.database_name or ''} {self.api_url} timings={self.timings}"
        )
        return self

    def _start_services(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self._spawn(
                "api-server",
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.api_workers),
            )
            # --skip-serve-logs: no log server port to collide with other environments; the
            # api-server reads task logs from the local folder.
            self._spawn("scheduler", "scheduler", "--skip-serve-logs")
            self._spawn("dag-processor", "dag-processor")
            if self.triggerer:
                self._spawn("triggerer", "triggerer")
            try:
                self._wait_healthy()
                return
            except AirflowHarnessError:
                api = self._services["api-server"]
                port_taken = (
                    api.poll() is not None
                    and "address already in use" in self.service_log("api-server").lower()
                )
                if not port_taken or attempt == attempts:
                    raise
            # another process took our free port between probing and binding: new ports, again
            sids = [p.pid for p in self._services.values()]
            _terminate_sessions(sids, grace=5)
            for proc in self._services.values():
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
            with self._lock:
                self._sessions.difference_update(sids)
                self._write_state()
            self._services.clear()
            self._configure()

    def stop(self) -> None:
        """Kill every process this environment started (whole sessions, task runners included) and
        drop its PostgreSQL database. Idempotent; also registered with atexit."""
        with self._lock:
            if self._stopped or not self._started:
                return
            self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        t = time.monotonic()
        _terminate_sessions(list(self._sessions), report=self._note)
        self.timings["stop"] = time.monotonic() - t
        for proc in self._services.values():
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        if self.database_kind == "postgres" and self.database_name:
            _drop_database(self.postgres_admin_dsn, self.database_name)
        self._write_state(stopped=True)
        if self._watchdog is not None:
            with contextlib.suppress(Exception):
                self._watchdog.wait(timeout=3)
            if self._watchdog.poll() is None:
                with contextlib.suppress(OSError):
                    self._watchdog.kill()
                    self._watchdog.wait(timeout=3)

    @property
    def session_ids(self) -> list[int]:
        """Session ids of every process group this environment started (services and running CLI
        calls); all their descendants, task runners included, share them."""
        with self._lock:
            return sorted(self._sessions)

    def __enter__(self) -> AirflowEnvironment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- configuration

    def _choose_database(self) -> None:
        kind = self._requested_database
        if kind == "auto":
            kind = "postgres" if postgres_available(self.postgres_admin_dsn) else "sqlite"
        if kind == "postgres":
            with contextlib.suppress(Exception):
                _drop_stale_databases(self.postgres_admin_dsn)
            name = f"{_DB_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
            owner = {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "root": str(self.root),
                "created": time.time(),
            }
            _create_database(self.postgres_admin_dsn, name, json.dumps(owner))
            self.database_name = name
            self.database_kind = "postgres"
            self._write_state()
            from psycopg2.extensions import parse_dsn

            params = parse_dsn(self.postgres_admin_dsn)
            user = urllib.parse.quote(params.get("user", "postgres"), safe="")
            password = params.get("password")
            auth = user + (":" + urllib.parse.quote(password, safe="") if password else "")
            host = params.get("host", "127.0.0.1")
            port = params.get("port", "5432")
            self.sql_alchemy_conn = f"postgresql+psycopg2://{auth}@{host}:{port}/{name}"
        else:
            self.database_kind = "sqlite"
            # Fine for runs whose tasks do not write through the public REST API. When they do, the
            # api-server's async action_logging dependency writes with a sync session on the event
            # loop; if a threadpool request holds SQLite's write lock at that moment, the loop blocks
            # until the busy timeout and the requests fail (HTTP 500 / task ReadTimeout). PostgreSQL
            # has no such stall.
            self.sql_alchemy_conn = f"sqlite:///{self.root / 'airflow.db'}"

    def settings(self) -> dict[str, dict[str, str]]:
        """Every Airflow setting the harness sets, by section (before ``config`` overrides)."""
        base_url = self.api_url
        return {
            "core": {
                "dags_folder": str(self.dags_folder),
                "executor": "LocalExecutor",
                "parallelism": str(self.parallelism),
                "max_active_tasks_per_dag": str(self.parallelism),
                "load_examples": "False",
                "dags_are_paused_at_creation": "False",
                "fernet_key": self._fernet_key,
                "execution_api_server_url": f"{base_url}/execution/",
                # dev-only: GET /auth/token hands out an admin JWT without credentials; lets a task
                # call the public REST API (e.g. PATCH /api/v2/connections/{id}).
                "simple_auth_manager_all_admins": "True",
                "auth_manager": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
            },
            "database": {
                "sql_alchemy_conn": self.sql_alchemy_conn,
                # small pools: many environments (and developers) share one PostgreSQL server
                "sql_alchemy_pool_size": "3",
                "sql_alchemy_max_overflow": "10",
            },
            "api": {
                "host": "127.0.0.1",
                "port": str(self.port),
                "base_url": base_url,
                "workers": str(self.api_workers),
                "secret_key": self._api_secret_key,
                "expose_config": "True",
            },
            # One secret for every process: the executor signs task JWTs that the api-server checks.
            "api_auth": {"jwt_secret": self._jwt_secret},
            "logging": {
                "base_log_folder": str(self.task_log_folder),
                "dag_processor_child_process_log_directory": str(self.log_dir / "dag_processor"),
                "worker_log_server_port": str(_free_port()),
                "trigger_log_server_port": str(_free_port()),
            },
            # A supervisor notices its task process exited only when its select() (up to
            # min_heartbeat_interval, default 5 s) returns: until then the executor slot stays busy
            # and stop() waits for it.
            "workers": {"min_heartbeat_interval": "2"},
            "scheduler": {
                "scheduler_idle_sleep_time": "0.5",
                "enable_health_check": "False",
            },
            "dag_processor": {
                "refresh_interval": "5",
                "parsing_processes": "1",
                "min_file_process_interval": "10",
                "print_stats_interval": "300",
            },
        }

    def _configure(self) -> None:
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        settings = self.settings()
        for section, values in self._extra_config.items():
            settings.setdefault(section, {}).update({k: str(v) for k, v in values.items()})

        # airflow.cfg for humans (`export AIRFLOW_HOME=...`); the same values also go into env vars,
        # which beat airflow.cfg, so that no AIRFLOW__* variable of the test process leaks in.
        cfg = []
        for section, values in settings.items():
            cfg.append(f"[{section}]")
            cfg += [f"{k} = {v}" for k, v in values.items()]
            cfg.append("")
        (self.home / "airflow.cfg").write_text("\n".join(cfg))

        env = {
            k: v for k, v in os.environ.items() if not (k.startswith("AIRFLOW") or k.startswith("_AIRFLOW"))
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONUNBUFFERED": "1",
                # tasks find the public API here (also in conf [api] base_url)
                "AIRFLOW_HARNESS_API_URL": self.api_url,
            }
        )
        for section, values in settings.items():
            for key, value in values.items():
                env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = str(value)
        env.update(self._extra_env)
        self.env = env
        (self.home / "env.sh").write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()) if "AIRFLOW" in k)
        )

    # ---------------------------------------------------------------- processes

    def _note(self, message: str) -> None:
        """Append to logs/services/harness.log (what the harness itself did and saw)."""
        with contextlib.suppress(OSError):
            with open(self.service_log_dir / "harness.log", "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    def _write_state(self, *, stopped: bool = False) -> None:
        state = {
            "sessions": sorted(self._sessions),
            "database": self.database_name if self.database_kind == "postgres" else None,
            "admin_dsn": self.postgres_admin_dsn,
            "stopped": stopped,
        }
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._state_file)

    def _start_watchdog(self) -> None:
        self._write_state()
        log = open(self.service_log_dir / "watchdog.log", "ab")
        try:
            self._watchdog = subprocess.Popen(
                [
                    self.python,
                    "-c",
                    _WATCHDOG_SOURCE,
                    str(self._state_file),
                    str(os.getpid()),
                    str(Path(__file__).parent),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    def _register_session(self, pid: int) -> None:
        with self._lock:
            self._sessions.add(pid)
            self._write_state()

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log_path = self.service_log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "airflow", *args],
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._services[name] = proc
        self._register_session(proc.pid)
        return proc

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one service's whole session (``SIGKILL``: no clean shutdown) and wait until it is gone."""
        proc = self._services.pop(name)
        _kill_session(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _session_alive(proc.pid) and time.monotonic() < deadline:  # polling: until the session is gone
            time.sleep(0.2)
        with self._lock:
            self._sessions.discard(proc.pid)
            self._write_state()
        self._note(f"killed {name} (session {proc.pid}) with signal {sig}")

    def start_service(self, name: str, *args: str) -> None:
        """Start a service again after ``kill_service`` (``args``: its CLI words, default ``name``)."""
        self._spawn(name, *(args or (name,)))
        self._note(f"started {name}")

    def airflow(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 300,
        log_name: str | None = "cli",
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run ``airflow <args>`` with this environment; stdout/stderr are captured (and appended to
        ``logs/services/<log_name>.log``, default ``cli.log``). ``check`` raises ``AirflowHarnessError`` with
        the output on a non-zero exit. The process runs in its own session and is killed on timeout."""
        proc = subprocess.Popen(
            [self.python, "-m", "airflow", *args],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._register_session(proc.pid)
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _terminate_sessions([proc.pid], grace=5)
            out, err = proc.communicate()
            raise AirflowHarnessError(
                f"`airflow {shlex.join(args)}` timed out after {timeout}s\n{_tail(out)}\n{_tail(err)}"
            ) from None
        finally:
            # the CLI may leave children (it should not); never let them outlive the call
            if _session_alive(proc.pid):
                _terminate_sessions([proc.pid], grace=5)
            with self._lock:
                self._sessions.discard(proc.pid)
                self._write_state()
        if log_name:
            with open(self.service_log_dir / f"{log_name}.log", "a") as f:
                f.write(f"$ airflow {shlex.join(args)}\n{out}{err}\n[exit {proc.returncode}]\n")
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check and proc.returncode != 0:
            raise AirflowHarnessError(
                f"`airflow {shlex.join(args)}` exited {proc.returncode}\n"
                f"--- stdout ---\n{_tail(out, 60)}\n--- stderr ---\n{_tail(err, 60)}"
            )
        return result

    def _check_services(self) -> None:
        for name, proc in self._services.items():
            if proc.poll() is not None:
                tail = _read_tail(self.service_log_dir / f"{name}.log", 30)
                raise AirflowHarnessError(f"airflow {name} exited with code {proc.returncode}:\n{tail}")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        want = {"metadatabase", "scheduler", "dag_processor"}
        if self.triggerer:
            want.add("triggerer")
        last = None
        t0 = time.monotonic()
        while time.monotonic() < deadline:  # polling the api-server's health until every service is healthy
            self._check_services()
            try:
                health = self._request("GET", "/api/v2/monitor/health", auth=False, timeout=5)
            except (OSError, AirflowHarnessError) as e:
                last = e
                time.sleep(0.2)
                continue
            self.timings.setdefault("api_server_answers", time.monotonic() - t0)
            last = health
            if all((health.get(c) or {}).get("status") == "healthy" for c in want):
                return
            time.sleep(0.2)
        raise AirflowHarnessError(f"Airflow not healthy after {self.startup_timeout}s; last answer: {last!r}")

    def diagnostics(self, lines: int = 40) -> str:
        """Tails of every service log (for failure messages)."""
        parts = []
        if self.service_log_dir.is_dir():
            for path in sorted(self.service_log_dir.glob("*.log")):
                parts.append(f"==== {path} (last {lines} lines) ====\n{_read_tail(path, lines)}")
        return "\n".join(parts)

    def service_log(self, name: str) -> str:
        """Whole log of one service: ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``,
        ``db-migrate``; ``watchdog``."""
        path = self.service_log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---------------------------------------------------------------- REST API

    def api_token(self) -> str:
        """A JWT for the public REST API, from ``GET /auth/token`` (``simple_auth_manager_all_admins``)."""
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        body = self._request("GET", "/auth/token", auth=False)
        token = body["access_token"]
        self._token = (token, time.monotonic() + _API_TOKEN_TTL)
        return token

    def api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float = 60,
    ) -> Any:
        """Call the public REST API (``/api/v2/...``) with an admin JWT; returns the decoded JSON."""
        return self._request(method, path, json_body=json_body, params=params, timeout=timeout)

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        timeout: float = 60,
        ok_statuses: Iterable[int] = (),
    ) -> Any:
        url = self.api_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        headers = {"Accept": "application/json"}
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.api_token()}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            if e.code in tuple(ok_statuses):
                return {"_status": e.code, "detail": detail}
            raise AirflowHarnessError(f"{method} {path} -> HTTP {e.code}: {detail[:2000]}") from None
        return json.loads(raw) if raw else None

    # ---------------------------------------------------------------- connections

    def add_connection(self, conn_id: str, *, conn_type: str, **fields: Any) -> None:
        """Store a connection in the metadata DB (``POST /api/v2/connections``; no CLI start-up).

        ``fields``: ``host``, ``login``, ``password``, ``schema``, ``port``, ``description``,
        ``extra`` (a dict or a JSON string). Only DB-stored connections can be updated through the
        REST API; ``AIRFLOW_CONN_*`` ones answer 404.
        """
        if isinstance(fields.get("extra"), dict):
            fields["extra"] = json.dumps(fields["extra"])
        self.api(
            "POST",
            "/api/v2/connections",
            json_body={"connection_id": conn_id, "conn_type": conn_type, **fields},
        )

    def get_connection(self, conn_id: str) -> dict[str, Any]:
        """A DB-stored connection as ``airflow connections get -o json`` prints it: unmasked, with
        ``extra_dejson`` (a dict) and ``password``."""
        out = self.airflow("connections", "get", conn_id, "-o", "json", log_name="cli").stdout
        return json.loads(out[out.index("[") :])[0]

    # ---------------------------------------------------------------- DAG runs

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until ``dag_id`` is parsed and stored (and unpause it if needed). Fails early when
        the DAGs folder has import errors and the DAG is still missing after 15 s."""
        start = time.monotonic()
        while True:  # polling the api-server until the dag-processor has parsed the DAG
            self._check_services()
            r = self._request("GET", f"/api/v2/dags/{dag_id}", ok_statuses=(404,))
            if r and "_status" not in r:
                if r.get("is_paused"):
                    self.api("PATCH", f"/api/v2/dags/{dag_id}", json_body={"is_paused": False})
                return
            elapsed = time.monotonic() - start
            errors = self.import_errors() if elapsed > 15 else []
            if errors or elapsed > timeout:
                raise AirflowHarnessError(
                    f"DAG {dag_id!r} not found in {self.dags_folder} after {elapsed:.0f}s; import errors: "
                    f"{json.dumps(errors, indent=1)[:6000]}\n{self.diagnostics()}"
                )
            time.sleep(0.5)

    def import_errors(self) -> list[dict[str, Any]]:
        """The DAGs folder's import errors, as the REST API lists them."""
        return self.api("GET", "/api/v2/importErrors", params={"limit": 100}).get("import_errors", [])

    def reparse_dags(self) -> None:
        """Parse the DAGs folder now and store the DAGs (``airflow dags reserialize``, a few
        seconds). The dag-processor re-parses a changed file only every
        ``[dag_processor] min_file_process_interval`` (10 s here): call this after rewriting a DAG
        file that a test runs right away."""
        self.airflow("dags", "reserialize", timeout=120)

    def run_dag(
        self, dag_id: str, *, conf: Mapping[str, Any] | None = None, timeout: float = 300
    ) -> DagRunResult:
        """Run ``dag_id`` once under the LocalExecutor and wait until the run finishes.

        Returns the run's state, every task's state and every task's log. Does not raise when the
        run fails (see ``DagRunResult.assert_success``); raises ``AirflowHarnessError`` when the
        run does not finish within ``timeout`` seconds or Airflow misbehaves.
        """
        if not self._started or self._stopped:
            raise AirflowHarnessError("environment is not running: call start() first")
        t0 = time.monotonic()
        with self._lock:
            self._run_counter += 1
            n = self._run_counter
        run_id = self._trigger_and_wait(dag_id, conf, timeout, n)
        result = self._collect(dag_id, run_id, time.monotonic() - t0)
        self._note(f"run {dag_id}/{run_id}: {result.state} in {result.duration:.1f}s")
        return result

    def _trigger_and_wait(self, dag_id: str, conf: Mapping[str, Any] | None, timeout: float, n: int) -> str:
        deadline = time.monotonic() + timeout
        t = time.monotonic()
        self.wait_for_dag(dag_id, timeout=min(timeout, 60))
        self.timings[f"wait_for_dag:{dag_id}"] = time.monotonic() - t
        run_id = f"harness__{n}_{uuid.uuid4().hex[:8]}"
        self.api(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json_body={"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})},
        )
        while True:  # polling the api-server until the run ends
            run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in _TERMINAL_RUN_STATES:
                return run_id
            if time.monotonic() > deadline:
                states = self._task_states(dag_id, run_id)
                raise AirflowHarnessError(
                    f"dag run {dag_id}/{run_id} still {run['state']} after {timeout}s; tasks: {states}\n"
                    f"{self.diagnostics()}"
                )
            self._check_services()
            time.sleep(0.5)

    def _task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return {
            (ti["task_id"] if ti.get("map_index", -1) < 0 else f"{ti['task_id']}[{ti['map_index']}]"): str(
                ti["state"]
            )
            for ti in tis["task_instances"]
        }

    def task_log_files(self, dag_id: str, run_id: str) -> dict[str, list[Path]]:
        run_dir = self.task_log_folder / f"dag_id={dag_id}" / f"run_id={run_id}"
        out: dict[str, list[Path]] = {}
        # attempt=N.log, and attempt=N.log.trigger.M.log for what a triggerer logged for a deferred task
        for path in run_dir.glob("task_id=*/**/attempt=*.log"):
            rel = path.relative_to(run_dir).parts
            key = rel[0].removeprefix("task_id=")
            if len(rel) > 2 and rel[1].startswith("map_index="):
                key += f"[{rel[1].removeprefix('map_index=')}]"
            out.setdefault(key, []).append(path)
        for paths in out.values():
            paths.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", p.name)])
        return out

    def _collect(self, dag_id: str, run_id: str, duration: float) -> DagRunResult:
        run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        states = self._task_states(dag_id, run_id)
        # the supervisor may append its last lines just after reporting the state: wait until the
        # log files stop growing (briefly)
        files: dict[str, list[Path]] = {}
        sizes: dict[Path, int] | None = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # polling the log files' sizes
            files = self.task_log_files(dag_id, run_id)
            now = {p: p.stat().st_size for ps in files.values() for p in ps if p.exists()}
            if now == sizes:
                break
            sizes = now
            time.sleep(0.3)
        logs = {}
        for key, paths in files.items():
            chunks = []
            for p in paths:
                chunks.append(p.read_text(errors="replace"))
            logs[key] = "\n".join(chunks)
        result = DagRunResult(
            dag_id=dag_id,
            run_id=run_id,
            state=str(run["state"]),
            task_states=states,
            logs=logs,
            log_files=files,
            duration=duration,
        )
        if not result.succeeded:
            result.diagnostics = self.diagnostics(25)
        return result


# --------------------------------------------------------------------------------------------------
# pytest glue


def airflow_environment_fixture(
    dags_folder: Path | str | Callable[[Path], Path | str],
    *,
    name: str = "airflow_env",
    scope: str = "session",
    setup: Callable[[AirflowEnvironment], None] | None = None,
    **kwargs: Any,
):
    """Build a pytest fixture that yields a started ``AirflowEnvironment`` and stops it afterwards.

    In a conftest::

        airflow_env = airflow_environment_fixture(
            Path(__file__).parent / "dags",
            env={"AIRFLOW_CONN_JIRA_ENV": "..."},
            setup=lambda e: e.add_connection("jira_db", conn_type="jira_cloud", extra={...}),
        )

    :param dags_folder: a folder, or ``callable(root) -> folder`` that writes DAG files into a new
        folder (``root`` is the environment's directory, fresh for this fixture).
    :param setup: called with the started environment (add connections, variables, ...).
    :param kwargs: passed to ``AirflowEnvironment`` (``database``, ``env``, ``config``, ...).
    """
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def _fixture(tmp_path_factory):
        root = tmp_path_factory.mktemp(name)
        folder = dags_folder(root) if callable(dags_folder) else dags_folder
        env = AirflowEnvironment(root, dags_folder=folder, **kwargs)
        env.start()
        try:
            if setup is not None:
                setup(env)
            yield env
        finally:
            env.stop()

    return _fixture


class UsersAirflowEnvironment(AirflowEnvironment):
    """The harness with real simple-auth-manager users instead of ``simple_auth_manager_all_admins``.

    Each user's role is its name (``admin``, ``op``, ``viewer``...), and ``[core] test_connection``
    is enabled, as in a deployment that offers Test. The harness' REST helpers (``add_connection``,
    ``api``...) take a JWT from ``GET /auth/token``, which only ``all_admins`` allows: here they
    sign in as ``admin`` (``POST /auth/token``) instead.
    """

    def __init__(self, root: Path, *, users: Iterable[str] = ("admin",), **kwargs: Any) -> None:
        config = {
            "core": {
                "simple_auth_manager_all_admins": "False",
                "simple_auth_manager_users": ",".join(f"{u}:{u}" for u in users),
                "test_connection": "Enabled",
            }
        }
        super().__init__(root, config=config, **kwargs)

    def password(self, user: str) -> str:
        """The password Airflow generated for ``user`` (api-server start writes them)."""
        generated = self.home / "simple_auth_manager_passwords.json.generated"
        return json.loads(generated.read_text())[user]

    def session_token(self, user: str) -> str:
        """A new JWT for ``user``: a session of its own."""
        body = json.dumps({"username": user, "password": self.password(user)}).encode()
        request = urllib.request.Request(
            self.api_url + "/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())["access_token"]

    def api_token(self) -> str:
        if self._token is None or self._token[1] < time.monotonic():
            self._token = (self.session_token("admin"), time.monotonic() + 600)
        return self._token[0]
