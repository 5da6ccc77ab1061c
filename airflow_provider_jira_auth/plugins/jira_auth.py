"""The provider's api-server plugin: the token broker and the "Jira connections" page, at ``/jira-auth``."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI

from airflow_provider_jira_auth.hooks.token_provider import BROKER_URL_PREFIX
from airflow_provider_jira_auth.plugins import consent_page, token_broker
from airflow_provider_jira_auth.plugins.test_button import JiraTestPortMiddleware

app = FastAPI(title="Jira Cloud (airflow-provider-jira-auth)", docs_url=None, redoc_url=None, openapi_url=None)
app.include_router(token_broker.router)
app.include_router(consent_page.router)


class JiraAuthPlugin(AirflowPlugin):
    """Mounts the token broker and the Jira connections page on the api-server, and links the page in the UI."""

    name = "jira_auth"
    fastapi_apps = [{"app": app, "url_prefix": BROKER_URL_PREFIX, "name": "Jira Cloud auth"}]
    # Airflow 3.3's Test row action sends "port": 0 for a connection without a port, which its own
    # endpoint then refuses; for jira_cloud requests the middleware drops that 0 (test_button.py).
    fastapi_root_middlewares = [{"middleware": JiraTestPortMiddleware, "name": "Jira Cloud: Test without port 0"}]
    # No ``url_route``: with one, the Airflow UI embeds the page in an iframe sandboxed without
    # ``allow-top-navigation``, where "Connect to Jira" can neither leave the frame for Atlassian's
    # consent page (the browser blocks it) nor show that page inside it (Atlassian forbids framing).
    # Without it the Admin menu links to the page itself, in a new tab. (See docs/architecture.md.)
    external_views = [
        {
            "name": "Jira connections",
            "href": f"{BROKER_URL_PREFIX}{consent_page.PAGE_PATH}",
            "destination": "nav",
            "category": "admin",
        }
    ]
