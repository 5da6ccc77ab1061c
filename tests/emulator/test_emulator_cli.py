"""``python -m airflow_provider_jira_auth.testing``: callback URLs for the consent steps a person goes through.

The emulator's OAuth app redirects only to registered callback URLs, as Atlassian's does. The
command registers more (``--redirect-uri``), and with ``--airflow-url`` the callback of that
api-server's "Connect to Jira" page, so a person can consent there against the emulator.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_jira_auth.testing import airflow_consent_callback

AIRFLOW_URL = "http://localhost:8080"
AUTHORIZE_CLI_CALLBACK = "http://127.0.0.1:8765/callback"


class RunningEmulator:
    """The command's process and what it printed until "Press Ctrl-C to stop."."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_jira_auth.testing", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        while not self.lines or not self.lines[-1].startswith("Press Ctrl-C"):
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"the emulator exited early: {self.process.stderr.read()}")
            self.lines.append(line.rstrip("\n"))
        self.url = re.search(r"running at (\S+)", self.lines[0]).group(1)
        self.client_id = re.search(r"client_id (\S+)", self.output).group(1)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def authorize(self, redirect_uri: str) -> requests.Response:
        params = {
            "audience": "api.atlassian.com",
            "client_id": self.client_id,
            "scope": "read:jira-work offline_access",
            "redirect_uri": redirect_uri,
            "state": "s-1",
            "response_type": "code",
            "prompt": "consent",
        }
        return requests.get(f"{self.url}/authorize", params=params, allow_redirects=False, timeout=5)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def started() -> Iterator[list[RunningEmulator]]:
    running: list[RunningEmulator] = []
    yield running
    for emulator in running:
        emulator.stop()


def start(started: list[RunningEmulator], *args: str) -> RunningEmulator:
    started.append(RunningEmulator(*args))
    return started[-1]


def redirected_with_code(response: requests.Response, callback: str) -> bool:
    location = response.headers.get("Location", "")
    return (
        response.status_code == 302
        and location.startswith(callback + "?")
        and "code" in parse_qs(urlsplit(location).query)
    )


def test_the_airflow_callback_is_the_url_the_connect_page_serves_its_callback_at() -> None:
    from airflow_provider_jira_auth.plugins.jira_auth import JiraAuthPlugin, app

    (mounted,) = JiraAuthPlugin.fastapi_apps
    page_callback = mounted["url_prefix"] + app.url_path_for("jira_consent_callback")

    assert airflow_consent_callback(AIRFLOW_URL) == AIRFLOW_URL + page_callback
    assert airflow_consent_callback("https://airflow.example.com/team-a/") == (
        "https://airflow.example.com/team-a" + page_callback
    )


def test_without_options_the_app_redirects_to_its_one_default_callback_only(started) -> None:
    emulator = start(started)

    assert redirected_with_code(emulator.authorize("http://127.0.0.1/callback"), "http://127.0.0.1/callback")
    refused = emulator.authorize(airflow_consent_callback(AIRFLOW_URL))
    assert refused.status_code == 400 and "redirect_uri is not registered" in refused.text


def test_airflow_url_registers_the_connect_page_callback_and_prints_a_connection_to_consent_to(started) -> None:
    emulator = start(started, "--airflow-url", AIRFLOW_URL + "/")
    callback = AIRFLOW_URL + "/jira-auth/connect/callback"

    assert redirected_with_code(emulator.authorize(callback), callback)
    assert callback in emulator.output
    assert f"open {AIRFLOW_URL}/jira-auth/connect" in emulator.output
    add = next(line for line in emulator.lines if line.startswith("airflow connections add "))
    _, _, conn_id, _, conn_json = shlex.split(add)[1:]
    connection = json.loads(conn_json)
    assert conn_id == "jira_cloud_connect"
    assert connection["host"] == emulator.url and connection["extra"]["client_id"] == emulator.client_id
    assert connection["extra"]["auth_type"] == "oauth2" and "refresh_token" not in connection["extra"]


def test_redirect_uri_registers_each_callback_given(started) -> None:
    other = "https://airflow.example.com/jira-auth/connect/callback"
    emulator = start(started, "--redirect-uri", AUTHORIZE_CLI_CALLBACK, "--redirect-uri", other)

    assert redirected_with_code(emulator.authorize(AUTHORIZE_CLI_CALLBACK), AUTHORIZE_CLI_CALLBACK)
    assert redirected_with_code(emulator.authorize(other), other)
    assert redirected_with_code(emulator.authorize("http://127.0.0.1/callback"), "http://127.0.0.1/callback")
    assert emulator.authorize("http://127.0.0.1:9999/callback").status_code == 400


def test_a_redirect_uri_that_is_not_a_url_is_a_usage_error() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "airflow_provider_jira_auth.testing", "--redirect-uri", "localhost:8080/cb"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert "'localhost:8080/cb' is not a callback URL" in finished.stderr
