"""The consent step end to end: the CLI against the emulator's consent page and token endpoint,
writing to the session's real metadata DB, then the connection used for Jira calls."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from airflow_provider_jira_auth.consent.flow import ConsentError, code_from_redirect
from tests.db_connections import connection_extra

CLI = str(Path(sys.executable).with_name("airflow-jira-auth"))
pytestmark = pytest.mark.usefixtures("airflow_db")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_authorize(emu, conn_id, *extra_args, redirect_uri=None):
    redirect_uri = redirect_uri or f"http://127.0.0.1:{free_port()}/callback"
    app = emu.add_oauth_app(redirect_uris=(redirect_uri,))
    env = {**os.environ, "JIRA_CLIENT_SECRET": app.client_secret}
    proc = subprocess.Popen(
        [CLI, "authorize", "--conn-id", conn_id, "--client-id", app.client_id, "--no-browser",
         "--redirect-uri", redirect_uri, "--auth-url", emu.auth_url, "--api-url", emu.api_url,
         "--timeout", "60", *extra_args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    for line in proc.stdout:
        if line.startswith(emu.auth_url):
            return proc, line.strip(), app
    proc.wait(timeout=30)
    pytest.fail(f"no consent link printed:\n{proc.stderr.read()[-3000:]}")


def consent_in_browser(link):
    """What the person's browser does: open the link, accept, follow the redirect to the CLI."""
    return requests.get(link, timeout=30, allow_redirects=True)


def finish(proc):
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_authorize_creates_the_connection_and_a_dag_can_use_it(jira_emulator):
    emu = jira_emulator
    proc, link, app = start_authorize(emu, "jira_consented", "--site-url", emu.url)
    assert "offline_access" in link and "prompt=consent" in link and "audience=api.atlassian.com" in link
    page = consent_in_browser(link)
    code, out, err = finish(proc)

    assert code == 0, err
    assert page.status_code == 200 and "consent received" in page.text
    assert "created in the metadata database" in out
    extra = connection_extra("jira_consented")
    assert extra["auth_type"] == "oauth2" and extra["cloud_id"] == emu.cloud_id
    assert extra["refresh_token"] and extra["client_id"] == app.client_id
    assert app.client_secret not in out + err  # the secret never reaches the terminal

    # A DAG uses the new connection: `airflow dags test` reads it from the metadata DB, and the
    # task calls Jira with the access token the consent stored beside the refresh token.
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "jira_consented_check.py").write_text(CHECK_DAG)
    airflow = str(Path(sys.executable).with_name("airflow"))
    run = subprocess.run([airflow, "dags", "test", "jira_consented_check"], capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert any(r.path.endswith("/myself") and r.status == 200 and r.auth == "bearer" for r in emu.requests)


CHECK_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def jira_consented_check():
    @task
    def who_am_i():
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        return JiraCloudHook("jira_consented").request("GET", "myself")["accountId"]

    who_am_i()


jira_consented_check()
"""


def test_status_shows_token_health_without_secrets(jira_emulator):
    emu = jira_emulator
    proc, link, app = start_authorize(emu, "jira_status", "--site-url", emu.url)
    consent_in_browser(link)
    assert finish(proc)[0] == 0
    extra = connection_extra("jira_status")

    result = subprocess.run([CLI, "status", "--conn-id", "jira_status", "--json"], capture_output=True, text=True, env=os.environ.copy())

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["auth_type"] == "oauth2" and report["cloud_id"] == emu.cloud_id
    assert report["grant_store"].startswith("connection 'jira_status'")
    assert 89 < report["days_until_inactivity_expiry"] <= 90
    assert "read:jira-work" in report["granted_scopes"]
    for secret in (extra["refresh_token"], extra["access_token"], app.client_secret):
        assert secret not in result.stdout + result.stderr


def test_a_denied_consent_changes_nothing(jira_emulator):
    emu = jira_emulator
    emu.consent = "deny"
    proc, link, _ = start_authorize(emu, "jira_denied")
    consent_in_browser(link)
    code, out, err = finish(proc)
    assert code == 2 and "denied" in err
    with pytest.raises(AssertionError, match="not in the metadata DB"):
        connection_extra("jira_denied")


def test_a_site_the_grant_does_not_cover_changes_nothing(jira_emulator):
    emu = jira_emulator
    proc, link, _ = start_authorize(emu, "jira_wrong_site", "--site-url", "https://other.atlassian.net")
    consent_in_browser(link)
    code, out, err = finish(proc)
    assert code == 2 and "does not cover the site https://other.atlassian.net" in err and emu.url in err
    with pytest.raises(AssertionError):
        connection_extra("jira_wrong_site")


def test_an_unregistered_redirect_uri_is_refused_by_the_consent_page(jira_emulator):
    emu = jira_emulator
    proc, link, _ = start_authorize(emu, "jira_bad_redirect")
    bad = link.replace("callback", "elsewhere")
    page = requests.get(bad, timeout=30, allow_redirects=False)
    proc.kill()
    proc.communicate()
    assert page.status_code >= 400 and "redirect_uri" in page.text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:9/callback?code=c&state=other", "does not match"),
        ("http://127.0.0.1:9/elsewhere?code=c&state=s", "does not start with the redirect URI"),
        ("http://127.0.0.1:9/callback?error=access_denied&state=s", "denied"),
        ("http://127.0.0.1:9/callback?state=s", "no code"),
    ],
)
def test_a_bad_redirect_is_refused_with_a_clear_message(url, message):
    with pytest.raises(ConsentError, match=message):
        code_from_redirect(url, "s", "http://127.0.0.1:9/callback")
