"""Transition every issue a JQL query matches, in one task.

One search lists the issues with their status and the transitions each offers
(``expand=transitions``), so each issue costs one ``POST issue/{key}/transitions`` and nothing
else; those run on a few threads sharing one client. Why per-issue calls rather than Jira's
asynchronous ``POST bulk/issues/transition``: see docs/architecture.md (Bulk transition).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_jira_auth.client.errors import JiraArgumentError, JiraBulkTransitionError, JiraError
from airflow_provider_jira_auth.connection_fields import DEFAULT_CONN_ID
from airflow_provider_jira_auth.operators.jira_cloud import (
    JiraOperatorMixin,
    _same_name,
    _status_name,
    _whole_number,
    choose_transition,
    describe_transitions,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_jira_auth.client.http import JiraClient

__all__ = ["JiraBulkTransitionOperator", "MAX_CONCURRENCY"]

#: Most transitions in flight at once: Jira's burst limit is per endpoint (about 100 POST/s a tenant).
MAX_CONCURRENCY = 16
#: Failures quoted in the task's error message (all of them are in the summary).
_QUOTED_FAILURES = 5


@dataclass
class _Summary:
    dry_run: bool
    moved: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    order: dict[str, int] = field(default_factory=dict)
    offered: dict[str, None] = field(default_factory=dict)  # transition names seen, for the error message
    not_offered: int = 0
    #: issues offering no such transition, filed under already or failed once the listing is done
    not_offered_yet: list[tuple[str, str | None, list[Mapping[str, Any]]]] = field(default_factory=list)

    def as_xcom(self) -> dict[str, Any]:
        def by_search(key: str) -> int:
            return self.order.get(key, 0)

        return {
            "moved": sorted(self.moved, key=by_search),
            "already": sorted(self.already, key=by_search),
            "failed": sorted(self.failed, key=lambda item: by_search(item["key"])),
            "dry_run": self.dry_run,
        }


class JiraBulkTransitionOperator(JiraOperatorMixin, BaseOperator):
    """Move every issue matching a JQL query through a transition (or to a status).

    The issues are listed with one search (their status and offered transitions come with it);
    each one to move costs one ``POST issue/{key}/transitions``, at most ``max_concurrency`` at a
    time, on threads sharing one client (its retry policy honors ``Retry-After``).

    Each issue ends up in one of three lists of the summary, returned as the XCom (keys only):
    ``{"moved": [...], "already": [...], "failed": [{"key", "error"}], "dry_run": bool}``.

    * **already**: the issue is in ``target_status`` already (or in the status the transition is
      named after, or leads to on other matched issues), so a retry or a re-run is harmless. To
      make that exact when the transition's name differs from its target status, give both
      ``transition`` and ``target_status``.
    * **failed**: the issue does not offer the transition (the error names it and the ones it
      offers), or Jira refused it (e.g. a 400 from a validator, a 409): the error says why.
    * **moved**: transitioned (with ``dry_run``: would be; nothing is sent).

    Failures do not stop the others. When the run is over and any issue failed, the task fails
    (``fail_on_error``, the default) after pushing the summary as XCom ``summary`` and logging
    every failure; a retry then moves only what is left. With ``fail_on_error=False`` it succeeds
    and returns the summary. If no matched issue offers the transition at all, the error says so
    and lists the transitions they do offer.

    .. code-block:: python

        JiraBulkTransitionOperator(
            task_id="close_stale",
            jql="project = ENG AND status = 'In Progress' AND updated < -30d",
            transition="Done",
            target_status="Done",
            max_concurrency=4,
        )

    :param jql: the issues to transition: a bounded JQL query (templated).
    :param transition: the transition's name (case-insensitive) or id (templated).
    :param target_status: the status to reach (templated); give this, ``transition``, or both
        (then the transition is taken only to reach that status).
    :param fields: fields the transition screen sets, e.g. a resolution (templated).
    :param max_concurrency: transitions in flight at once, 1 to 16 (templated).
    :param max_issues: transition at most this many matched issues; ``None`` for all (templated).
    :param dry_run: decide and report, send no transition; needs only ``read:jira-work`` (3LO).
    :param fail_on_error: fail the task, once all issues are done, if any failed.
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = (
        "jql", "transition", "target_status", "fields", "max_concurrency", "max_issues",
    )
    jira_operations = ("search_issues", "transition_issue")

    def __init__(
        self,
        *,
        jql: str,
        transition: str | None = None,
        target_status: str | None = None,
        fields: dict[str, Any] | None = None,
        max_concurrency: int | str = 4,
        max_issues: int | str | None = None,
        dry_run: bool = False,
        fail_on_error: bool = True,
        jira_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if transition is None and target_status is None:
            raise ValueError("JiraBulkTransitionOperator needs transition (a name or id), target_status, or both")
        self.jql = jql
        self.transition = transition
        self.target_status = target_status
        self.fields = fields
        self._check_arguments(rendered=False)  # again in execute(), once templates are rendered
        self.max_concurrency = max_concurrency
        self.max_issues = max_issues
        self.dry_run = bool(dry_run)
        self.fail_on_error = fail_on_error
        self.jira_conn_id = jira_conn_id

    def _check_arguments(self, *, rendered: bool = True) -> None:
        if not isinstance(self.jql, str) or not self.jql.strip():
            raise JiraArgumentError("jql", f"must be a non-empty JQL query, e.g. 'project = ENG', got {self.jql!r}")
        for name in ("transition", "target_status"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (str, int)) and str(value).strip()):
                raise JiraArgumentError(name, f"must be a non-empty name (or, for transition, an id), got {value!r}")
        template = not rendered and isinstance(self.fields, str) and "{{" in self.fields
        if self.fields is not None and not isinstance(self.fields, Mapping) and not template:
            raise JiraArgumentError(
                "fields",
                f"must be a mapping of field ids to values, e.g. {{'resolution': {{'name': 'Done'}}}}, got "
                f"{type(self.fields).__name__}",
            )

    def execute(self, context: Context) -> dict[str, Any]:
        self._check_arguments()
        concurrency = _whole_number(self.max_concurrency, "max_concurrency", minimum=1)
        if concurrency > MAX_CONCURRENCY:
            raise ValueError(f"max_concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")
        max_issues = _whole_number(self.max_issues, "max_issues", optional=True)
        # A dry run sends no transition: a read-only grant is enough for it.
        client = self.jira_client(operations=("search_issues",) if self.dry_run else None)
        summary = _Summary(self.dry_run)
        issues = client.search_issues(
            self.jql, fields=["status"], expand="transitions", page_size=100, max_results=max_issues
        )
        learned: dict[str, None] = {}  # statuses the transition leads to, seen on matched issues
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="jira-transition") as pool:
            in_flight: dict[Future[None], str] = {}
            for issue in issues:
                key = str(issue.get("key"))
                summary.order[key] = len(summary.order)
                chosen = self._plan(issue, summary, learned)
                if chosen is None:
                    continue
                if self.dry_run:
                    summary.moved.append(key)
                    continue
                if len(in_flight) >= concurrency:
                    self._collect(wait(in_flight, return_when=FIRST_COMPLETED).done, in_flight, summary)
                in_flight[pool.submit(self._move, client, key, chosen)] = key
            self._collect(wait(in_flight).done, in_flight, summary)
        # Filed once the whole listing is known, so that the search's order cannot decide it.
        for key, current, available in summary.not_offered_yet:
            if any(_same_name(current, status) for status in learned):
                summary.already.append(key)
            else:
                summary.not_offered += 1
                summary.failed.append({"key": key, "error": self._not_offered(key, current, available)})
        result = summary.as_xcom()
        self.log.info(
            "JQL %r: %s %d, already there %d, failed %d",
            self.jql, "would move" if self.dry_run else "moved", len(result["moved"]), len(result["already"]),
            len(result["failed"]),
        )
        for failure in result["failed"]:
            self.log.error("%s was not transitioned: %s", failure["key"], failure["error"])
        if result["failed"] and self.fail_on_error:
            context["ti"].xcom_push(key="summary", value=result)
            raise JiraBulkTransitionError(self._failure_message(result, summary), result)
        return result

    # -- one issue ------------------------------------------------------------------------------------

    def _plan(self, issue: Mapping[str, Any], summary: _Summary, learned: dict[str, None]) -> dict[str, Any] | None:
        """The transition to take, or ``None`` once the issue is filed under already or failed."""
        key = str(issue.get("key"))
        current = _status_name(issue)
        available = [t for t in issue.get("transitions") or [] if isinstance(t, Mapping)]
        for offered in available:
            summary.offered.setdefault(str(offered.get("name")))
        if self.target_status is not None and _same_name(current, self.target_status):
            summary.already.append(key)
            return None
        chosen = choose_transition(available, self.transition, self.target_status)
        if chosen is None:
            if self.target_status is None and _same_name(current, self.transition):
                summary.already.append(key)
            elif self.target_status is None:
                # Maybe where the transition leads, as other matched issues may show: decided at the end.
                summary.not_offered_yet.append((key, current, available))
            else:
                summary.not_offered += 1
                summary.failed.append({"key": key, "error": self._not_offered(key, current, available)})
            return None
        target = (chosen.get("to") or {}).get("name")
        if isinstance(target, str):
            learned.setdefault(target)
        if _same_name(current, target):
            summary.already.append(key)
            return None
        return dict(chosen)

    def _move(self, client: JiraClient, key: str, chosen: Mapping[str, Any]) -> None:
        client.transition_issue(key, chosen["id"], fields=self.fields)

    def _collect(self, done: set[Future[None]], in_flight: dict[Future[None], str], summary: _Summary) -> None:
        for future in done:
            key = in_flight.pop(future)
            error = future.exception()
            if error is None:
                summary.moved.append(key)
            elif isinstance(error, JiraError):
                summary.failed.append({"key": key, "error": str(error)})
            else:
                raise error

    # -- messages -------------------------------------------------------------------------------------

    def _wanted(self) -> str:
        if self.transition is not None and self.target_status is not None:
            return f"transition {self.transition!r} to status {self.target_status!r}"
        if self.transition is not None:
            return f"transition {self.transition!r}"
        return f"a transition to status {self.target_status!r}"

    def _not_offered(self, key: str, current: str | None, available: list[Mapping[str, Any]]) -> str:
        hint = ""
        if self.target_status is None:
            hint = " If the issue is already where the transition leads, pass target_status to count it as there."
        return (
            f"{key} (status {current!r}) offers no {self._wanted()}. "
            f"Available transitions: {describe_transitions(available)}.{hint}"
        )

    def _failure_message(self, result: dict[str, Any], summary: _Summary) -> str:
        failed = result["failed"]
        if summary.not_offered == len(failed) and not result["moved"] and not result["already"]:
            names = ", ".join(repr(name) for name in summary.offered) or "none"
            return (
                f"No issue matched by JQL {self.jql!r} offers {self._wanted()} ({len(failed)} issue(s) checked). "
                f"The transitions they offer: {names}. Check the name (or id) against the workflow."
            )
        quoted = "; ".join(f"{item['key']}: {item['error']}" for item in failed[:_QUOTED_FAILURES])
        more = f" (and {len(failed) - _QUOTED_FAILURES} more)" if len(failed) > _QUOTED_FAILURES else ""
        return (
            f"{len(failed)} issue(s) matched by JQL {self.jql!r} were not transitioned, {len(result['moved'])} were "
            f"and {len(result['already'])} were there already (XCom 'summary' lists them): {quoted}{more}. "
            "A retry moves only what is left."
        )
