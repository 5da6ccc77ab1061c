"""Jira Cloud REST client: transport, retries, typed errors, paging, bulk and ADF helpers.

Nothing in this package imports Airflow. Names load on first use, so that importing
``client.errors`` (as operators do at DAG parsing) does not pay for ``requests``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_WHERE = {
    "BulkCreateErrorItem": "bulk",
    "BulkCreateResult": "bulk",
    "BulkFetchResult": "bulk",
    "jql_list": "jql",
    "jql_quote": "jql",
    "JiraAuth": "auth_flow",
    "JiraAuthenticationError": "errors",
    "JiraBulkError": "errors",
    "JiraClient": "http",
    "JiraClientSecretError": "errors",
    "JiraArgumentError": "errors",
    "JiraConfigError": "errors",
    "JiraError": "errors",
    "JiraGoneError": "errors",
    "JiraGrantRevokedError": "errors",
    "JiraHTTPError": "errors",
    "JiraNotFoundError": "errors",
    "JiraOAuthError": "errors",
    "JiraPathError": "errors",
    "JiraPermissionError": "errors",
    "JiraRateLimitError": "errors",
    "JiraResponseError": "errors",
    "JiraScopeError": "errors",
    "JiraSearchPageError": "errors",
    "JiraServerError": "errors",
    "JiraTokenStoreConflictError": "errors",
    "JiraTokenStoreError": "errors",
    "JiraTransportError": "errors",
    "JiraValidationError": "errors",
    "READ_ONLY_POSTS": "retry",
    "RetryPolicy": "retry",
    "SitePacer": "pacing",
    "accessible_resources_url": "urls",
    "authorize_url": "urls",
    "ensure_adf": "adf",
    "error_from_response": "error_mapping",
    "gateway_rest_url": "urls",
    "is_adf": "adf",
    "is_safe_to_repeat": "retry",
    "normalize_base_url": "urls",
    "pacer_for": "pacing",
    "rest_endpoint_url": "urls",
    "site_rest_url": "urls",
    "tenant_info_url": "urls",
    "text_to_adf": "adf",
    "token_url": "urls",
}

if TYPE_CHECKING:
    from airflow_provider_jira_auth.client.adf import ensure_adf, is_adf, text_to_adf
    from airflow_provider_jira_auth.client.auth_flow import JiraAuth
    from airflow_provider_jira_auth.client.bulk import BulkCreateErrorItem, BulkCreateResult, BulkFetchResult
    from airflow_provider_jira_auth.client.errors import JiraArgumentError, JiraAuthenticationError, JiraBulkError, JiraClientSecretError, JiraConfigError, JiraError, JiraGoneError, JiraGrantRevokedError, JiraHTTPError, JiraNotFoundError, JiraOAuthError, JiraPathError, JiraPermissionError, JiraRateLimitError, JiraResponseError, JiraScopeError, JiraSearchPageError, JiraServerError, JiraTokenStoreConflictError, JiraTokenStoreError, JiraTransportError, JiraValidationError
    from airflow_provider_jira_auth.client.error_mapping import error_from_response
    from airflow_provider_jira_auth.client.http import JiraClient
    from airflow_provider_jira_auth.client.jql import jql_list, jql_quote
    from airflow_provider_jira_auth.client.pacing import SitePacer, pacer_for
    from airflow_provider_jira_auth.client.retry import READ_ONLY_POSTS, RetryPolicy, is_safe_to_repeat
    from airflow_provider_jira_auth.client.urls import accessible_resources_url, authorize_url, gateway_rest_url, normalize_base_url, rest_endpoint_url, site_rest_url, tenant_info_url, token_url


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "READ_ONLY_POSTS",
    "BulkCreateErrorItem",
    "BulkCreateResult",
    "BulkFetchResult",
    "JiraAuth",
    "JiraAuthenticationError",
    "JiraBulkError",
    "JiraClient",
    "JiraClientSecretError",
    "JiraArgumentError",
    "JiraConfigError",
    "JiraError",
    "JiraGoneError",
    "JiraGrantRevokedError",
    "JiraHTTPError",
    "JiraNotFoundError",
    "JiraOAuthError",
    "JiraPathError",
    "JiraPermissionError",
    "JiraRateLimitError",
    "JiraResponseError",
    "JiraScopeError",
    "JiraSearchPageError",
    "JiraServerError",
    "JiraTokenStoreConflictError",
    "JiraTokenStoreError",
    "JiraTransportError",
    "JiraValidationError",
    "RetryPolicy",
    "SitePacer",
    "accessible_resources_url",
    "authorize_url",
    "ensure_adf",
    "error_from_response",
    "gateway_rest_url",
    "is_adf",
    "is_safe_to_repeat",
    "jql_list",
    "jql_quote",
    "normalize_base_url",
    "pacer_for",
    "rest_endpoint_url",
    "site_rest_url",
    "tenant_info_url",
    "text_to_adf",
    "token_url",
]
