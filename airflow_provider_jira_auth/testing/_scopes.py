"""Classic OAuth scopes per endpoint, copied from Jira Cloud's OpenAPI spec.

Each entry is the ``x-atlassian-oauth2-scopes`` item with ``"state": "Current"`` of that
operation; ``tests/emulator/test_scopes_match_spec.py`` checks the table against the spec.
Bearer tokens (3LO) and scoped API tokens must hold every listed scope, else the gateway
answers ``401 {"code":401,"message":"Unauthorized; scope does not match"}``.
"""

from __future__ import annotations

ISSUE = "/rest/api/3/issue/{issueIdOrKey}"

CLASSIC_SCOPES: dict[tuple[str, str], list[str]] = {
    ("GET", "/rest/api/3/myself"): ["read:jira-user"],
    ("GET", "/rest/api/3/serverInfo"): [],
    ("GET", "/rest/api/3/search/jql"): ["read:jira-work"],
    ("POST", "/rest/api/3/search/jql"): ["read:jira-work"],
    ("POST", "/rest/api/3/search/approximate-count"): ["read:jira-work"],
    ("POST", "/rest/api/3/issue"): ["write:jira-work"],
    ("POST", "/rest/api/3/issue/bulk"): ["write:jira-work"],
    ("POST", "/rest/api/3/issue/bulkfetch"): ["read:jira-work"],
    ("GET", ISSUE): ["read:jira-work"],
    ("PUT", ISSUE): ["write:jira-work"],
    ("GET", ISSUE + "/transitions"): ["read:jira-work"],
    ("POST", ISSUE + "/transitions"): ["write:jira-work"],
    ("GET", ISSUE + "/comment"): ["read:jira-work"],
    ("POST", ISSUE + "/comment"): ["write:jira-work"],
    ("POST", "/rest/api/3/comment/list"): ["read:jira-work"],
    ("GET", ISSUE + "/changelog"): ["read:jira-work"],
    ("POST", "/rest/api/3/changelog/bulkfetch"): ["read:jira-work"],
    ("GET", "/rest/api/3/project/{projectIdOrKey}"): ["read:jira-work"],
}

# Scopes a consent screen accepts besides the granular ``<verb>:<thing>:jira`` ones.
KNOWN_SCOPES = frozenset(
    {
        "read:jira-work",
        "write:jira-work",
        "read:jira-user",
        "manage:jira-project",
        "manage:jira-configuration",
        "manage:jira-webhook",
        "manage:jira-data-provider",
        "offline_access",
        "read:me",
        "read:account",
    }
)

# The Jira scopes an accessible-resources entry lists: not offline_access, read:me, read:account.
NON_SITE_SCOPES = frozenset({"offline_access", "read:me", "read:account"})

# The scopes of the Confluence entry that shares the default site's id in accessible-resources.
CONFLUENCE_SCOPES = ["read:confluence-content.all", "write:confluence-content", "read:confluence-space.summary"]

# What a scoped API token gets when its creator does not pick scopes.
DEFAULT_TOKEN_SCOPES = ("read:jira-work", "write:jira-work", "read:jira-user")
