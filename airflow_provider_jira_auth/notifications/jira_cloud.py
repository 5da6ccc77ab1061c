"""``JiraIssueNotifier``: a Jira ticket when a task fails, one ticket per task however often it fails.

For ``on_failure_callback``, ``on_retry_callback`` and friends (task or DAG level). The first
failure opens an issue labelled with the DAG and task; later failures (retries, the next
runs) find that issue while it is open and comment on it instead of opening another. Once
someone moves it to Done, the next failure opens a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_jira_auth._compat import callback_error
from airflow_provider_jira_auth.client.jql import jql_quote
from airflow_provider_jira_auth.connection_fields import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["JiraIssueNotifier", "dedup_label"]

#: Jira's limit on a label's length; labels may not contain spaces.
MAX_LABEL_LENGTH = 255
_MAX_ERROR_CHARS = 2000


def dedup_label(dag_id: str, task_id: str | None = None) -> str:
    """The label that marks the ticket of one task (or of a DAG, for DAG-level callbacks).

    ``airflow:<dag_id>:<task_id>``: Airflow ids cannot contain ``:`` or spaces, so the label is
    unambiguous and readable. A label longer than Jira allows ends in a hash instead.
    """
    label = f"airflow:{dag_id}" + (f":{task_id}" if task_id else "")
    label = "".join("_" if ch.isspace() else ch for ch in label)
    if len(label) > MAX_LABEL_LENGTH:
        digest = hashlib.sha256(label.encode()).hexdigest()[:16]
        label = f"{label[: MAX_LABEL_LENGTH - 17]}~{digest}"
    return label


@dataclass(frozen=True)
class _FailureDetails:
    """What a ticket says about the failure, read from the callback's context."""

    dag_id: str
    task_id: str | None
    run_id: str | None
    try_number: int | None
    log_url: str | None
    error: str | None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> _FailureDetails:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        dag = context.get("dag")
        dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", None)
        try:
            log_url = getattr(ti, "log_url", None)
        except Exception:  # building it reads config; a notifier must not fail on a link
            log_url = None
        error = callback_error(context)
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        return cls(
            dag_id=str(dag_id or "unknown_dag"),
            task_id=getattr(ti, "task_id", None),
            run_id=getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
            try_number=getattr(ti, "try_number", None),
            log_url=log_url,
            error=None if error is None else _redacted(str(error))[:_MAX_ERROR_CHARS],
        )

    @property
    def what(self) -> str:
        return f"{self.dag_id}.{self.task_id}" if self.task_id else self.dag_id

    def lines(self) -> list[str]:
        rows = [
            ("DAG", self.dag_id),
            ("Task", self.task_id),
            ("Run", self.run_id),
            ("Try", self.try_number),
            ("Log", self.log_url),
            ("Error", self.error),
        ]
        return [f"{name}: {value}" for name, value in rows if value not in (None, "")]


class JiraIssueNotifier(BaseNotifier):
    """Open a Jira issue when a task fails, or comment on the one already open for it.

    The issue is found by the label :func:`dedup_label` gives (``airflow:<dag_id>:<task_id>``)
    among the project's issues not in a Done status, or by your own ``jql``. So retries and
    later runs add comments to one ticket instead of opening new ones. The ticket and each
    comment carry the DAG, task, run id, try number, log URL and error.

    .. code-block:: python

        from airflow_provider_jira_auth.notifications.jira_cloud import JiraIssueNotifier

        notify_jira = JiraIssueNotifier(project_key="ENG", issue_type="Bug", labels=["data-platform"])

        @task(retries=2, on_retry_callback=notify_jira, on_failure_callback=notify_jira)
        def load(): ...

    Jira's search is eventually consistent: a ticket opened a second ago may not be found yet.
    Failures of one task are normally minutes apart (``retry_delay``), well past that.

    :param project_key: the project to open issues in (templated).
    :param jira_conn_id: the ``jira_cloud`` connection.
    :param issue_type: issue type name (templated).
    :param summary: the new issue's summary (templated); default ``Airflow: <dag>.<task> failed``.
    :param description: text added to the details in the issue and each comment (templated).
    :param labels: more labels for a new issue (templated); the dedup label is always added.
    :param jql: finds the open issue to comment on instead (templated); default: the dedup label,
        in ``project_key``, not Done.
    :param fields: more fields for a new issue, e.g. ``{"priority": {"name": "High"}}`` (templated).
    """

    template_fields = ("project_key", "issue_type", "summary", "description", "labels", "jql", "fields")
    jira_operations = ("search_issues", "create_issue", "add_comment")

    def __init__(
        self,
        *,
        project_key: str,
        jira_conn_id: str = DEFAULT_CONN_ID,
        issue_type: str = "Task",
        summary: str | None = None,
        description: str | None = None,
        labels: Sequence[str] = ("airflow",),
        jql: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.project_key = project_key
        self.jira_conn_id = jira_conn_id
        self.issue_type = issue_type
        self.summary = summary
        self.description = description
        self.labels = list(labels)
        self.jql = jql
        self.fields = fields

    def notify(self, context: Context) -> None:
        """Open or update the ticket; if that fails, say so at ERROR in the task log and re-raise.

        Airflow runs callbacks after the task's state is decided and only logs what they raise,
        so a notifier that failed quietly would leave a run that looks handled with no ticket.
        """
        ti = context.get("ti") or context.get("task_instance")
        what = ".".join(str(part) for part in (getattr(ti, "dag_id", None), getattr(ti, "task_id", None)) if part)
        try:
            self._notify(_FailureDetails.from_context(context))
        except Exception as exc:
            message = (
                f"JiraIssueNotifier: NO Jira ticket was opened or updated for the failure of {what or 'the DAG'} "
                f"(run {getattr(ti, 'run_id', None)}, try {getattr(ti, 'try_number', None)}) in project "
                f"{self.project_key} via connection {self.jira_conn_id!r}: {type(exc).__name__}: {exc}"
            )
            self.log.error("%s", message, exc_info=True)
            raise

    def _notify(self, details: _FailureDetails) -> None:
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        label = dedup_label(details.dag_id, details.task_id)
        hook = JiraCloudHook(jira_conn_id=self.jira_conn_id)
        hook.check_scopes(*self.jira_operations, what=f"JiraIssueNotifier for {details.what}")
        client = hook.get_conn()
        try:
            jql = self.jql or (
                f"project = {jql_quote(self.project_key)} AND labels = {jql_quote(label)} "
                "AND statusCategory != Done ORDER BY created DESC"
            )
            existing = next(iter(client.search_issues(jql, fields=["summary"], page_size=1, max_results=1)), None)
            if existing is not None:
                client.add_comment(existing["key"], self._text(details, "Failed again."))
                self.log.info("%s failed again: commented on %s", details.what, existing["key"])
                return
            fields: dict[str, Any] = {
                "project": {"key": self.project_key},
                "issuetype": {"name": self.issue_type},
                "summary": self.summary or f"Airflow: {details.what} failed",
                "description": self._text(details, "An Airflow task failed."),
                "labels": list(dict.fromkeys([label, *self.labels])),
                **(self.fields or {}),
            }
            created = client.create_issue(fields)
            self.log.info("%s failed: opened %s", details.what, created["key"])
        finally:
            hook.close()

    def _text(self, details: _FailureDetails, opening: str) -> str:
        parts = [opening, "\n".join(details.lines())]
        if self.description:
            parts.append(self.description)
        return "\n\n".join(parts)


def _redacted(text: str) -> str:
    """Airflow masks its logs, not the tickets this notifier writes: apply the same masker here."""
    from airflow_provider_jira_auth._compat import redact

    return str(redact(text))
