"""Helpers of the browser tests: Debian's chromium driven by Playwright, as a person uses the UI.

Importing this module skips the importing test module when chromium or Playwright is missing
(``make test`` installs chromium with apt where it can; under ``CI`` a missing one is an error).
``playwright install`` is never used: it downloads browser builds from outside the package registries.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

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
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
expect = sync_api.expect

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGE = "/jira-auth/connect"
PAGE_HEADING = "Jira Cloud connections"


def update_screenshots() -> bool:
    """``UPDATE_SCREENSHOT=1`` makes the tests write the PNGs under docs/ that the README shows."""
    return os.environ.get("UPDATE_SCREENSHOT") == "1"


def sign_in(context, airflow, user: str, path: str = PAGE):
    """Open ``path`` in a new tab; signed out, through Airflow's real login page, then back on ``path``."""
    page = context.new_page()
    page.goto(airflow.api_url + path)
    if not context.cookies(airflow.api_url):  # the first tab of this browser context: not signed in yet
        expect(page).to_have_url(re.compile(r"/auth/login\?next="))
        page.get_by_label("Username").fill(user)
        page.get_by_label("Password").fill(airflow.password(user))
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(airflow.api_url + path)
    if path == PAGE:
        expect(page.get_by_role("heading", name=PAGE_HEADING)).to_be_visible()
    return page


def row_of(page, conn_id: str):
    """The table row of ``conn_id`` (on the Jira connections page and on Airflow's Connections list)."""
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))


def press_test_on_the_page(page, airflow, conn_id: str):
    """Press the page's Test for ``conn_id``; the page comes back with the result in its banner."""
    row_of(page, conn_id).get_by_role("button", name="Test", exact=True).click()
    page.wait_for_url(re.compile(re.escape(airflow.api_url + PAGE) + r"\?(message|error)="))
    return page.locator("p[role=status], p[role=alert]")




def dom_text(page) -> str:
    """Everything a person (or a script in the page) can read: the HTML, every field's live value, the text."""
    return page.evaluate(
        """() => {
            const values = [...document.querySelectorAll('input, textarea, select')].map(e => e.value);
            return [document.documentElement.outerHTML, document.body.innerText, ...values].join('\\n');
        }"""
    )
