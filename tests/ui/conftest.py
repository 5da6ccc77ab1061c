"""One Airflow deployment, one Jira Cloud emulator and one browser for every browser test.

Airflow uses the simple auth manager with real users (``admin`` and ``viewer``, not
``all_admins``) and ``[core] test_connection = Enabled``, as a deployment that offers Test would.
"""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.airflow_harness import UsersAirflowEnvironment

USERS = ("admin", "viewer")


@pytest.fixture(scope="session")
def emulator():
    with JiraCloudEmulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def airflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("airflow-ui")
    (root / "dags").mkdir()
    env = UsersAirflowEnvironment(root, users=USERS, dags_folder=root / "dags", parallelism=2)
    env.start()
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def app(airflow, emulator):
    """The Atlassian app whose only registered callback is the page's."""
    from tests.ui.browser import PAGE

    return emulator.add_oauth_app(redirect_uris=(f"{airflow.api_url}{PAGE}/callback",))


@pytest.fixture(scope="module")
def browser():
    # Per module, not per session: Playwright's sync API keeps an asyncio loop running in this
    # thread while it is open, and tests that run after these on the same xdist worker call
    # asyncio.run(), which refuses to start inside a running loop.
    from tests.ui.browser import CHROMIUM, CHROMIUM_FLAGS, sync_api

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


@pytest.fixture
def tall_context(browser):
    """A window tall enough for Airflow's connection dialog."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1100})
    ctx.set_default_timeout(30_000)
    try:
        yield ctx
    finally:
        ctx.close()
