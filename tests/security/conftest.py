"""The token broker as an attacker meets it: its FastAPI app served by uvicorn in a process of its own.

Each server is a separate ``python -m uvicorn`` process on a free port, configured like an
api-server (``_AIRFLOW_PROCESS_CONTEXT=server``) against a metadata database, with its stdout and
stderr captured to a file: tests read its memory from ``/proc/<pid>/status`` and its log lines
from that file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from airflow_provider_jira_auth.auth import broker_protocol
from airflow_provider_jira_auth.testing import JiraCloudEmulator

APP = "airflow_provider_jira_auth.plugins.jira_auth:app"
START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerServer:
    """One uvicorn process serving the provider's plugin app (the broker at ``/token``)."""

    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "info"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> BrokerServer:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # polling /health: the server says nothing when it is ready
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if requests.get(self.url + "/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the broker server did not answer within {START_TIMEOUT}s:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def status_kb(self, field: str) -> int:
        """A ``/proc/<pid>/status`` figure of the server process (VmRSS, VmHWM), in kB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def post(self, body: bytes, signature: str, **kwargs) -> requests.Response:
        return requests.post(
            self.url + broker_protocol.PATH,
            data=body,
            headers={"Content-Type": "application/json", broker_protocol.SIGNATURE_HEADER: signature},
            timeout=kwargs.pop("timeout", 60),
            **kwargs,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def airflow_cli(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"airflow {' '.join(args[:2])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def server_env(**overrides: str) -> dict[str, str]:
    """This session's Airflow environment (home, metadata DB, Fernet key), as an api-server sees it."""
    return {**os.environ, "_AIRFLOW_PROCESS_CONTEXT": "server", "PYTHONUNBUFFERED": "1", **overrides}


@contextmanager
def _servers(directory: Path) -> Iterator[Callable[..., BrokerServer]]:
    servers: list[BrokerServer] = []

    def start(*names: str, **env: str) -> BrokerServer | list[BrokerServer]:
        """One server per name (started together), or one called "broker"."""
        started = [BrokerServer(directory / f"{name}-{len(servers) + i}.log", server_env(**env)) for i, name in enumerate(names or ["broker"])]
        servers.extend(started)
        for server in started:
            server.wait_ready()
        return started if len(names) > 1 else started[0]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def start_broker(tmp_path: Path, airflow_db: str) -> Iterator[Callable[..., BrokerServer]]:
    """Starts broker servers on the session's metadata DB (``env`` overrides), stopped after the test."""
    with _servers(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[JiraCloudEmulator]:
    """One emulator for a module's tests (its connections point at it)."""
    with JiraCloudEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, airflow_db: str) -> Iterator[BrokerServer]:
    """One broker server for a module's tests."""
    with _servers(tmp_path_factory.mktemp("broker")) as start:
        yield start()


def signed(client_secret: str, raw: str) -> tuple[bytes, str]:
    """A hand-written body and its valid signature (for bodies ``signed_request`` would never build)."""
    body = raw.encode()
    return body, hmac.new(broker_protocol._key(client_secret), body, hashlib.sha256).hexdigest()
