"""The "Jira connections" page as a person uses it: a real browser against a real ``airflow api-server``.

Headless Chromium (Debian's, driven by Playwright) signs in through Airflow's own login page
(simple auth manager with real users: ``admin`` and ``viewer``, not ``all_admins``), opens the
page, clicks "Connect to Jira", goes through the emulator's Atlassian consent and comes back;
the connection is then read with the CLI and its refresh token used against the emulator. Test
runs on the real connection from the page, and Airflow's own edit form shows none of its secrets.
Fixtures (one Airflow, one emulator, one browser) are in conftest.py.

``UPDATE_SCREENSHOT=1`` also writes ``docs/jira-connections.png`` (the page after connecting and testing).
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.ui.browser import DOCS, PAGE, dom_text, expect, press_test_on_the_page, row_of, sign_in, update_screenshots

pytestmark = pytest.mark.airflow_executor

SCREENSHOT = DOCS / "jira-connections.png"
SCOPES = "read:jira-work read:jira-user"


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

    # Linked in the Airflow UI: Admin menu -> "Jira connections", which opens the page in a new tab.
    page.goto(airflow.api_url + "/")
    page.get_by_role("button", name="Admin").click()
    link = page.get_by_role("menuitem", name="Jira connections")
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
    expect(row_of(page, conn_id).get_by_role("button", name="Reconnect")).to_be_visible()
    assert emulator.stats.code_exchanges == before + 1

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

    # Nor may the viewer run Test on it (Airflow's own Test needs connection rights too).
    requests_before = len(emulator.requests)
    forged = context.request.post(f"{airflow.api_url}{PAGE}/{conn_id}/test", form={"csrf": "forged"}, max_redirects=0)
    assert forged.status == 403, forged.text()
    assert f"You may not test connection {conn_id}" in forged.text()
    assert len(emulator.requests) == requests_before


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
    expect(page.get_by_role("heading", name="Jira Cloud connections")).to_be_visible()
    assert "evil.example" not in page.content()


def test_a_connection_consented_on_the_page_tests_green_there_and_airflows_form_shows_no_secret(
    airflow, emulator, app, context, tall_context
):
    conn_id = "jira_ui_tested"
    add_oauth_connection(airflow, emulator, app, conn_id)
    emulator.consent = "approve"
    page = sign_in(context, airflow, "admin")
    row_of(page, conn_id).get_by_role("button", name="Connect to Jira").click()
    page.wait_for_url(re.compile(re.escape(airflow.api_url + PAGE) + r"\?message="))
    expect(page.get_by_role("status")).to_contain_text(f"Connected {conn_id}")

    # Test, on the page: the stored connection itself calls /myself as the consenting user.
    myself_calls = _myself_calls(emulator)
    banner = press_test_on_the_page(page, airflow, conn_id)
    expect(banner).to_have_attribute("role", "status")
    expect(banner).to_contain_text(
        f"Test of {conn_id} passed: Connected to {emulator.url} through the API gateway as "
        f"{emulator.default_user.display_name} (OAuth 2.0 (3LO))."
    )
    assert _myself_calls(emulator) == myself_calls + 1
    row = row_of(page, conn_id)
    expect(row).to_contain_text("OAuth 2.0 (3LO)")
    expect(row).to_contain_text(f"connection '{conn_id}' in the metadata database")
    expect(row).to_contain_text("obtained ")
    if update_screenshots():
        _screenshot_of_the_page(airflow, emulator, page)

    # Reopened in Airflow's own form (Admin -> Connections -> Edit): no secret in clear text anywhere.
    extra = airflow.get_connection(conn_id)["extra_dejson"]
    secrets = {
        "client secret": app.client_secret,
        "refresh token": extra["refresh_token"],
        "access token": extra["access_token"],
    }
    form = _open_in_airflows_form(tall_context, airflow, conn_id)
    text = dom_text(form)
    # The form did load the connection's extra, also the keys stored after the tokens.
    assert app.client_id in text and extra["granted_scopes"] in text
    for name, secret in secrets.items():
        assert secret and secret not in text, f"the {name} is readable in Airflow's connection form"


def test_a_refresh_token_stored_by_hand_shows_its_real_health_and_becomes_known_after_test(
    airflow, emulator, app, context
):
    conn_id = "jira_ui_by_hand"
    grant = emulator.issue_grant(app.client_id, scopes=(*SCOPES.split(), "offline_access"))
    extra = {
        "auth_type": "oauth2",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "refresh_token": grant["refresh_token"],
        "auth_url": emulator.auth_url,
        "api_url": emulator.api_url,
        "scopes": SCOPES,
    }
    airflow.add_connection(conn_id, conn_type="jira_cloud", host=emulator.url, extra=extra)

    # As `airflow connections add` leaves it: a refresh token, but no record of when it was issued.
    page = sign_in(context, airflow, "admin")
    row = row_of(page, conn_id)
    expect(row).to_contain_text("held, stored by hand: its age is unknown until the first refresh")
    expect(row).to_contain_text("unknown (at most 90 days)")
    expect(row.get_by_role("button", name="Reconnect")).to_be_visible()

    # Test refreshes once, on the real connection, which now records the new token's issue time.
    before = time.time()
    banner = press_test_on_the_page(page, airflow, conn_id)
    expect(banner).to_have_attribute("role", "status")
    expect(banner).to_contain_text(f"Test of {conn_id} passed")
    row = row_of(page, conn_id)
    expect(row).to_contain_text("obtained ")
    expect(row).to_contain_text("90 days")
    stored = airflow.get_connection(conn_id)["extra_dejson"]
    assert stored["refresh_token"] != grant["refresh_token"]  # rotated and written back to this connection
    assert float(stored["refresh_rotated_at"]) >= before - 1


def test_a_stale_form_cannot_run_test(airflow, emulator, app, context):
    conn_id = "jira_ui_stale"
    add_oauth_connection(airflow, emulator, app, conn_id)
    page = sign_in(context, airflow, "admin")
    expect(row_of(page, conn_id).get_by_role("button", name="Test", exact=True)).to_be_visible()
    requests_before = len(emulator.requests)
    forged = context.request.post(f"{airflow.api_url}{PAGE}/{conn_id}/test", form={"csrf": "forged"}, max_redirects=0)
    assert forged.status == 403, forged.text()
    assert "The form is stale" in forged.text()
    assert len(emulator.requests) == requests_before


def _myself_calls(emulator) -> int:
    return sum(1 for r in emulator.requests if r.path.endswith("/rest/api/3/myself"))


def _open_in_airflows_form(context, airflow, conn_id: str):
    """Admin -> Connections -> the row's Edit Connection, with every section of the dialog open."""
    page = sign_in(context, airflow, "admin", path="/connections")
    row_of(page, conn_id).get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("textbox", name="Connection ID")).to_have_value(conn_id)
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    dialog.get_by_role("button", name="Extra Fields JSON").click()
    expect(dialog.get_by_text('"auth_type"')).to_be_visible()
    return page


def _screenshot_of_the_page(airflow, emulator, page) -> None:
    """docs/jira-connections.png: a Basic connection and a tested 3LO one."""
    if not any(c["connection_id"] == "jira_cloud_default" for c in airflow.api("GET", "/api/v2/connections")["connections"]):
        airflow.add_connection(
            "jira_cloud_default", conn_type="jira_cloud", host=emulator.url,
            login=emulator.default_user.email, password=emulator.default_user.api_token,
            extra={"auth_type": "basic"},
        )
    page.reload()
    keep = ["jira_cloud_default", page.url.split("Test%20of%20")[1].split("%20")[0]]
    # Only these two rows: the other tests' connections would clutter the picture.
    page.evaluate(
        "keep => document.querySelectorAll('tr').forEach((tr, i) => { if (i && !keep.includes(tr.cells[0].innerText)) tr.remove(); })",
        keep,
    )
    page.set_viewport_size({"width": 1400, "height": 400})
    page.screenshot(path=str(DOCS / "jira-connections.png"), full_page=True)
