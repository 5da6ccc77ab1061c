"""The "Connect to Jira" page as a person uses it: a real browser against a real ``airflow api-server``.

Headless Chromium (Debian's, driven by Playwright) signs in through Airflow's own login page
(simple auth manager with real users: ``admin`` and ``viewer``, not ``all_admins``), opens the
page, clicks "Connect to Jira", goes through the emulator's Atlassian consent and comes back;
the connection is then read with the CLI and its refresh token used against the emulator.

``UPDATE_SCREENSHOT=1`` also writes ``docs/connect-to-jira.png`` (the page after connecting).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.airflow_harness import AirflowEnvironment

pytestmark = pytest.mark.airflow_executor

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
if not os.access(CHROMIUM, os.X_OK):
    # `make test` installs it where it can (root with apt); CI must not pass by skipping.
    message = f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)"
    if os.environ.get("CI"):
        raise RuntimeError(message)
    pytest.skip(message, allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'"
)
expect = sync_api.expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "connect-to-jira.png"
PAGE = "/jira-auth/connect"
USERS = ("admin", "viewer")
SCOPES = "read:jira-work read:jira-user"


class UsersAirflowEnvironment(AirflowEnvironment):
    """The harness with real simple-auth-manager users instead of ``simple_auth_manager_all_admins``.

    The harness' REST helpers (``add_connection``, ``api``...) take a JWT from ``GET /auth/token``,
    which only ``all_admins`` allows: here they sign in as ``admin`` (``POST /auth/token``) instead.
    """

    def __init__(self, root: Path, **kwargs) -> None:
        config = {
            "core": {
                "simple_auth_manager_all_admins": "False",
                "simple_auth_manager_users": ",".join(f"{u}:{u}" for u in USERS),
            }
        }
        super().__init__(root, config=config, **kwargs)

    def password(self, user: str) -> str:
        """The password Airflow generated for ``user`` (api-server start writes them)."""
        generated = self.home / "simple_auth_manager_passwords.json.generated"
        return json.loads(generated.read_text())[user]

    def api_token(self) -> str:
        if self._token is None or self._token[1] < time.monotonic():
            body = json.dumps({"username": "admin", "password": self.password("admin")}).encode()
            request = urllib.request.Request(
                self.api_url + "/auth/token", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                self._token = (json.loads(answer.read())["access_token"], time.monotonic() + 600)
        return self._token[0]


@pytest.fixture(scope="module")
def emulator():
    with JiraCloudEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("airflow-ui")
    (root / "dags").mkdir()
    env = UsersAirflowEnvironment(root, dags_folder=root / "dags", parallelism=2)
    env.start()
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="module")
def app(airflow, emulator):
    """The Atlassian app whose only registered callback is the page's."""
    return emulator.add_oauth_app(redirect_uris=(f"{airflow.api_url}{PAGE}/callback",))


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1100, "height": 360})
    ctx.set_default_timeout(30_000)
    try:
        yield ctx
    finally:
        ctx.close()


def add_oauth_connection(airflow, emulator, app, conn_id: str) -> dict:
    """A ``jira_cloud`` oauth2 connection with the app's credentials and no refresh token yet."""
    extra = {
        "auth_type": "oauth2",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "auth_url": emulator.auth_url,
        "api_url": emulator.api_url,
        "scopes": SCOPES,
    }
    airflow.add_connection(conn_id, conn_type="jira_cloud", host=emulator.url, extra=extra)
    stored = airflow.get_connection(conn_id)
    assert "refresh_token" not in stored["extra_dejson"]
    return stored


def sign_in(context, airflow, user: str):
    """Open the page signed out: Airflow's real login page, then back on the page."""
    page = context.new_page()
    page.goto(airflow.api_url + PAGE)
    expect(page).to_have_url(re.compile(r"/auth/login\?next="))
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(airflow.password(user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(airflow.api_url + PAGE)
    expect(page.get_by_role("heading", name="Connect Airflow to Jira Cloud")).to_be_visible()
    return page


def row_of(page, conn_id: str):
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))


def test_admin_connects_a_connection_from_the_page_linked_in_the_nav(airflow, emulator, app, context):
    conn_id = "jira_ui_connect"
    add_oauth_connection(airflow, emulator, app, conn_id)
    emulator.consent = "approve"
    before = emulator.stats.code_exchanges

    # Directly at /jira-auth/connect (through the login page): the connection, not connected yet.
    page = sign_in(context, airflow, "admin")
    row = row_of(page, conn_id)
    expect(row).to_contain_text(emulator.url)
    expect(row).to_contain_text("not connected yet")
    expect(row.get_by_role("button", name="Connect to Jira")).to_be_visible()
    expect(page.get_by_text(f"{airflow.api_url}{PAGE}/callback")).to_be_visible()

    # Linked in the Airflow UI: Admin menu -> "Connect to Jira", which opens the page in a new tab.
    page.goto(airflow.api_url + "/")
    page.get_by_role("button", name="Admin").click()
    link = page.get_by_role("menuitem", name="Connect to Jira")
    expect(link).to_have_attribute("href", PAGE)
    with context.expect_page() as opened:
        link.click()
    page = opened.value
    page.wait_for_url(airflow.api_url + PAGE)

    # Connect: the emulator's consent auto-approves and redirects to the callback, then the page.
    row_of(page, conn_id).get_by_role("button", name="Connect to Jira").click()
    page.wait_for_url(re.compile(re.escape(airflow.api_url + PAGE) + r"\?message="))
    expect(page.get_by_role("status")).to_contain_text(f"Connected {conn_id} to emulator ({emulator.url})")
    expect(page.get_by_role("status")).to_contain_text("offline_access")
    expect(row_of(page, conn_id)).to_contain_text("obtained ")
    expect(row_of(page, conn_id)).to_contain_text("90 days")
    assert emulator.stats.code_exchanges == before + 1
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The connection now holds a refresh token that the emulator accepts, for the requested scopes.
    stored = airflow.get_connection(conn_id)
    extra = stored["extra_dejson"]
    assert stored["host"] == emulator.url
    assert extra["cloud_id"] == emulator.cloud_id
    assert extra["client_id"] == app.client_id and extra["auth_type"] == "oauth2"
    answer = requests.post(
        f"{emulator.auth_url}/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "refresh_token": extra["refresh_token"],
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    grant = answer.json()
    assert set(SCOPES.split()) | {"offline_access"} <= set(grant["scope"].split())
    me = requests.get(
        f"{emulator.api_url}/ex/jira/{emulator.cloud_id}/rest/api/3/myself",
        headers={"Authorization": f"Bearer {grant['access_token']}"},
        timeout=10,
    )
    assert me.status_code == 200, me.text


def test_a_viewer_gets_no_button_and_a_forged_start_is_refused(airflow, emulator, app, context):
    conn_id = "jira_ui_viewer"
    seed = add_oauth_connection(airflow, emulator, app, conn_id)
    authorizations = emulator.stats.authorizations

    page = sign_in(context, airflow, "viewer")
    expect(page.get_by_role("button", name="Connect to Jira")).to_have_count(0)
    expect(page.get_by_text(conn_id)).to_have_count(0)  # viewers may not read connections at all
    expect(page.locator("#no-access")).to_contain_text("needs edit rights on connections")

    # A hand-made POST with the viewer's session: refused, no redirect to Atlassian, nothing stored.
    forged = context.request.post(
        f"{airflow.api_url}{PAGE}/{conn_id}/start", form={"csrf": "forged"}, max_redirects=0
    )
    assert forged.status == 403, forged.text()
    assert "location" not in forged.headers
    assert f"You may not edit connection {conn_id}" in forged.text()
    assert emulator.stats.authorizations == authorizations
    assert airflow.get_connection(conn_id) == seed


def test_a_denied_consent_shows_why_and_changes_nothing(airflow, emulator, app, context):
    conn_id = "jira_ui_denied"
    seed = add_oauth_connection(airflow, emulator, app, conn_id)
    exchanges = emulator.stats.code_exchanges
    page = sign_in(context, airflow, "admin")
    emulator.consent = "deny"
    try:
        row_of(page, conn_id).get_by_role("button", name="Connect to Jira").click()
        page.wait_for_url(re.compile(re.escape(airflow.api_url + PAGE) + r"\?error="))
    finally:
        emulator.consent = "approve"
    expect(page.get_by_role("alert")).to_have_text(f"The consent for {conn_id} was denied. Nothing changed.")
    expect(row_of(page, conn_id)).to_contain_text("not connected yet")
    assert emulator.stats.code_exchanges == exchanges
    assert airflow.get_connection(conn_id) == seed


def test_a_callback_with_a_wrong_state_changes_nothing(airflow, emulator, app, context):
    conn_id = "jira_ui_state"
    seed = add_oauth_connection(airflow, emulator, app, conn_id)
    exchanges = emulator.stats.code_exchanges
    page = sign_in(context, airflow, "admin")

    # The person clicks "Connect to Jira" (the pending-consent cookie is set) and consents at
    # Atlassian. The browser's answer to the click is held back (a redirect hop cannot be intercepted,
    # the click's own request can): the test follows the redirect to Atlassian itself, so it holds
    # the genuine callback URL with a valid code instead of letting the browser deliver it.
    held: dict[str, str] = {}

    def hold(route):
        answer = route.fetch(max_redirects=0)
        held["authorize"] = answer.headers["location"]
        route.fulfill(
            status=200, content_type="text/plain", body="held back by the test",
            headers={"set-cookie": answer.headers["set-cookie"]},
        )

    page.route("**/jira-auth/connect/*/start", hold)
    row_of(page, conn_id).get_by_role("button", name="Connect to Jira").click()
    expect(page.get_by_text("held back by the test")).to_be_visible()
    assert "jira_auth_consent" in {cookie["name"] for cookie in context.cookies()}
    consented = requests.get(held["authorize"], allow_redirects=False, timeout=10)
    assert consented.status_code == 302, consented.text
    genuine = consented.headers["location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(genuine).query).items()}
    assert genuine.startswith(f"{airflow.api_url}{PAGE}/callback?") and query.get("code") and query.get("state")

    # The callback arrives with that valid code but another state: refused, nothing stored.
    tampered = urlencode({"code": query["code"], "state": query["state"][::-1]})
    page.goto(f"{airflow.api_url}{PAGE}/callback?{tampered}")
    page.wait_for_url(re.compile(re.escape(airflow.api_url + PAGE) + r"\?error="))
    expect(page.get_by_role("alert")).to_contain_text("wrong or expired state")
    expect(page.get_by_role("alert")).to_contain_text("Nothing changed.")
    expect(row_of(page, conn_id)).to_contain_text("not connected yet")

    assert emulator.stats.code_exchanges == exchanges
    assert airflow.get_connection(conn_id) == seed


def test_a_crafted_link_cannot_put_words_in_the_pages_banner(airflow, context):
    page = sign_in(context, airflow, "admin")
    page.goto(f"{airflow.api_url}{PAGE}?message=Connected%20to%20evil.example&sig=forged")
    expect(page.get_by_role("heading", name="Connect Airflow to Jira Cloud (OAuth 2.0)")).to_be_visible()
    assert "evil.example" not in page.content()
