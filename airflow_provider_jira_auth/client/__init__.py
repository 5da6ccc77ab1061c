"""Jira Cloud REST client: transport, retries, typed errors, paging, bulk and ADF helpers.

Nothing in this package imports Airflow.
"""

from __future__ import annotations

from airflow_provider_jira_auth.client.adf import ensure_adf, is_adf, text_to_adf
from airflow_provider_jira_auth.client.bulk import BulkCreateErrorItem, BulkCreateResult, BulkFetchResult
from airflow_provider_jira_auth.client.errors import (
    JiraAuthenticationError,
    JiraBulkError,
    JiraClientSecretError,
    JiraConfigError,
    JiraError,
    JiraGoneError,
    JiraGrantRevokedError,
    JiraHTTPError,
    JiraNotFoundError,
    JiraOAuthError,
    JiraPermissionError,
    JiraRateLimitError,
    JiraResponseError,
    JiraScopeError,
    JiraServerError,
    JiraTokenStoreError,
    JiraTransportError,
    JiraValidationError,
)
from airflow_provider_jira_auth.client.http import JiraClient, error_from_response
from airflow_provider_jira_auth.client.retry import READ_ONLY_POSTS, RetryPolicy, is_safe_to_repeat
from airflow_provider_jira_auth.client.urls import (
    accessible_resources_url,
    authorize_url,
    gateway_rest_url,
    normalize_base_url,
    site_rest_url,
    tenant_info_url,
    token_url,
)

__all__ = [
    "READ_ONLY_POSTS",
    "BulkCreateErrorItem",
    "BulkCreateResult",
    "BulkFetchResult",
    "JiraAuthenticationError",
    "JiraBulkError",
    "JiraClient",
    "JiraClientSecretError",
    "JiraConfigError",
    "JiraError",
    "JiraGoneError",
    "JiraGrantRevokedError",
    "JiraHTTPError",
    "JiraNotFoundError",
    "JiraOAuthError",
    "JiraPermissionError",
    "JiraRateLimitError",
    "JiraResponseError",
    "JiraScopeError",
    "JiraServerError",
    "JiraTokenStoreError",
    "JiraTransportError",
    "JiraValidationError",
    "RetryPolicy",
    "accessible_resources_url",
    "authorize_url",
    "ensure_adf",
    "error_from_response",
    "gateway_rest_url",
    "is_adf",
    "is_safe_to_repeat",
    "normalize_base_url",
    "site_rest_url",
    "tenant_info_url",
    "text_to_adf",
    "token_url",
]
