"""``client/urls.py``: base URL validation and the URL builders."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client import (
    JiraConfigError,
    JiraPathError,
    accessible_resources_url,
    authorize_url,
    gateway_rest_url,
    normalize_base_url,
    rest_endpoint_url,
    site_rest_url,
    tenant_info_url,
    token_url,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.atlassian.net", "https://example.atlassian.net"),
        ("  https://example.atlassian.net/  ", "https://example.atlassian.net"),
        ("example.atlassian.net", "https://example.atlassian.net"),
        ("HTTPS://Example.Atlassian.NET", "https://example.atlassian.net"),
        ("https://proxy.corp.example/jira/", "https://proxy.corp.example/jira"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("http://127.8.9.10", "http://127.8.9.10"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://Jira.Localhost:8080", "http://jira.localhost:8080"),  # *.localhost is loopback (RFC 6761)
    ],
)
def test_valid_base_url_is_normalized(value: str, expected: str) -> None:
    assert normalize_base_url(value, "host") == expected


def test_bare_host_gets_the_default_scheme() -> None:
    assert normalize_base_url("localhost:8080", "host", default_scheme="http") == "http://localhost:8080"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost.attacker.example",
        "http://localhost.attacker.example:8080/jira",
        "http://localhostevil.example",
        "http://127.0.0.1.evil.example",
        "http://127.0.0.1evil.example",
        "http://127.evil.example",
        "http://[::1].evil.example",
    ],
)
def test_http_is_refused_for_a_host_that_only_begins_like_a_loopback_one(url: str) -> None:
    with pytest.raises(JiraConfigError, match="http:// is only allowed for loopback hosts|not a valid URL"):
        normalize_base_url(url, "host")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "empty"),
        ("", "empty"),
        ("   ", "empty"),
        ("http://example.atlassian.net", "http:// is only allowed for loopback hosts"),
        ("http://10.0.0.1", "http:// is only allowed for loopback hosts"),
        ("https://exa mple.net", "spaces"),
        ("https://", "no host"),
        ("https://example.atlassian.net?x=1", "'?' or '#'"),
        ("https://example.atlassian.net/#top", "'?' or '#'"),
        ("ftp://example.atlassian.net", "scheme"),
        ("https://me:pw@example.atlassian.net", "user name or password"),
        ("https://example.atlassian.net:port", "not a valid URL"),
    ],
)
def test_invalid_base_url_is_rejected_naming_field_and_fix(value: str | None, fragment: str) -> None:
    with pytest.raises(JiraConfigError) as caught:
        normalize_base_url(value, "extra.api_url")

    assert caught.value.field == "extra.api_url"
    assert fragment in str(caught.value)
    assert "https://" in str(caught.value) or "login/password" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "kind"), [(8080, "int"), (True, "bool"), (["https://example.atlassian.net"], "list"), (b"https://x", "bytes")]
)
def test_a_base_url_that_is_not_a_string_is_refused_naming_the_field(value: object, kind: str) -> None:
    with pytest.raises(JiraConfigError) as caught:
        normalize_base_url(value, "extra.auth_url")  # type: ignore[arg-type]

    assert caught.value.field == "extra.auth_url"
    assert f"expected a URL string, got {kind}; use e.g. https://example.atlassian.net" in str(caught.value)


def test_url_builders() -> None:
    site, api, auth = "https://example.atlassian.net", "https://api.atlassian.com", "https://auth.atlassian.com"

    assert site_rest_url(site) == "https://example.atlassian.net/rest/api/3"
    assert gateway_rest_url(api, "c-1") == "https://api.atlassian.com/ex/jira/c-1/rest/api/3"
    assert tenant_info_url(site) == "https://example.atlassian.net/_edge/tenant_info"
    assert token_url(auth) == "https://auth.atlassian.com/oauth/token"
    assert authorize_url(auth) == "https://auth.atlassian.com/authorize"
    assert accessible_resources_url(api) == "https://api.atlassian.com/oauth/token/accessible-resources"


@pytest.mark.parametrize(
    "path",
    [
        "issue/ENG-1/transitions",
        "issue/ENG-1/properties/release..notes",
        "project/ENG/properties/.hidden",
        "project/ENG/versions/...",
        "search/jql?jql=labels%20%3D%20%22..%2F..%22",
        "issue/ENG-1?fields=summary&x=../..",
    ],
)
def test_endpoint_paths_under_the_rest_root_are_joined_as_given(path: str) -> None:
    root = "https://api.atlassian.com/ex/jira/c-1/rest/api/3"

    assert rest_endpoint_url(root, path) == f"{root}/{path}"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("issue\\..\\..\\..\\ex\\confluence", "contains a backslash"),
        ("issue/ENG-1%5Cx", "contains a backslash"),
        ("https://evil.example/steal", "is an absolute URL or starts with '//'"),
        ("//evil.example/steal", "is an absolute URL or starts with '//'"),
        ("/rest/api/3/myself", "is an absolute URL or starts with '//'"),
        ("../../ex/confluence/c-1/wiki", "has a '.' or '..' segment"),
        ("issue/./myself", "has a '.' or '..' segment"),
        ("issue/.", "has a '.' or '..' segment"),
        ("issue/..;x=1/..;/ex/confluence", "has a '.' or '..' segment"),
        ("issue/.;jsessionid=1/myself", "has a '.' or '..' segment"),
        ("issue/%2e%2E/myself", "has a '.' or '..' segment"),
        ("issue/%252e%252e/myself", "has a '.' or '..' segment"),
        ("issue/%25252e%25252e/myself", "has a '.' or '..' segment"),
    ],
)
def test_paths_that_could_leave_the_rest_root_are_refused_before_sending(path: str, why: str) -> None:
    root = "https://api.atlassian.com/ex/jira/c-1/rest/api/3"

    with pytest.raises(JiraPathError) as caught:
        rest_endpoint_url(root, path)

    message = str(caught.value)
    assert message.startswith(f"Refusing to call Jira endpoint {path!r}: the path {why}")
    assert "could leave the REST root /ex/jira/c-1/rest/api/3 " in message
