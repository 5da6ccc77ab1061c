"""Jira's ``nextPageToken`` paging (``POST search/jql``, ``POST changelog/bulkfetch``): when a
listing ends, and a token that comes back unchanged, which would page forever."""

from __future__ import annotations

from typing import Any

from airflow_provider_jira_auth.client.errors import JiraError


def next_page_token(token: Any, is_last: Any, sent: Any, *, what: str = "POST search/jql") -> str | None:
    """The token to ask for the next page with, or ``None`` when the page was the last.

    :param token: the page's ``nextPageToken``.
    :param is_last: the page's ``isLast``.
    :param sent: the token the page was asked for with (``None`` for the first page).
    :param what: the request, for the error message.
    :raises JiraError: Jira answered the token it was sent, so the next request would be the same.
    """
    if is_last or not token:
        return None
    if token == sent:
        raise JiraError(f"{what} returned the same nextPageToken twice; stopping instead of looping forever")
    return str(token)
