"""The scope check made before calling Jira (3LO), without Airflow: what it raises and when."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client.errors import JiraScopeError
from airflow_provider_jira_auth.scopes import JiraMissingScopeError, check_granted, granted_by


def test_a_missing_scope_is_refused_with_the_command_that_fixes_it() -> None:
    with pytest.raises(JiraMissingScopeError) as caught:
        check_granted(
            ["read:jira-work", "write:jira-work"], ["read:jira-work"], conn_id="jira_oauth", what="JiraCreateIssueOperator 't'"
        )

    error = caught.value
    assert isinstance(error, JiraScopeError)  # one ``except`` handles this and Jira's own 401
    assert error.missing_scopes == ("write:jira-work",)
    assert error.granted_scopes == ("read:jira-work",)
    assert error.scope == "write:jira-work"
    assert error.conn_id == "jira_oauth"
    # The re-consent keeps what was granted, adds what is missing, and keeps the refresh token coming.
    assert error.command == (
        "airflow-jira-auth authorize --conn-id jira_oauth --scopes 'offline_access read:jira-work write:jira-work'"
    )
    assert str(error) == (
        "JiraCreateIssueOperator 't' needs the scope write:jira-work, which the OAuth 2.0 grant of connection "
        "'jira_oauth' does not hold (granted: read:jira-work). Nothing was sent to Jira. To fix: add "
        "write:jira-work to the app's scopes in the Atlassian developer console, then consent again: "
        f"{error.command}"
    )
    assert error.hint.endswith(error.command)


def test_the_missing_scope_error_reads_like_jiras_own_scope_error() -> None:
    """Handlers written for Jira's ``401 scope does not match`` read these attributes."""
    error = JiraMissingScopeError("c", ["write:jira-work"], [], "op")

    assert (error.method, error.path, error.status) == ("", "", None)
    assert error.error_messages == [] and error.errors == {} and error.body == "" and error.headers == {}


def test_several_missing_scopes_are_all_named_sorted_and_the_empty_grant_says_none() -> None:
    with pytest.raises(JiraMissingScopeError) as caught:
        check_granted(["write:jira-work", "read:jira-user", "read:jira-user"], [], conn_id=None, what="op")

    error = caught.value
    assert error.missing_scopes == ("read:jira-user", "write:jira-work")
    assert error.scope == "read:jira-user"
    assert "op needs the scopes read:jira-user, write:jira-work, which" in str(error)
    assert "(granted: none)" in str(error)
    assert "connection None" in str(error)
    assert "--conn-id <conn_id>" in error.command


def test_without_missing_scopes_there_is_no_scope_to_name() -> None:
    error = JiraMissingScopeError("c", [], ["read:jira-work"], "op")

    assert error.scope is None


def test_a_grant_holding_every_scope_or_unknown_scopes_pass() -> None:
    check_granted(["read:jira-work"], ["read:jira-work", "write:jira-work"], conn_id="c", what="op")
    check_granted(["read:jira-work"], None, conn_id="c", what="op")  # Basic auth: not checked
    check_granted([], [], conn_id="c", what="op")


class _Auth:
    """The shape of JiraOAuth2Auth that granted_by reads: scopes, filled by the first access token."""

    def __init__(self, scopes_after_token: tuple[str, ...], scopes: tuple[str, ...] = ()) -> None:
        self.scopes = scopes
        self._after = scopes_after_token
        self.tokens_asked = 0

    def access_token(self) -> str:
        self.tokens_asked += 1
        self.scopes = self._after
        return "at"


def test_granted_by_asks_for_a_first_token_when_no_scopes_are_known_yet() -> None:
    auth = _Auth(("read:jira-work",))

    assert granted_by(auth) == frozenset({"read:jira-work"})
    assert auth.tokens_asked == 1


def test_granted_by_uses_the_known_scopes_without_asking_for_a_token() -> None:
    auth = _Auth(("write:jira-work",), scopes=("read:jira-work",))

    assert granted_by(auth) == frozenset({"read:jira-work"})
    assert auth.tokens_asked == 0


def test_granted_by_is_none_for_other_auths_and_for_a_token_endpoint_that_reports_no_scopes() -> None:
    assert granted_by(object()) is None
    assert granted_by(("user", "token")) is None

    class ScopesOnly:
        scopes = ("read:jira-work",)

    class TokenOnly:
        def access_token(self) -> str:
            return "at"

    assert granted_by(ScopesOnly()) is None
    assert granted_by(TokenOnly()) is None
    assert granted_by(_Auth(())) is None  # no scope reported: unknown, not "none granted"
