"""Finding a site's cloud id, which gateway URLs need."""

from __future__ import annotations

import requests

from airflow_provider_jira_auth.client.errors import JiraConfigError
from airflow_provider_jira_auth.client.urls import tenant_info_url


def fetch_cloud_id(
    site_url: str,
    *,
    timeout: float = 30.0,
    verify: bool | str = True,
    session: requests.Session | None = None,
) -> str:
    """Read ``cloudId`` from ``{site}/_edge/tenant_info``, which needs no auth (Atlassian: "Implementing OAuth 2.0 (3LO)")."""
    url = tenant_info_url(site_url)
    fix = "or set cloud_id in the connection's extra (Jira admin > System > the site's cloud id)"
    http = session or requests
    try:
        response = http.get(url, timeout=timeout, verify=verify)
    except requests.RequestException as exc:
        raise JiraConfigError("host", f"could not reach {url} to look up the cloud id ({type(exc).__name__}); "
                              f"check the site URL, {fix}") from None
    try:
        cloud_id = response.json().get("cloudId") if response.ok else None
    except ValueError:
        cloud_id = None
    if not cloud_id:
        raise JiraConfigError(
            "host",
            f"{url} answered HTTP {response.status_code} without a cloudId: is the host a Jira Cloud "
            f"site URL like https://your-site.atlassian.net? Fix the host, {fix}",
        )
    return str(cloud_id)
