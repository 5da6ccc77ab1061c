"""Airflow's own connection form for ``jira_cloud``, as a person fills it: a real browser, a real api-server.

Admin -> Connections -> Add Connection, "Jira Cloud", only the required Basic fields (the rest
keep the form's defaults), Save, then Test; the saved connection reopened shows no secret; a
wrong API token is named by its form label. Airflow 3.3.2's own Test row action sends
``"port": 0`` for a connection without a port; the provider's plugin makes it work anyway
(``test_airflows_own_row_test_works_for_a_connection_without_a_port``), and the provider's Jira
connections page has a Test of its own, run on the real connection id.

``UPDATE_SCREENSHOT=1`` also writes ``docs/connection-form.png`` (the form with "Jira Cloud" chosen).
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.ui.browser import DOCS, expect, press_test_on_the_page, row_of, sign_in, update_screenshots

pytestmark = pytest.mark.airflow_executor

#: the form's labels of the standard fields (UI_FIELD_BEHAVIOUR's relabeling)
SITE_URL, EMAIL, API_TOKEN = "Site URL", "Email (basic auth)", "API token (basic auth)"


def add_with_the_form(context, airflow, conn_id: str, *, site: str, email: str, api_token: str, screenshot: str = ""):
    """Admin -> Connections -> Add Connection; type Jira Cloud; only the required Basic fields; Save."""
    page = sign_in(context, airflow, "admin", path="/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Connection ID").fill(conn_id)
    dialog.get_by_role("combobox", name="Connection Type").fill("Jira Cloud")
    page.get_by_role("option", name="Jira Cloud", exact=True).click()
    expect(dialog.get_by_role("textbox", name=SITE_URL)).to_have_attribute("placeholder", "https://your-site.atlassian.net")
    if screenshot:  # the form as a person first sees it, with its placeholders
        dialog.screenshot(path=screenshot)
    dialog.get_by_role("textbox", name=SITE_URL).fill(site)
    dialog.get_by_role("textbox", name=EMAIL).fill(email)
    dialog.get_by_role("textbox", name=API_TOKEN).fill(api_token)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections") and r.request.method == "POST") as created:
        dialog.get_by_role("button", name="Save").click()
    assert created.value.status == 201, created.value.text()
    expect(row_of(page, conn_id)).to_be_visible()
    return page


def masked_values(extra: dict) -> list[str]:
    """Keys whose stored value is Airflow's mask, which a saved form stores literally (issue 8 item 1)."""
    return sorted(key for key, value in extra.items() if value == "***")


def test_a_basic_connection_saved_with_the_form_defaults_tests_green(airflow, emulator, tall_context):
    user = emulator.add_user(f"form-{uuid.uuid4().hex[:8]}@example.com", display_name="Form Person")
    conn_id = "jira_form_basic"
    screenshot = str(DOCS / "connection-form.png") if update_screenshots() else ""
    add_with_the_form(tall_context, airflow, conn_id, site=emulator.url, email=user.email, api_token=user.api_token, screenshot=screenshot)

    stored = airflow.get_connection(conn_id)
    assert (stored["host"], stored["login"], stored["password"]) == (emulator.url, user.email, user.api_token)
    # Depends on issue 8 item 1 (the renamed non-secret keys): the form's defaults arrive unmasked,
    # so the saved extra holds none of Airflow's "***".
    assert masked_values(stored["extra_dejson"]) == [], f"the form saved Airflow's mask as values: {stored['extra_dejson']}"

    # Test on the Jira connections page: the saved connection calls /myself as that user.
    page = sign_in(tall_context, airflow, "admin")
    banner = press_test_on_the_page(page, airflow, conn_id)
    expect(banner).to_contain_text(
        f"Test of {conn_id} passed: Connected to {emulator.url} through the site URL as Form Person (API token)."
    )
    expect(banner).to_have_attribute("role", "status")


def test_airflows_own_row_test_works_for_a_connection_without_a_port(airflow, emulator, tall_context):
    """Airflow's own Test row action (issue 8 item 5).

    Airflow 3.3.2's UI builds the test request from the Connections list with
    ``Number(connection.port)``: a stored null port is sent as ``0``, which its endpoint refuses
    ("host or port to test differs from the stored connection"). The provider's plugin drops that
    0 for jira_cloud requests, so the row action tests green.
    """
    conn_id = "jira_form_row_test"
    user = emulator.default_user
    airflow.add_connection(conn_id, conn_type="jira_cloud", host=emulator.url, login=user.email, password=user.api_token)
    assert airflow.get_connection(conn_id)["port"] is None

    page = sign_in(tall_context, airflow, "admin", path="/connections")
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as tested:
        row_of(page, conn_id).get_by_role("button", name="Test Connection").click()
    sent = json.loads(tested.value.request.post_data)
    assert sent["connection_id"] == conn_id and sent["port"] == 0  # what the UI sends...
    assert tested.value.status == 200, tested.value.text()  # ...and still a test, not a 400
    assert tested.value.json()["status"] is True, tested.value.json()
    assert f"Connected to {emulator.url}" in tested.value.json()["message"]
