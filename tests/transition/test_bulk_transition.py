"""JiraBulkTransitionOperator: everything a JQL query matches, moved in one task, over real HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_jira_auth.client.errors import JiraArgumentError, JiraBulkTransitionError, JiraTransitionError
from airflow_provider_jira_auth.operators.transition import JiraBulkTransitionOperator
from tests.operators.conftest import Jira

OPS = "project = OPS ORDER BY key"


def _statuses(jira: Jira, keys: list[str]) -> set[str]:
    return {jira.emu.get_issue(key)["fields"]["status"]["name"] for key in keys}


def _bulk(jira: Jira, **kwargs) -> JiraBulkTransitionOperator:
    kwargs.setdefault("jql", OPS)
    return JiraBulkTransitionOperator(task_id="bulk", jira_conn_id=jira.conn_id, **kwargs)


def test_forty_issues_are_moved_with_bounded_concurrency(jira: Jira, context) -> None:
    keys = jira.emu.seed_issues(project="OPS", count=40, statuses=["To Do"])
    jira.emu.reset_requests()

    summary = _bulk(jira, transition="Start Progress", max_concurrency=4).execute(context)

    assert summary == {"moved": keys, "already": [], "failed": [], "dry_run": False}
    assert _statuses(jira, keys) == {"In Progress"}
    posts = [path for method, path in jira.api_calls() if method == "POST" and path.endswith("/transitions")]
    assert len(posts) == 40
    # One search lists status and transitions: no per-issue GET before each POST.
    assert not [path for method, path in jira.api_calls() if method == "GET"]


def test_concurrency_is_bounded_by_max_concurrency(jira: Jira, context) -> None:
    """With every transition answer held for a while, no more than max_concurrency are ever open."""
    keys = jira.emu.seed_issues(project="OPS", count=12, statuses=["To Do"])
    jira.emu.delay_next("POST", r"/issue/OPS-\d+/transitions", 0.2, times=12)
    jira.emu.reset_stats()

    summary = _bulk(jira, target_status="Done", max_concurrency=3).execute(context)

    assert summary["moved"] == keys
    assert 2 <= jira.emu.stats.peak_concurrent_calls <= 3


def test_a_dry_run_changes_nothing_and_says_what_would_move(jira: Jira, context) -> None:
    keys = jira.emu.seed_issues(project="OPS", count=6, statuses=["To Do", "To Do", "Done"])
    jira.emu.reset_requests()

    summary = _bulk(jira, target_status="Done", dry_run=True).execute(context)

    assert summary["dry_run"] is True
    assert summary["moved"] == [k for n, k in enumerate(keys) if n % 3 != 2]
    assert summary["already"] == [keys[2], keys[5]]
    assert [m for m, _ in jira.api_calls()] == ["POST"] * len(jira.api_calls())
    assert not [p for _, p in jira.api_calls() if p.endswith("/transitions")]
    assert _statuses(jira, [k for n, k in enumerate(keys) if n % 3 != 2]) == {"To Do"}


def test_a_rerun_reports_the_moved_issues_as_already_there(jira: Jira, context) -> None:
    keys = jira.emu.seed_issues(project="OPS", count=5, statuses=["To Do"])
    first = _bulk(jira, transition="Start Progress", target_status="In Progress").execute(context)
    jira.emu.reset_requests()

    again = _bulk(jira, transition="Start Progress", target_status="In Progress").execute(context)

    assert first["moved"] == keys
    assert again == {"moved": [], "already": keys, "failed": [], "dry_run": False}
    assert not [p for _, p in jira.api_calls() if p.endswith("/transitions")]


def test_an_issue_already_where_the_transition_leads_is_there_whatever_the_search_order(jira: Jira, context) -> None:
    # Given only the transition's name, where it leads is learnt from the issues that offer it; an
    # issue listed before any of them (a re-run without a status filter) is still "already".
    keys = jira.emu.seed_issues(project="OPS", count=4, statuses=["In Progress", "To Do"])

    summary = _bulk(jira, transition="Start Progress").execute(context)

    assert summary == {"moved": [keys[1], keys[3]], "already": [keys[0], keys[2]], "failed": [], "dry_run": False}


def test_a_transition_that_leads_back_to_the_issues_own_status_is_not_sent(jira: Jira, context) -> None:
    # A self-loop ("Log Work": In Progress -> In Progress) is offered, but taking it moves nothing.
    jira.emu.add_transition("In Progress", "Log Work", "In Progress")
    keys = jira.emu.seed_issues(project="OPS", count=3, statuses=["In Progress"])
    jira.emu.reset_requests()

    summary = _bulk(jira, transition="Log Work").execute(context)

    assert summary == {"moved": [], "already": keys, "failed": [], "dry_run": False}
    assert not [p for m, p in jira.api_calls() if m == "POST" and p.endswith("/transitions")]


def test_an_unknown_transition_fails_naming_it_and_the_available_ones(jira: Jira, context) -> None:
    keys = jira.emu.seed_issues(project="OPS", count=3, statuses=["To Do"])

    with pytest.raises(JiraTransitionError) as caught:
        _bulk(jira, transition="Ship it").execute(context)

    message = str(caught.value)
    assert "'Ship it'" in message
    assert "'Start Progress'" in message and "'Done'" in message
    assert _statuses(jira, keys) == {"To Do"}
    assert [f["key"] for f in caught.value.summary["failed"]] == keys


def test_a_refused_transition_lands_in_failed_and_the_rest_move(jira: Jira, context) -> None:
    keys = jira.emu.seed_issues(project="OPS", count=8, statuses=["To Do"])
    jira.emu.fail_next("POST", r"/issue/OPS-3/transitions$", status=409, times=5)

    with pytest.raises(JiraBulkTransitionError) as caught:
        _bulk(jira, target_status="Done", max_concurrency=3).execute(context)

    summary = caught.value.summary
    assert summary["moved"] == [k for k in keys if k != "OPS-3"]
    assert [f["key"] for f in summary["failed"]] == ["OPS-3"]
    assert "409" in summary["failed"][0]["error"]
    assert context["ti"].pushed["summary"] == summary
    assert "OPS-3" in str(caught.value) and "A retry moves only what is left" in str(caught.value)
    assert _statuses(jira, [k for k in keys if k != "OPS-3"]) == {"Done"}
    assert _statuses(jira, ["OPS-3"]) == {"To Do"}


def test_without_fail_on_error_the_summary_is_returned(jira: Jira, context) -> None:
    jira.emu.seed_issues(project="OPS", count=3, statuses=["To Do"])
    jira.emu.fail_next("POST", r"/issue/OPS-1/transitions$", status=400, times=5)

    summary = _bulk(jira, target_status="Done", fail_on_error=False).execute(context)

    assert summary["moved"] == ["OPS-2", "OPS-3"]
    assert summary["failed"][0]["key"] == "OPS-1"


def test_bad_arguments_fail_naming_the_argument(jira: Jira, context) -> None:
    with pytest.raises(ValueError, match="transition .* target_status"):
        JiraBulkTransitionOperator(task_id="bulk", jql=OPS)
    with pytest.raises(ValueError, match="max_concurrency must be between 1 and 16"):
        _bulk(jira, target_status="Done", max_concurrency=50).execute(context)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"jql": None, "target_status": "Done"}, "jql"),
        ({"jql": "  ", "target_status": "Done"}, "jql"),
        ({"transition": " "}, "transition"),
        ({"target_status": ""}, "target_status"),
        ({"target_status": "Done", "fields": ["resolution"]}, "fields"),
        ({"target_status": "Done", "fields": "resolution=Done"}, "fields"),
    ],
)
def test_a_bad_argument_fails_when_the_dag_is_parsed_naming_it(jira: Jira, arguments: dict, field: str) -> None:
    with pytest.raises(JiraArgumentError) as caught:
        _bulk(jira, **arguments)

    assert caught.value.field == field and f"Jira argument {field}: must be" in str(caught.value)


def test_a_template_that_renders_to_a_bad_argument_fails_before_any_call(jira: Jira, context) -> None:
    op = _bulk(jira, target_status="Done", fields="{{ params.fields }}")
    op.fields = "resolution=Done"  # what the template rendered to
    jira.emu.reset_requests()

    with pytest.raises(JiraArgumentError, match="fields: must be a mapping"):
        op.execute(context)
    assert not jira.emu.requests


def test_a_dry_run_needs_only_read_scope_and_a_real_run_checks_write_first(oauth_connect, context) -> None:
    from airflow_provider_jira_auth.scopes import JiraMissingScopeError

    jira = oauth_connect(("read:jira-work", "offline_access"))
    keys = jira.emu.seed_issues(project="OPS", count=2, statuses=["To Do"])

    summary = _bulk(jira, target_status="Done", dry_run=True).execute(context)
    jira.emu.reset_requests()
    with pytest.raises(JiraMissingScopeError, match="write:jira-work"):
        _bulk(jira, target_status="Done").execute(context)

    assert summary["moved"] == keys
    assert not jira.api_calls()


FAST = {"retry_delay": 0.01, "retry_max_delay": 0.02}


def test_a_transition_whose_answer_is_lost_is_not_sent_again_and_a_retry_finds_it_there(jira: Jira, context) -> None:
    """A POST transition is not idempotent: after a 504 Jira may have acted, so it is not repeated."""
    keys = jira.emu.seed_issues(project="OPS", count=3, statuses=["To Do"])
    jira.emu.fail_next("POST", rf"/issue/{keys[1]}/transitions$", status=504, after_work=True)
    jira.emu.reset_requests()

    with pytest.raises(JiraBulkTransitionError) as caught:
        _bulk(jira, target_status="Done", jira_retry=FAST).execute(context)

    sent = [p for m, p in jira.api_calls() if m == "POST" and p.endswith(f"/issue/{keys[1]}/transitions")]
    assert len(sent) == 1
    assert [f["key"] for f in caught.value.summary["failed"]] == [keys[1]]
    assert _statuses(jira, keys) == {"Done"}  # Jira did move it; only the answer was lost
    again = _bulk(jira, target_status="Done", jira_retry=FAST).execute(context)
    assert again == {"moved": [], "already": keys, "failed": [], "dry_run": False}


def test_a_rate_limited_transition_is_sent_again(jira: Jira, context) -> None:
    """A 429 is refused before any work: repeating the POST is safe."""
    keys = jira.emu.seed_issues(project="OPS", count=2, statuses=["To Do"])
    jira.emu.fail_next("POST", rf"/issue/{keys[0]}/transitions$", status=429, headers={"Retry-After": "0"})
    jira.emu.reset_requests()

    summary = _bulk(jira, target_status="Done", jira_retry=FAST).execute(context)

    assert summary["moved"] == keys
    sent = [p for m, p in jira.api_calls() if m == "POST" and p.endswith(f"/issue/{keys[0]}/transitions")]
    assert len(sent) == 2
