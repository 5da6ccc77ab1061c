"""The Jira Cloud emulator, driven over real HTTP with requests: one behaviour per test."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator

API = "/rest/api/3"
SCOPE_MISMATCH = {"code": 401, "message": "Unauthorized; scope does not match"}
ADF = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hello"}]}]}


def basic(emu: JiraCloudEmulator, user=None) -> tuple[str, str]:
    user = user or emu.default_user
    return (user.email, user.api_token)


def site(emu: JiraCloudEmulator, path: str) -> str:
    return f"{emu.url}{API}{path}"


def gateway(emu: JiraCloudEmulator, path: str, cloud_id: str | None = None) -> str:
    return f"{emu.api_url}/ex/jira/{cloud_id or emu.cloud_id}{API}{path}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def search(http: requests.Session, emu: JiraCloudEmulator, jql: str, **body) -> requests.Response:
    return http.post(site(emu, "/search/jql"), json={"jql": jql, **body}, auth=basic(emu))


def keys_of(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [i["key"] for i in response.json()["issues"]]


def refresh(
    http: requests.Session, emu: JiraCloudEmulator, refresh_token: str, secret: str | None = None
) -> requests.Response:
    app = emu.default_app
    return http.post(
        f"{emu.auth_url}/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": app.client_id,
            "client_secret": secret or app.client_secret,
            "refresh_token": refresh_token,
        },
    )


def authorize(http: requests.Session, emu: JiraCloudEmulator, **overrides) -> requests.Response:
    params = {
        "audience": "api.atlassian.com",
        "client_id": emu.default_app.client_id,
        "scope": "read:jira-work offline_access",
        "redirect_uri": "http://127.0.0.1/callback",
        "state": "s-123",
        "response_type": "code",
        "prompt": "consent",
        **overrides,
    }
    return http.get(f"{emu.auth_url}/authorize", params=params, allow_redirects=False)


def redirect_query(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


# -- lifecycle and plumbing ------------------------------------------------------------------------


def test_url_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        _ = JiraCloudEmulator().url


def test_context_manager_serves_then_stops_closing_keep_alive_connections(http: requests.Session) -> None:
    with JiraCloudEmulator() as emu:
        url = emu.url
        assert emu.site_url == emu.api_url == emu.auth_url == url
        assert http.get(f"{url}{API}/serverInfo").status_code == 200
    with pytest.raises(requests.ConnectionError):
        http.get(f"{url}{API}/serverInfo", timeout=5)


def test_tenant_info_returns_cloud_id_without_auth(emu: JiraCloudEmulator, http: requests.Session) -> None:
    assert http.get(f"{emu.url}/_edge/tenant_info").json() == {"cloudId": emu.cloud_id}


def test_server_info_is_anonymous(emu: JiraCloudEmulator, http: requests.Session) -> None:
    info = http.get(site(emu, "/serverInfo")).json()
    assert info["deploymentType"] == "Cloud" and info["baseUrl"] == emu.url


def test_server_info_with_bad_credentials_answers_200_with_seraph_header(emu, http) -> None:
    response = http.get(site(emu, "/serverInfo"), auth=("ada@example.com", "expired"))
    assert response.status_code == 200
    assert response.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"


def test_unknown_path_is_404_json(emu, http) -> None:
    response = http.get(site(emu, "/nothing/here"), auth=basic(emu))
    assert response.status_code == 404 and response.json()["errorMessages"]


@pytest.mark.parametrize("path", ["/rest/api/2/search", "/rest/api/3/search"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_removed_search_endpoints_answer_410(emu, http, path: str, method: str) -> None:
    response = http.request(method, f"{emu.url}{path}", params={"jql": "project = ENG"}, auth=basic(emu))
    assert response.status_code == 410
    assert "/rest/api/3/search/jql" in response.json()["errorMessages"][0]


def test_keep_alive_serves_many_requests_on_one_connection(emu) -> None:
    connection = HTTPConnection("127.0.0.1", int(emu.url.rsplit(":", 1)[1]), timeout=5)
    connection.request("GET", f"{API}/serverInfo")
    first_socket = connection.sock
    for _ in range(3):
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Connection") is None
        response.read()
        connection.request("GET", f"{API}/serverInfo")
    assert connection.sock is first_socket
    connection.close()


# -- which credential works where --------------------------------------------------------------------


def test_classic_api_token_works_at_the_site(emu, http) -> None:
    me = http.get(site(emu, "/myself"), auth=basic(emu)).json()
    assert me["emailAddress"] == emu.default_user.email and me["accountId"] == emu.default_user.account_id


def test_bad_api_token_gets_401(emu, http) -> None:
    response = http.get(site(emu, "/myself"), auth=(emu.default_user.email, "wrong"))
    assert response.status_code == 401
    assert response.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"


def test_missing_credentials_get_401(emu, http) -> None:
    assert http.get(site(emu, "/myself")).status_code == 401


def test_classic_api_token_at_the_gateway_gets_401(emu, http) -> None:
    assert http.get(gateway(emu, "/myself"), auth=basic(emu)).status_code == 401


def test_scoped_api_token_works_through_the_gateway(emu, http) -> None:
    response = http.get(gateway(emu, "/myself"), auth=basic(emu, emu.default_scoped_user))
    assert response.json()["emailAddress"] == emu.default_scoped_user.email


def test_scoped_api_token_at_the_site_gets_401(emu, http) -> None:
    assert http.get(site(emu, "/myself"), auth=basic(emu, emu.default_scoped_user)).status_code == 401


def test_scoped_api_token_without_the_scope_gets_scope_mismatch(emu, http) -> None:
    reader = emu.add_user("reader@example.com", scopes=["read:jira-work"])
    response = http.post(gateway(emu, "/issue"), auth=basic(emu, reader), json={"fields": {}})
    assert response.status_code == 401 and response.json() == SCOPE_MISMATCH
    assert emu.stats.scope_rejections == 1


def test_bearer_token_at_the_site_gets_401(emu, http) -> None:
    token = emu.issue_grant(emu.default_app.client_id)["access_token"]
    assert http.get(site(emu, "/myself"), headers=bearer(token)).status_code == 401


def test_bearer_token_works_through_the_gateway(emu, http) -> None:
    token = emu.issue_grant(emu.default_app.client_id)["access_token"]
    me = http.get(gateway(emu, "/myself"), headers=bearer(token)).json()
    assert me["accountId"] == emu.default_user.account_id


def test_bearer_token_without_the_scope_gets_scope_mismatch(emu, http) -> None:
    token = emu.issue_grant(emu.default_app.client_id, scopes=["read:jira-work"])["access_token"]
    response = http.get(gateway(emu, "/myself"), headers=bearer(token))
    assert response.status_code == 401 and response.json() == SCOPE_MISMATCH


def test_unknown_bearer_token_gets_401(emu, http) -> None:
    assert http.get(gateway(emu, "/myself"), headers=bearer("nope")).status_code == 401


def test_gateway_with_unknown_cloud_id_is_404(emu, http) -> None:
    token = emu.issue_grant(emu.default_app.client_id)["access_token"]
    response = http.get(gateway(emu, "/myself", cloud_id="00000000-0000-0000-0000-000000000000"), headers=bearer(token))
    assert response.status_code == 404


def test_self_links_through_the_gateway_point_at_the_gateway(emu, http) -> None:
    (key,) = emu.seed_issues(count=1)
    token = emu.issue_grant(emu.default_app.client_id)["access_token"]
    issue = http.get(gateway(emu, f"/issue/{key}"), headers=bearer(token)).json()
    assert issue["self"].startswith(f"{emu.api_url}/ex/jira/{emu.cloud_id}/rest/api/3/issue/")


# -- consent and code exchange -----------------------------------------------------------------------


def test_authorize_redirects_back_with_code_and_state(emu, http) -> None:
    answer = redirect_query(authorize(http, emu))
    assert answer["state"] == "s-123" and answer["code"]


def test_authorize_refuses_an_unregistered_redirect_uri_without_redirecting(emu, http) -> None:
    response = authorize(http, emu, redirect_uri="http://127.0.0.1/other")
    assert response.status_code == 400 and "Location" not in response.headers


def test_authorize_refuses_an_unknown_client_id(emu, http) -> None:
    assert authorize(http, emu, client_id="nobody").status_code == 400


def test_authorize_requires_the_api_audience(emu, http) -> None:
    assert redirect_query(authorize(http, emu, audience="example.com"))["error"] == "invalid_request"


def test_authorize_requires_response_type_code(emu, http) -> None:
    assert redirect_query(authorize(http, emu, response_type="token"))["error"] == "unsupported_response_type"


def test_authorize_denied_consent_redirects_with_access_denied(emu, http) -> None:
    emu.consent = "deny"
    answer = redirect_query(authorize(http, emu))
    assert answer["error"] == "access_denied" and answer["state"] == "s-123" and "code" not in answer


def test_code_exchange_returns_tokens_with_granted_scopes(emu, http) -> None:
    code = redirect_query(authorize(http, emu))["code"]
    app = emu.default_app
    response = http.post(
        f"{emu.auth_url}/oauth/token",
        json={
            "grant_type": "authorization_code",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "code": code,
            "redirect_uri": "http://127.0.0.1/callback",
        },
    )
    tokens = response.json()
    assert response.status_code == 200
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["scope"] == "read:jira-work offline_access" and tokens["refresh_token"]
    assert emu.stats.code_exchanges == 1


def test_code_exchange_accepts_form_encoded_bodies(emu, http) -> None:
    code = redirect_query(authorize(http, emu))["code"]
    app = emu.default_app
    response = http.post(
        f"{emu.auth_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "code": code,
            "redirect_uri": "http://127.0.0.1/callback",
        },
    )
    assert response.status_code == 200 and response.json()["access_token"]


def _exchange(http, emu, code: str, **overrides) -> requests.Response:
    app = emu.default_app
    body = {
        "grant_type": "authorization_code",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "code": code,
        "redirect_uri": "http://127.0.0.1/callback",
        **overrides,
    }
    return http.post(f"{emu.auth_url}/oauth/token", json={k: v for k, v in body.items() if v is not None})


def test_a_callback_url_added_to_an_app_is_one_authorize_redirects_to(emu, http) -> None:
    page_callback = "http://localhost:8080/jira-auth/connect/callback"
    refused = authorize(http, emu, redirect_uri=page_callback)
    assert refused.status_code == 400 and "redirect_uri is not registered" in refused.text

    app = emu.add_redirect_uri(emu.default_app.client_id, page_callback)

    response = authorize(http, emu, redirect_uri=page_callback)
    assert response.headers["Location"].startswith(page_callback + "?")
    assert _exchange(http, emu, redirect_query(response)["code"], redirect_uri=page_callback).status_code == 200
    assert redirect_query(authorize(http, emu))["code"]  # the first callback URL still works
    assert app.redirect_uris == ("http://127.0.0.1/callback", page_callback)


def test_adding_a_known_callback_url_again_changes_nothing(emu) -> None:
    client_id = emu.default_app.client_id
    emu.add_redirect_uri(client_id, "http://localhost:8080/jira-auth/connect/callback")
    emu.add_redirect_uri(client_id, "http://localhost:8080/jira-auth/connect/callback")
    assert emu.default_app.redirect_uris == (
        "http://127.0.0.1/callback",
        "http://localhost:8080/jira-auth/connect/callback",
    )


@pytest.mark.parametrize(
    ("client_id", "uri", "says"),
    [
        ("nobody", "http://localhost:8080/cb", "no OAuth app with client_id 'nobody'"),
        (None, "localhost:8080/cb", "not a callback URL"),
        (None, "/jira-auth/connect/callback", "not a callback URL"),
        (None, "http://localhost:8080/cb#x", "not a callback URL"),
    ],
)
def test_adding_a_callback_url_needs_a_known_app_and_an_absolute_url(emu, client_id, uri, says) -> None:
    with pytest.raises(ValueError, match=says):
        emu.add_redirect_uri(client_id or emu.default_app.client_id, uri)
    assert emu.default_app.redirect_uris == ("http://127.0.0.1/callback",)


def test_authorization_code_is_single_use(emu, http) -> None:
    code = redirect_query(authorize(http, emu))["code"]
    assert _exchange(http, emu, code).status_code == 200
    second = _exchange(http, emu, code)
    assert second.status_code == 403 and second.json()["error"] == "invalid_grant"


def test_code_exchange_requires_the_same_redirect_uri(emu, http) -> None:
    code = redirect_query(authorize(http, emu))["code"]
    response = _exchange(http, emu, code, redirect_uri="http://127.0.0.1/elsewhere")
    assert response.status_code == 403 and response.json()["error"] == "invalid_grant"


def test_code_exchange_requires_the_client_secret(emu, http) -> None:
    code = redirect_query(authorize(http, emu))["code"]
    response = _exchange(http, emu, code, client_secret=None)
    assert response.status_code == 401 and response.json() == {
        "error": "access_denied",
        "error_description": "Unauthorized",
    }


def test_no_refresh_token_without_offline_access(emu) -> None:
    assert "refresh_token" not in emu.issue_grant(emu.default_app.client_id, scopes=["read:jira-work"])


def test_unsupported_grant_type_is_refused(emu, http) -> None:
    app = emu.default_app
    response = http.post(
        f"{emu.auth_url}/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    assert response.status_code == 403 and response.json()["error"] == "unsupported_grant_type"


def test_accessible_resources_puts_a_confluence_entry_with_the_same_id_first(emu, http) -> None:
    token = emu.issue_grant(emu.default_app.client_id)["access_token"]
    resources = http.get(f"{emu.api_url}/oauth/token/accessible-resources", headers=bearer(token)).json()
    confluence, jira = resources
    assert confluence["id"] == jira["id"] == emu.cloud_id
    assert all("confluence" in s for s in confluence["scopes"])
    assert jira["url"] == emu.url and jira["scopes"] == ["read:jira-work", "write:jira-work", "read:jira-user"]
    assert set(jira) == {"id", "name", "url", "scopes", "avatarUrl"}


def test_accessible_resources_lists_added_sites_served_through_the_gateway(emu, http) -> None:
    other = emu.add_site("second")
    token = emu.issue_grant(emu.default_app.client_id)["access_token"]
    resources = http.get(f"{emu.api_url}/oauth/token/accessible-resources", headers=bearer(token)).json()
    assert {"id": other.cloud_id, "url": other.url}.items() <= resources[-1].items()
    assert other.url != emu.url
    assert http.get(f"{other.url}/_edge/tenant_info").json() == {"cloudId": other.cloud_id}
    project = http.get(gateway(emu, "/project/ENG", cloud_id=other.cloud_id), headers=bearer(token))
    assert project.json()["key"] == "ENG"


def test_accessible_resources_requires_a_valid_bearer_token(emu, http) -> None:
    assert http.get(f"{emu.api_url}/oauth/token/accessible-resources", headers=bearer("x")).status_code == 401


# -- rotating refresh tokens ---------------------------------------------------------------------------


def test_refresh_returns_a_new_refresh_token(emu, http) -> None:
    first = emu.issue_grant(emu.default_app.client_id)["refresh_token"]
    tokens = refresh(http, emu, first).json()
    assert tokens["refresh_token"] != first and tokens["access_token"]
    assert emu.stats.token_refreshes == 1


def test_retired_refresh_token_within_the_leeway_still_works(emu, http) -> None:
    first = emu.issue_grant(emu.default_app.client_id)["refresh_token"]
    second = refresh(http, emu, first).json()["refresh_token"]
    emu.advance(599)
    again = refresh(http, emu, first)
    assert again.status_code == 200 and again.json()["refresh_token"] not in (first, second)
    assert emu.stats.reuse_within_leeway == 1
    assert refresh(http, emu, second).status_code == 200


def test_retired_refresh_token_after_the_leeway_revokes_the_whole_family(emu, http) -> None:
    first = emu.issue_grant(emu.default_app.client_id)["refresh_token"]
    current = refresh(http, emu, first).json()
    emu.advance(601)
    reuse = refresh(http, emu, first)
    assert reuse.status_code == 403 and reuse.json()["error"] == "invalid_grant"
    assert emu.stats.family_revocations == 1
    assert refresh(http, emu, current["refresh_token"]).json()["error"] == "invalid_grant"
    assert http.get(gateway(emu, "/myself"), headers=bearer(current["access_token"])).status_code == 401


def test_unknown_refresh_token_is_unauthorized_client(emu, http) -> None:
    response = refresh(http, emu, "rt-unknown")
    assert response.status_code == 403
    assert response.json() == {"error": "unauthorized_client", "error_description": "refresh_token is invalid"}
    assert emu.stats.rejected_refreshes == 1


def test_wrong_client_secret_on_refresh_is_access_denied(emu, http) -> None:
    first = emu.issue_grant(emu.default_app.client_id)["refresh_token"]
    response = refresh(http, emu, first, secret="wrong")
    assert response.status_code == 401 and response.json()["error"] == "access_denied"


def test_revoked_grant_answers_invalid_grant(emu, http) -> None:
    first = emu.issue_grant(emu.default_app.client_id)["refresh_token"]
    assert emu.revoke_grant(first) == 1
    response = refresh(http, emu, first)
    assert response.status_code == 403
    assert response.json() == {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}


def test_revoke_grant_by_client_id_revokes_all_its_grants(emu, http) -> None:
    tokens = [emu.issue_grant(emu.default_app.client_id)["refresh_token"] for _ in range(2)]
    assert emu.revoke_grant(emu.default_app.client_id) == 2
    assert all(refresh(http, emu, t).status_code == 403 for t in tokens)


def test_access_token_expires_after_its_ttl(emu, http) -> None:
    emu.oauth.access_token_ttl = 60
    tokens = emu.issue_grant(emu.default_app.client_id)
    assert tokens["expires_in"] == 60
    assert http.get(gateway(emu, "/myself"), headers=bearer(tokens["access_token"])).status_code == 200
    emu.advance(61)
    assert http.get(gateway(emu, "/myself"), headers=bearer(tokens["access_token"])).status_code == 401


def test_old_access_token_lives_at_most_companion_ttl_after_its_refresh_token_is_used(emu, http) -> None:
    tokens = emu.issue_grant(emu.default_app.client_id)
    refresh(http, emu, tokens["refresh_token"])
    emu.advance(599)
    assert http.get(gateway(emu, "/myself"), headers=bearer(tokens["access_token"])).status_code == 200
    emu.advance(2)
    assert http.get(gateway(emu, "/myself"), headers=bearer(tokens["access_token"])).status_code == 401


def test_refresh_token_unused_for_the_inactivity_expiry_is_invalid_grant(emu, http) -> None:
    first = emu.issue_grant(emu.default_app.client_id)["refresh_token"]
    emu.advance(90 * 24 * 3600 + 1)
    assert refresh(http, emu, first).json()["error"] == "invalid_grant"


def test_every_nth_refresh_omits_the_refresh_token_and_keeps_the_old_one_current(emu, http) -> None:
    emu.oauth.omit_refresh_token_every = 2
    first = emu.issue_grant(emu.default_app.client_id)["refresh_token"]
    second = refresh(http, emu, first).json()["refresh_token"]
    omitted = refresh(http, emu, second).json()
    assert "refresh_token" not in omitted and omitted["access_token"]
    emu.advance(3600)  # far past the leeway: "second" was never retired, so this is no reuse
    assert refresh(http, emu, second).status_code == 200
    assert emu.stats.family_revocations == 0


def test_concurrent_refreshes_with_one_token_within_the_leeway_all_succeed(emu) -> None:
    first = emu.issue_grant(emu.default_app.client_id)["refresh_token"]
    statuses: list[int] = []

    def worker() -> None:
        with requests.Session() as session:
            statuses.append(refresh(session, emu, first).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 8
    assert emu.stats.token_refreshes == 8 and emu.stats.reuse_within_leeway == 7


# -- search -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("jql", ["", "   ", "ORDER BY key"])
def test_search_requires_a_bounded_jql(emu, http, jql: str) -> None:
    response = search(http, emu, jql)
    assert response.status_code == 400 and "Unbounded JQL" in response.json()["errorMessages"][0]


def test_search_returns_only_ids_by_default(emu, http) -> None:
    emu.seed_issues(count=2)
    issue = http.get(site(emu, "/search/jql"), params={"jql": "project = ENG"}, auth=basic(emu)).json()["issues"][0]
    assert issue == {"id": "10001", "key": "ENG-1", "self": f"{emu.url}/rest/api/3/issue/10001", "fields": {}}


def test_search_pages_with_next_page_token_and_no_total(emu, http) -> None:
    emu.seed_issues(count=120)
    seen, token, pages = [], None, 0
    while True:
        body = {"maxResults": 50, **({"nextPageToken": token} if token else {})}
        page = search(http, emu, "project = ENG ORDER BY key", **body).json()
        assert "total" not in page
        seen += [i["key"] for i in page["issues"]]
        pages += 1
        if page["isLast"]:
            assert "nextPageToken" not in page
            break
        token = page["nextPageToken"]
    assert pages == 3 and seen == [f"ENG-{n}" for n in range(1, 121)]


def test_search_get_pages_like_post(emu, http) -> None:
    emu.seed_issues(count=3)
    params = {"jql": "project = ENG", "maxResults": 2, "fields": "summary"}
    first = http.get(site(emu, "/search/jql"), params=params, auth=basic(emu)).json()
    second = http.get(
        site(emu, "/search/jql"), params={**params, "nextPageToken": first["nextPageToken"]}, auth=basic(emu)
    ).json()
    assert [i["key"] for i in first["issues"] + second["issues"]] == ["ENG-1", "ENG-2", "ENG-3"]
    assert second["isLast"] and set(second["issues"][0]["fields"]) == {"summary"}


def test_search_default_page_size_is_50(emu, http) -> None:
    emu.seed_issues(count=60)
    assert len(keys_of(search(http, emu, "project = ENG"))) == 50


def test_search_caps_pages_at_100_with_fields_and_5000_with_ids_only(emu, http) -> None:
    emu.seed_issues(count=5100)
    assert len(keys_of(search(http, emu, "project = ENG", maxResults=5000, fields=["summary"]))) == 100
    assert len(keys_of(search(http, emu, "project = ENG", maxResults=9999, fields=["id", "key"]))) == 5000


def test_search_fields_all_and_exclusions(emu, http) -> None:
    emu.seed_issues(count=1)
    everything = search(http, emu, "key = ENG-1", fields=["*all", "-comment", "-description"]).json()
    fields = everything["issues"][0]["fields"]
    assert {"summary", "status", "labels", "issuetype", "project", "created"} <= set(fields)
    assert "comment" not in fields and "description" not in fields
    listed = search(http, emu, "key = ENG-1", fields="summary,status").json()["issues"][0]["fields"]
    assert set(listed) == {"summary", "status"}


def test_search_invalid_page_token_is_400(emu, http) -> None:
    assert search(http, emu, "project = ENG", nextPageToken="!!!").status_code == 400


def test_search_results_stay_stable_across_pages_while_issues_change(emu, http) -> None:
    emu.seed_issues(count=4, statuses=["To Do"])
    first = search(http, emu, "status = 'To Do'", maxResults=2).json()
    emu.set_status("ENG-3", "Done")
    second = search(http, emu, "status = 'To Do'", maxResults=2, nextPageToken=first["nextPageToken"]).json()
    assert [i["key"] for i in second["issues"]] == ["ENG-3", "ENG-4"]


def test_approximate_count(emu, http) -> None:
    emu.seed_issues(count=9, statuses=["To Do", "Done", "Done"])
    response = http.post(site(emu, "/search/approximate-count"), json={"jql": "statusCategory = Done"}, auth=basic(emu))
    assert response.json() == {"count": 6}


def test_approximate_count_requires_a_bounded_jql(emu, http) -> None:
    assert http.post(site(emu, "/search/approximate-count"), json={}, auth=basic(emu)).status_code == 400


def test_streams_50000_issues_over_one_keep_alive_connection(emu, http) -> None:
    # How fast is bench/'s business; this checks the shape: 500 pages, every issue once, one connection.
    emu.seed_issues(count=50_000)
    opened_before = emu.connections_accepted
    keys: set[str] = set()
    pages, token = 0, None
    while True:
        body = {
            "fields": ["summary", "status", "labels"],
            "maxResults": 100,
            **({"nextPageToken": token} if token else {}),
        }
        page = search(http, emu, "project = ENG ORDER BY key", **body).json()
        keys.update(issue["key"] for issue in page["issues"])
        pages += 1
        if page["isLast"]:
            break
        token = page["nextPageToken"]
    assert keys == {f"ENG-{n}" for n in range(1, 50_001)}
    assert pages == 500
    assert emu.connections_accepted - opened_before <= 1  # the session's one keep-alive connection


# -- JQL ------------------------------------------------------------------------------------------------


@pytest.fixture
def varied(emu: JiraCloudEmulator) -> JiraCloudEmulator:
    emu.seed_issues(count=6, statuses=["To Do", "In Progress", "Done"], labels=["backend", ["frontend", "ux"], []])
    return emu


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("status = 'to do'", ["ENG-1", "ENG-4"]),
        ('status = "IN PROGRESS"', ["ENG-2", "ENG-5"]),
        ("status in ('To Do', Done)", ["ENG-1", "ENG-3", "ENG-4", "ENG-6"]),
        ("statusCategory = Done", ["ENG-3", "ENG-6"]),
        ("statusCategory != Done AND labels = backend", ["ENG-1", "ENG-4"]),
        ("labels in (ux)", ["ENG-2", "ENG-5"]),
        ("labels is EMPTY", ["ENG-3", "ENG-6"]),
        ("key = eng-2", ["ENG-2"]),
        ("key in (ENG-1, ENG-6, ENG-99)", ["ENG-1", "ENG-6"]),
        ("issuekey > ENG-4", ["ENG-5", "ENG-6"]),
        ("project = ENG AND (status = Done OR labels = ux)", ["ENG-2", "ENG-3", "ENG-5", "ENG-6"]),
        ("project = ENG AND NOT status = Done", ["ENG-1", "ENG-2", "ENG-4", "ENG-5"]),
        ("project = ENG AND status not in (Done, 'To Do')", ["ENG-2", "ENG-5"]),
        ("summary ~ '#3'", ["ENG-3"]),
        ("project = ENG AND created >= -7d ORDER BY key DESC", ["ENG-6", "ENG-5", "ENG-4", "ENG-3", "ENG-2", "ENG-1"]),
        ("project = eng and resolution = Unresolved order by created desc", ["ENG-5", "ENG-4", "ENG-2", "ENG-1"]),
        ("assignee is EMPTY AND reporter = currentUser() AND id = 10001", ["ENG-1"]),
    ],
)
def test_jql_subset(varied, http, jql: str, expected: list[str]) -> None:
    assert keys_of(search(http, varied, jql)) == expected


def test_jql_text_search_finds_summary_and_description_words(emu, http) -> None:
    created = http.post(
        site(emu, "/issue"),
        auth=basic(emu),
        json={
            "fields": {
                "project": {"key": "ENG"},
                "issuetype": {"name": "Bug"},
                "summary": "Nightly export is slow",
                "description": {
                    "type": "doc",
                    "version": 1,
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "The warehouse loader times out"}]}
                    ],
                },
            }
        },
    ).json()
    assert keys_of(search(http, emu, 'summary ~ "nightly export"')) == [created["key"]]
    assert keys_of(search(http, emu, "text ~ warehouse")) == [created["key"]]
    assert keys_of(search(http, emu, "summary ~ warehouse")) == []


@pytest.mark.parametrize(
    ("jql", "named"),
    [
        ("project = ENG AND", "end of the query"),
        ("project ENG", "'ENG'"),
        ("project = ENG foo", "'foo'"),
        ("status = 'Done", "'Done'"),
        ("priorty = High", "'priorty'"),
        ("summary = x", "'='"),
    ],
)
def test_jql_errors_are_400_naming_the_bad_token(emu, http, jql: str, named: str) -> None:
    response = search(http, emu, jql)
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {}
    assert body["errorMessages"][0].startswith("Error in the JQL Query: ") and named in body["errorMessages"][0]


def test_jql_unknown_project_value_is_400(emu, http) -> None:
    response = search(http, emu, "project = NOPE")
    assert response.status_code == 400
    assert response.json()["errorMessages"] == ["The value 'NOPE' does not exist for the field 'project'."]


# -- issues ----------------------------------------------------------------------------------------------


def test_create_issue_returns_201_with_id_key_self(emu, http) -> None:
    response = http.post(
        site(emu, "/issue"),
        auth=basic(emu),
        json={
            "fields": {
                "project": {"key": "ENG"},
                "issuetype": {"name": "Task"},
                "summary": "First",
                "description": ADF,
                "labels": ["airflow"],
            }
        },
    )
    assert response.status_code == 201
    assert response.json() == {"id": "10001", "key": "ENG-1", "self": f"{emu.url}/rest/api/3/issue/10001"}
    stored = emu.get_issue("ENG-1")
    assert stored["fields"]["description"] == ADF and stored["fields"]["status"]["name"] == "To Do"
    assert stored["fields"]["reporter"]["accountId"] == emu.default_user.account_id


def test_create_issue_reports_missing_and_invalid_fields_by_name(emu, http) -> None:
    response = http.post(
        site(emu, "/issue"),
        auth=basic(emu),
        json={
            "fields": {
                "project": {"key": "NOPE"},
                "issuetype": {"name": "Saga"},
            }
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "errorMessages": [],
        "errors": {
            "project": "Specify a valid project ID or key",
            "issuetype": "The issue type selected is invalid.",
            "summary": "You must specify a summary of the issue.",
        },
    }


def test_create_issue_refuses_a_plain_string_description(emu, http) -> None:
    response = http.post(
        site(emu, "/issue"),
        auth=basic(emu),
        json={
            "fields": {
                "project": {"key": "ENG"},
                "issuetype": {"name": "Task"},
                "summary": "x",
                "description": "plain text",
            }
        },
    )
    assert response.status_code == 400 and "Atlassian Document" in response.json()["errors"]["description"]


def test_create_issue_refuses_unknown_fields(emu, http) -> None:
    response = http.post(
        site(emu, "/issue"),
        auth=basic(emu),
        json={
            "fields": {
                "project": {"key": "ENG"},
                "issuetype": {"name": "Task"},
                "summary": "x",
                "customfield_1": 3,
            }
        },
    )
    assert "cannot be set" in response.json()["errors"]["customfield_1"]


def test_bulk_create_reports_failed_elements_by_number(emu, http) -> None:
    good = {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "ok"}}
    bad = {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}}}
    response = http.post(site(emu, "/issue/bulk"), auth=basic(emu), json={"issueUpdates": [good, bad, good]})
    body = response.json()
    assert response.status_code == 201
    assert [i["key"] for i in body["issues"]] == ["ENG-1", "ENG-2"]
    assert body["errors"] == [
        {
            "status": 400,
            "elementErrors": {"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}},
            "failedElementNumber": 1,
        }
    ]


def test_bulk_create_where_every_element_fails_is_400(emu, http) -> None:
    response = http.post(site(emu, "/issue/bulk"), auth=basic(emu), json={"issueUpdates": [{"fields": {}}]})
    assert response.status_code == 400 and response.json()["errors"][0]["failedElementNumber"] == 0


def test_bulk_create_over_50_issues_is_400(emu, http) -> None:
    element = {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "x"}}
    response = http.post(site(emu, "/issue/bulk"), auth=basic(emu), json={"issueUpdates": [element] * 51})
    assert response.status_code == 400 and emu.seed_issues(count=1) == ["ENG-1"]


def test_bulk_fetch_returns_the_issues_found_and_leaves_unknown_ones_out(emu, http) -> None:
    emu.seed_issues(count=2)
    body = http.post(
        site(emu, "/issue/bulkfetch"),
        auth=basic(emu),
        json={
            "issueIdsOrKeys": ["ENG-1", "10002", "ENG-404"],
            "fields": ["summary"],
        },
    ).json()
    assert [i["key"] for i in body["issues"]] == ["ENG-1", "ENG-2"]
    assert set(body["issues"][0]["fields"]) == {"summary"}
    # The spec: issues not found or not visible "won't be returned in this list".
    assert body["issueErrors"] == []


def test_bulk_fetch_over_100_ids_is_400(emu, http) -> None:
    response = http.post(site(emu, "/issue/bulkfetch"), auth=basic(emu), json={"issueIdsOrKeys": ["ENG-1"] * 101})
    assert response.status_code == 400


def test_get_issue_by_key_or_id_and_404_for_unknown(emu, http) -> None:
    emu.seed_issues(count=1)
    assert http.get(site(emu, "/issue/10001"), auth=basic(emu)).json()["key"] == "ENG-1"
    assert http.get(site(emu, "/issue/ENG-1"), params={"fields": "labels"}, auth=basic(emu)).json()["fields"] == {
        "labels": ["backend"]
    }
    missing = http.get(site(emu, "/issue/ENG-2"), auth=basic(emu))
    assert missing.status_code == 404 and missing.json()["errorMessages"]


def test_edit_issue_applies_fields_and_update_operations(emu, http) -> None:
    emu.seed_issues(count=1, labels=[["a", "b"]])
    response = http.put(
        site(emu, "/issue/ENG-1"),
        auth=basic(emu),
        json={
            "fields": {"summary": "Renamed", "description": ADF},
            "update": {"labels": [{"add": "c"}, {"remove": "a"}]},
        },
    )
    assert response.status_code == 204 and response.content == b""
    fields = emu.get_issue("ENG-1")["fields"]
    assert fields["summary"] == "Renamed" and fields["labels"] == ["b", "c"] and fields["description"] == ADF


def test_edit_issue_cannot_set_status(emu, http) -> None:
    emu.seed_issues(count=1)
    response = http.put(site(emu, "/issue/ENG-1"), auth=basic(emu), json={"fields": {"status": {"name": "Done"}}})
    assert response.status_code == 400 and "status" in response.json()["errors"]


def test_transitions_depend_on_the_current_status(emu, http) -> None:
    emu.seed_issues(count=1, statuses=["To Do"])
    listed = http.get(site(emu, "/issue/ENG-1/transitions"), auth=basic(emu)).json()["transitions"]
    assert [(t["id"], t["name"], t["to"]["name"]) for t in listed] == [
        ("21", "Start Progress", "In Progress"),
        ("31", "Done", "Done"),
    ]
    assert listed[0]["to"]["statusCategory"]["key"] == "indeterminate"
    emu.set_status("ENG-1", "Done")
    listed = http.get(site(emu, "/issue/ENG-1/transitions"), auth=basic(emu)).json()["transitions"]
    assert [(t["id"], t["to"]["name"]) for t in listed] == [("41", "To Do")]


def test_transition_moves_the_issue_and_sets_the_resolution(emu, http) -> None:
    emu.seed_issues(count=1, statuses=["In Progress"])
    response = http.post(site(emu, "/issue/ENG-1/transitions"), auth=basic(emu), json={"transition": {"id": "31"}})
    assert response.status_code == 204
    fields = emu.get_issue("ENG-1")["fields"]
    assert fields["status"]["name"] == "Done" and fields["resolution"]["name"] == "Done"


def test_transition_not_available_from_the_current_status_is_400(emu, http) -> None:
    emu.seed_issues(count=1, statuses=["To Do"])
    response = http.post(site(emu, "/issue/ENG-1/transitions"), auth=basic(emu), json={"transition": {"id": "41"}})
    assert response.status_code == 400 and "41" in response.json()["errorMessages"][0]
    assert emu.get_issue("ENG-1")["fields"]["status"]["name"] == "To Do"


def test_generated_client_ids_are_letters_and_digits_like_the_developer_consoles(emu) -> None:
    ids = [emu.add_oauth_app().client_id for _ in range(200)]

    assert all(len(i) == 32 and i.isascii() and i.isalnum() for i in ids)  # never a leading '-' on a command line
    assert len(set(ids)) == 200


def test_an_added_self_loop_transition_is_offered_and_keeps_the_status(emu, http) -> None:
    emu.seed_issues(count=2, statuses=["In Progress"])
    loop_id = emu.add_transition("In Progress", "Log Work", "In Progress")

    listed = http.get(site(emu, "/issue/ENG-1/transitions"), auth=basic(emu)).json()["transitions"]
    (loop,) = [t for t in listed if t["id"] == loop_id]
    response = http.post(site(emu, "/issue/ENG-1/transitions"), auth=basic(emu), json={"transition": {"id": loop_id}})

    assert loop["name"] == "Log Work" and loop["to"]["name"] == "In Progress" and loop["isLooped"] is True
    assert response.status_code == 204 and emu.get_issue("ENG-1")["fields"]["status"]["name"] == "In Progress"
    assert loop_id not in {"11", "21", "31", "41"}


def test_a_transition_added_to_one_emulator_is_not_offered_by_another(emu, http) -> None:
    emu.add_transition("To Do", "Triage", "To Do")
    with JiraCloudEmulator() as other:
        other.seed_issues(count=1, statuses=["To Do"])
        listed = http.get(f"{other.site_url}/rest/api/3/issue/ENG-1/transitions", auth=basic(other)).json()

    assert "Triage" not in {t["name"] for t in listed["transitions"]}


def test_add_and_list_comments(emu, http) -> None:
    emu.seed_issues(count=1)
    created = http.post(site(emu, "/issue/ENG-1/comment"), auth=basic(emu), json={"body": ADF})
    assert created.status_code == 201 and created.json()["author"]["accountId"] == emu.default_user.account_id
    page = http.get(site(emu, "/issue/ENG-1/comment"), auth=basic(emu)).json()
    assert page["total"] == 1 and page["comments"][0]["body"] == ADF
    assert keys_of(search(http, emu, "text ~ hello")) == ["ENG-1"]


def test_comment_body_must_be_adf(emu, http) -> None:
    emu.seed_issues(count=1)
    response = http.post(site(emu, "/issue/ENG-1/comment"), auth=basic(emu), json={"body": "plain"})
    assert response.status_code == 400 and "comment" in response.json()["errors"]


def test_get_project_and_404_for_an_unknown_one(emu, http) -> None:
    emu.create_project("OPS", "Operations")
    assert http.get(site(emu, "/project/OPS"), auth=basic(emu)).json()["name"] == "Operations"
    assert http.get(site(emu, "/project/NOPE"), auth=basic(emu)).status_code == 404


def test_malformed_json_body_is_400(emu, http) -> None:
    response = http.post(
        site(emu, "/issue"), auth=basic(emu), data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["errorMessages"]


def test_seed_issues_is_deterministic_for_a_seed() -> None:
    summaries = []
    for _ in range(2):
        emu = JiraCloudEmulator(seed=7)
        emu.seed_issues(count=3)
        summaries.append([emu.default_site.find_issue(f"ENG-{n}").fields["summary"] for n in (1, 2, 3)])
    assert summaries[0] == summaries[1]


# -- faults and rate limits --------------------------------------------------------------------------------


def test_fail_next_answers_the_status_with_headers_then_recovers(emu, http) -> None:
    emu.fail_next("GET", r"/myself$", status=503, headers={"Retry-After": "0"})
    failed = http.get(site(emu, "/myself"), auth=basic(emu))
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "0"
    assert http.get(site(emu, "/myself"), auth=basic(emu)).status_code == 200


def test_fail_next_can_answer_an_html_proxy_page(emu, http) -> None:
    emu.fail_next(None, "search/jql", status=502, body="<html>Bad gateway</html>")
    response = search(http, emu, "project = ENG")
    assert response.status_code == 502 and response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html>Bad gateway</html>"


def test_fail_next_drop_closes_the_connection_without_an_answer(emu, http) -> None:
    emu.fail_next("POST", "/oauth/token", drop=True)
    with pytest.raises(requests.ConnectionError):
        refresh(http, emu, "rt-any")
    assert emu.requests[-1].status is None
    assert refresh(http, emu, "rt-any").status_code == 403


def test_fail_next_fires_the_given_number_of_times(emu, http) -> None:
    emu.fail_next("GET", "serverInfo", status=500, times=2)
    statuses = [http.get(site(emu, "/serverInfo")).status_code for _ in range(3)]
    assert statuses == [500, 500, 200] and emu.stats.faults_injected == 2


def test_rate_limit_answers_429_with_jira_headers(emu, http) -> None:
    emu.rate_limit("GET", "myself", retry_after="0", reason="jira-quota-tenant-based")
    response = http.get(site(emu, "/myself"), auth=basic(emu))
    assert response.status_code == 429
    headers = response.headers
    assert headers["Retry-After"] == "0" and headers["RateLimit-Reason"] == "jira-quota-tenant-based"
    assert headers["X-RateLimit-Limit"] == "100" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-NearLimit"] == "true"
    assert time.strptime(headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%M:%SZ")
    assert http.get(site(emu, "/myself"), auth=basic(emu)).status_code == 200


def test_rate_limit_can_omit_retry_after(emu, http) -> None:
    emu.rate_limit(retry_after=None)
    response = http.get(site(emu, "/myself"), auth=basic(emu))
    assert response.status_code == 429 and "Retry-After" not in response.headers


def test_rate_limit_without_a_path_spares_the_auth_server(emu, http) -> None:
    emu.rate_limit()
    assert refresh(http, emu, "rt-unknown").status_code == 403
    assert http.get(gateway(emu, "/serverInfo")).status_code == 429


# -- observation and connections -----------------------------------------------------------------------------


def test_requests_are_recorded_with_via_auth_status_and_body(emu, http) -> None:
    token = emu.issue_grant(emu.default_app.client_id)["access_token"]
    search(http, emu, "project = ENG", maxResults=5)
    http.get(gateway(emu, "/myself"), headers=bearer(token), params={"x": "1"})
    refresh(http, emu, "rt-unknown")
    site_call, gateway_call, auth_call = emu.requests
    assert (site_call.method, site_call.path, site_call.via, site_call.auth, site_call.status) == (
        "POST",
        "/rest/api/3/search/jql",
        "site",
        "basic",
        200,
    )
    assert site_call.body == {"jql": "project = ENG", "maxResults": 5}
    assert (gateway_call.via, gateway_call.auth, gateway_call.query) == ("gateway", "bearer", {"x": "1"})
    assert gateway_call.path == f"/ex/jira/{emu.cloud_id}/rest/api/3/myself"
    assert (auth_call.via, auth_call.auth, auth_call.status) == ("auth", None, 403)
    emu.reset_requests()
    assert emu.requests == []


def test_stats_count_api_calls(emu, http) -> None:
    for _ in range(3):
        http.get(site(emu, "/serverInfo"))
    assert emu.stats.api_calls == 3 and emu.stats["api_calls"] == 3


def test_connection_json_basic_works_at_the_site(emu, http) -> None:
    conn = json.loads(emu.connection_json("basic"))
    assert conn["conn_type"] == "jira_cloud" and conn["host"] == emu.url
    assert http.get(f"{conn['host']}{API}/myself", auth=(conn["login"], conn["password"])).status_code == 200


def test_connection_json_scoped_works_through_the_gateway(emu, http) -> None:
    conn = json.loads(emu.connection_json("scoped"))
    extra = conn["extra"]
    assert extra["cloud_id"] == emu.cloud_id and extra["api_url"] == extra["auth_url"] == emu.url
    url = f"{extra['api_url']}/ex/jira/{extra['cloud_id']}{API}/myself"
    assert http.get(url, auth=(conn["login"], conn["password"])).status_code == 200


def test_connection_json_oauth2_holds_a_working_refresh_token(emu, http) -> None:
    conn = json.loads(emu.connection_json("oauth2", timeout=5))
    extra = conn["extra"]
    assert extra["auth_type"] == "oauth2" and extra["timeout"] == 5 and "login" not in conn
    tokens = http.post(
        f"{extra['auth_url']}/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": extra["client_id"],
            "client_secret": extra["client_secret"],
            "refresh_token": extra["refresh_token"],
        },
    ).json()
    url = f"{extra['api_url']}/ex/jira/{extra['cloud_id']}{API}/myself"
    assert http.get(url, headers=bearer(tokens["access_token"])).status_code == 200


def test_module_main_prints_url_credentials_and_connection(tmp_path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_jira_auth.testing", "--issues", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not any(line.startswith("AIRFLOW_CONN_JIRA_CLOUD_DEFAULT=") for line in lines):
            lines.append(process.stdout.readline())
            assert lines[-1], "the emulator exited early"
        conn_line = next(line for line in lines if line.startswith("AIRFLOW_CONN_JIRA_CLOUD_DEFAULT="))
        conn = json.loads(conn_line.split("=", 1)[1].strip().strip("'"))
        response = requests.post(
            f"{conn['host']}{API}/search/jql",
            json={"jql": "project = ENG"},
            auth=(conn["login"], conn["password"]),
            timeout=5,
        )
        assert len(response.json()["issues"]) == 3
        assert any("ada@example.com" in line for line in lines)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_fail_next_with_any_method(emu, http) -> None:
    emu.fail_next("*", "serverInfo", status=500)
    assert http.get(site(emu, "/serverInfo")).status_code == 500


def test_issue_grant_for_another_user_acts_as_that_user(emu, http) -> None:
    grace = emu.add_user("grace@example.com", display_name="Grace Hopper")
    token = emu.issue_grant(emu.default_app.client_id, user=grace)["access_token"]
    assert http.get(gateway(emu, "/myself"), headers=bearer(token)).json()["displayName"] == "Grace Hopper"


def test_consent_user_is_the_one_the_code_grants_for(emu, http) -> None:
    emu.consent_user = emu.add_user("grace@example.com")
    code = redirect_query(authorize(http, emu, scope="read:jira-user offline_access"))["code"]
    token = _exchange(http, emu, code).json()["access_token"]
    assert http.get(gateway(emu, "/myself"), headers=bearer(token)).json()["emailAddress"] == "grace@example.com"


def test_replacing_the_clock_drives_expiry(emu, http) -> None:
    now = [1_000_000.0]
    emu.clock = lambda: now[0]
    token = emu.issue_grant(emu.default_app.client_id)["access_token"]
    now[0] += 3601
    assert http.get(gateway(emu, "/myself"), headers=bearer(token)).status_code == 401


def test_reset_stats_zeroes_every_counter(emu, http) -> None:
    http.get(site(emu, "/serverInfo"))
    emu.reset_stats()
    assert set(emu.stats.values()) == {0}


def test_testing_package_imports_neither_airflow_nor_pytest() -> None:
    code = (
        "import sys, airflow_provider_jira_auth.testing as t; "
        "assert 'airflow' not in sys.modules and 'pytest' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
