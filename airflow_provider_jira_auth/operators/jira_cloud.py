"""Operators for Jira Cloud: search, create, update, comment, transition, and any other call.

Each one is thin: it templates its arguments, checks the 3LO grant's scopes (see
:mod:`airflow_provider_jira_auth.scopes`), makes one or a few calls through
:class:`~airflow_provider_jira_auth.hooks.jira_cloud.JiraCloudHook`, and returns a small,
XCom-friendly value. The hook (and ``requests`` with it) is imported when a task runs, not
when a DAG file is parsed: see ``bench/operator_import.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from itertools import islice
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_jira_auth.client.errors import JiraArgumentError, JiraTransitionError
from airflow_provider_jira_auth.connection_fields import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_jira_auth.client.http import JiraClient
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook


__all__ = [
    "JiraCommentOperator",
    "JiraCreateIssueOperator",
    "JiraRequestOperator",
    "JiraSearchOperator",
    "JiraTransitionError",
    "JiraTransitionIssueOperator",
    "JiraUpdateIssueOperator",
]


class JiraOperatorMixin:
    """What the provider's operators and sensors share: the connection, the hook, the scope check.

    ``jira_operations`` names the client operations a class calls (keys of
    ``scopes.OPERATIONS``), and an instance adds those an option turns on (``_also_calls``);
    with 3LO their scopes are checked before the first call.

    Every operator and sensor takes ``jira_retry``: how its Jira calls are retried within one
    task try, as a mapping of ``retry_attempts``, ``retry_delay``, ``retry_max_delay`` laid
    over the connection's extras of the same names (e.g. ``jira_retry={"retry_attempts": 1}``
    for no retry), or a ``RetryPolicy``. A deferred sensor hands the mapping to its trigger (a ``RetryPolicy``
    object cannot travel there: the trigger then uses the connection's).
    """

    jira_conn_id: str
    task_id: str
    jira_operations: tuple[str, ...] = ()
    jira_retry: Mapping[str, Any] | Any = None

    def __init__(self, *args: Any, jira_retry: Mapping[str, Any] | Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(jira_retry, Mapping):
            from airflow_provider_jira_auth.settings import RetrySettings

            RetrySettings.parse(jira_retry, "jira_retry")  # bad keys or values fail when the DAG is parsed
            jira_retry = dict(jira_retry)
        elif jira_retry is not None:
            from airflow_provider_jira_auth.client.retry import RetryPolicy

            if not isinstance(jira_retry, RetryPolicy):
                raise JiraArgumentError(
                    "jira_retry",
                    f"must be a mapping of retry_attempts, retry_delay, retry_max_delay or a RetryPolicy, got "
                    f"{type(jira_retry).__name__}; e.g. jira_retry={{'retry_attempts': 3}}",
                )
        self.jira_retry = jira_retry

    def _also_calls(self, *operations: str) -> None:
        """This instance calls ``operations`` beyond its class's (an option turned on): its scope
        check before the first call, and ``jira_operations`` for anyone reading it, include them."""
        self.jira_operations = (*self.jira_operations, *operations)

    @cached_property
    def hook(self) -> JiraCloudHook:
        from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

        hook = JiraCloudHook(jira_conn_id=self.jira_conn_id, retry_policy=self.jira_retry)
        hook.retry_argument = "jira_retry"  # errors name the argument the user wrote
        return hook

    def jira_client(self, *, scopes: Iterable[str] = (), operations: Sequence[str] | None = None) -> JiraClient:
        """The hook's client, once the grant is known to hold what ``operations`` (default: ``jira_operations``) need."""
        needed = self.jira_operations if operations is None else operations
        self.hook.check_scopes(*needed, scopes=scopes, what=f"{type(self).__name__} {self.task_id!r}")
        return self.hook.get_conn()


def compact_issue(issue: Mapping[str, Any]) -> dict[str, Any]:
    """An issue without the ``self`` link and ``expand`` list Jira adds to each: smaller XComs and files."""
    return {key: value for key, value in issue.items() if key not in ("self", "expand")}


def _same_name(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip().casefold() == b.strip().casefold()


def _whole_number(value: Any, name: str, *, optional: bool = False, minimum: int = 0) -> Any:
    """A templated count as an int (``None`` when optional and empty), or a ValueError naming it."""
    if optional and value in (None, ""):
        return None
    try:
        number = int(str(value).strip()) if isinstance(value, str) else value
    except ValueError:
        number = None
    if not isinstance(number, int) or isinstance(number, bool) or number < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return number


def _status_name(issue: Mapping[str, Any]) -> str | None:
    status = (issue.get("fields") or {}).get("status") or {}
    return status.get("name")


def choose_transition(
    available: Iterable[Mapping[str, Any]], transition: str | int | None, target_status: str | None
) -> Mapping[str, Any] | None:
    """The offered transition named ``transition`` (name or id), leading to ``target_status`` when
    that is given too; without a name, the first one leading to ``target_status``."""

    def leads_there(t: Mapping[str, Any]) -> bool:
        return target_status is None or _same_name((t.get("to") or {}).get("name"), target_status)

    if transition is not None:
        wanted = str(transition).strip()
        return next(
            (t for t in available if (_same_name(t.get("name"), wanted) or str(t.get("id")) == wanted) and leads_there(t)),
            None,
        )
    return next((t for t in available if leads_there(t)), None)


def describe_transitions(available: Iterable[Mapping[str, Any]]) -> str:
    """The offered transitions as an error message lists them: name, id and where each leads."""
    offered = "; ".join(
        f"{t.get('name')!r} (id {t.get('id')}) -> {(t.get('to') or {}).get('name')!r}" for t in available
    )
    return offered or "none (may the Jira user transition this issue?)"


# -- search ----------------------------------------------------------------------------------------


class JiraSearchOperator(JiraOperatorMixin, BaseOperator):
    """Issues matching a JQL query, with the fields you choose.

    Returns the issues (``{"id", "key", "fields"}`` each) as the task's XCom. XComs live in
    Airflow's metadata database, so above ``max_xcom_issues`` the task fails with a clear error,
    unless ``output_path`` is set: then every issue is streamed there as JSON Lines (one issue per
    line, in constant memory, written atomically) and ``{"path", "count"}`` is returned.
    ``output_path`` is a local path, a URL of any scheme Airflow's object storage knows
    (``s3://``, ``gs://``, ``file://``, ...) or an ``ObjectStoragePath``: see
    :mod:`~airflow_provider_jira_auth.operators.output`.

    Every ``Asset`` in ``outlets`` gets an event whose extra says what the task produced:
    ``{"jql", "count"}``, and ``"uri"`` when it wrote to ``output_path``, so that a downstream DAG
    knows which file to read.

    .. code-block:: python

        open_bugs = JiraSearchOperator(
            task_id="open_bugs",
            jql="project = ENG AND type = Bug AND statusCategory != Done ORDER BY created",
            fields=["summary", "status", "assignee"],
        )
        export = JiraSearchOperator(
            task_id="export",
            jql="project = ENG ORDER BY key",
            output_path="s3://aws_default@exports/jira/eng-{{ ds }}.jsonl",
            outlets=[Asset("s3://exports/jira/eng")],
        )

    :param jql: a bounded JQL query (templated).
    :param fields: fields to return (templated). Jira's default is none at all (``id`` only);
        ``["*navigable"]`` or ``["*all"]`` for many.
    :param max_results: stop after this many issues; ``None`` for all (templated).
    :param max_xcom_issues: most issues returned as an XCom; more fail the task unless
        ``output_path`` is set (templated).
    :param output_path: write JSON Lines here instead and return ``{"path", "count"}``: a path, a
        URL or an ``ObjectStoragePath`` (templated).
    :param page_size: issues per request (Jira returns at most 100 when fields are asked for)
        (templated).
    :param expand: e.g. ``"changelog"`` (templated).
    :param parallelism: above 1, list the matching ids first and fetch their fields on this many
        threads (1 to 9; templated): the same issues in the same order, several times faster on
        large exports. See ``JiraClient.search_issues``.
    :param history: attach each issue's whole history: every changelog entry (``changelog``) and
        every comment (``fields.comment``), oldest first, where a search embeds only a first page
        of each. Read a chunk of issues at a time (see ``client/history.py``: ``complete_history``).
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = (
        "jql", "fields", "max_results", "max_xcom_issues", "output_path", "page_size", "expand", "parallelism",
    )
    jira_operations = ("search_issues",)

    def __init__(
        self,
        *,
        jql: str,
        fields: str | Sequence[str] | None = ("summary", "status"),
        max_results: int | None = None,
        max_xcom_issues: int = 1000,
        output_path: str | os.PathLike[str] | Any | None = None,
        page_size: int = 100,
        expand: str | Sequence[str] | None = None,
        parallelism: int | str = 1,
        history: bool = False,
        jira_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if history:
            from airflow_provider_jira_auth.client.history import HISTORY_OPERATIONS

            self._also_calls(*HISTORY_OPERATIONS)
        self.history = bool(history)
        if isinstance(max_xcom_issues, int) and max_xcom_issues < 0:
            raise ValueError(f"max_xcom_issues must be >= 0, got {max_xcom_issues}")
        self.jql = jql
        self.fields = fields
        self.max_results = max_results
        self.max_xcom_issues = max_xcom_issues
        self.output_path = output_path
        self.page_size = page_size
        self.expand = expand
        self.parallelism = parallelism
        self.jira_conn_id = jira_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        from airflow_provider_jira_auth.client import history as _history
        from airflow_provider_jira_auth.client.http import usage_note
        from airflow_provider_jira_auth.operators import output

        max_results = _whole_number(self.max_results, "max_results", optional=True)
        max_xcom_issues = _whole_number(self.max_xcom_issues, "max_xcom_issues")
        page_size = _whole_number(self.page_size, "page_size", minimum=1)
        parallelism = _whole_number(self.parallelism, "parallelism", optional=True, minimum=1) or 1
        # Checked before any Jira call: a scheme nobody serves fails now, naming it.
        target = output.resolve_output(self.output_path) if self.output_path else None
        client = self.jira_client()
        calls_before = client.calls_sent
        issues = client.search_issues(
            self.jql,
            fields=self.fields if not self.history else _history.with_comment_field(self.fields),
            page_size=page_size,
            expand=self.expand or None,
            max_results=max_results,
            parallelism=parallelism,
        )
        if self.history:
            issues = _history.complete_history(client, issues)
        if target is not None:
            count = output.write_jsonl(target, (compact_issue(issue) for issue in issues))
            uri = output.describe(target)
            self.log.info("JQL %r: wrote %d issue(s) to %s (%s)", self.jql, count, uri, usage_note(client, calls_before))
            output.describe_outlets(self.outlets, context, {"uri": output.uri_of(target), "jql": self.jql, "count": count})
            return {"path": uri, "count": count}
        found = [compact_issue(issue) for issue in islice(issues, max_xcom_issues + 1)]
        if len(found) > max_xcom_issues:
            from airflow_provider_jira_auth._compat import AirflowFailException

            # A retry would fail the same way: no point spending the task's retries on it.
            raise AirflowFailException(
                f"JQL {self.jql!r} matches more than max_xcom_issues={max_xcom_issues} issues, too many for an "
                "XCom (XComs live in Airflow's metadata database). Set output_path to stream them to a JSON Lines "
                "file, narrow the JQL, set max_results, or raise max_xcom_issues."
            )
        self.log.info("JQL %r: %d issue(s) (%s)", self.jql, len(found), usage_note(client, calls_before))
        output.describe_outlets(self.outlets, context, {"jql": self.jql, "count": len(found)})
        return found



# -- create / update / comment ----------------------------------------------------------------------


def once_key(context: Context, idempotency_key: str | None) -> str:
    """The idempotency key of a task's write: the one given, else ``<dag_id>/<task_id>/<run_id>/<map_index>``
    (the same for every try of one task instance of one DAG run)."""
    if idempotency_key:
        return str(idempotency_key)
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{getattr(ti, 'map_index', -1)}"


class JiraCreateIssueOperator(JiraOperatorMixin, BaseOperator):
    """Create one issue, or many in bulk (50 per request).

    One issue: give ``summary`` (and ``project_key``); the task returns its key. Many: give
    ``issues``, a list of ``fields`` dicts (``project`` and ``issuetype`` default to
    ``project_key`` and ``issue_type``); the task returns the keys created, in input order.
    A ``description`` in plain text is converted to Atlassian Document Format; an ADF document
    is sent as is.

    Jira creates what it can of a bulk request and reports the rest per element. Each failure is
    logged with its position and Jira's reason. Then, with ``fail_on_error`` (the default), the
    task fails, after pushing the keys that *were* created as XCom ``created_keys``; without it,
    it returns what was created.

    With ``create_once=True`` every issue is created at most once for this task of this DAG run:
    each carries a marker label, a lost answer is checked against Jira before anything is sent
    again, and a task retry reuses the issues its earlier tries created. Jira's search shows a
    new issue a moment after it is created, so a retry (and a lost answer) looks for the earlier
    issue for up to ``index_lag`` seconds before creating it; a first try does not wait. Only an
    issue the connection's own account created in the project counts: a marker label another
    user adds elsewhere is ignored and logged (see ``client/idempotency.py``). Without it, a lost
    answer fails the task and a retry may create the same issues again.

    .. code-block:: python

        ticket = JiraCreateIssueOperator(
            task_id="ticket",
            project_key="ENG",
            summary="Nightly load failed for {{ ds }}",
            description="The load of {{ ds }} failed.\\nSee the Airflow logs.",
            labels=["airflow"],
        )
        many = JiraCreateIssueOperator(
            task_id="many",
            project_key="ENG",
            issues=[{"summary": f"Migrate table {t}"} for t in ("users", "orders")],
        )

    :param project_key: the project, e.g. ``ENG`` (templated).
    :param summary: the summary of the one issue to create (templated).
    :param issue_type: issue type name, e.g. ``Task`` or ``Bug`` (templated).
    :param description: plain text or an ADF document (templated).
    :param labels: labels of the one issue (templated).
    :param fields: more fields of the one issue, e.g. ``{"priority": {"name": "High"}}`` (templated).
    :param issues: many issues to create in bulk, each a ``fields`` dict (templated; may be an XComArg).
    :param fail_on_error: fail the task if any issue of a bulk create was not created.
    :param create_once: create each issue at most once per DAG run, across lost answers and task
        retries (adds a marker label ``airflow-once-...`` to each issue).
    :param idempotency_key: with ``create_once``, what identifies "the same issue" (templated);
        default ``<dag_id>/<task_id>/<run_id>/<map_index>``, and the issue's position is appended
        for a bulk create.
    :param index_lag: with ``create_once``, how long (seconds) Jira's search may take to show a
        created issue: what a retry waits at most before it concludes that no earlier try
        created the issue (default 30). The wait is part of the try: give the task an
        ``execution_timeout`` well above it.
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = (
        "project_key",
        "summary",
        "issue_type",
        "description",
        "labels",
        "fields",
        "issues",
        "idempotency_key",
    )
    jira_operations = ("create_issue", "create_issues")

    def __init__(
        self,
        *,
        project_key: str | None = None,
        summary: str | None = None,
        issue_type: str = "Task",
        description: str | dict[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        fields: dict[str, Any] | None = None,
        issues: Sequence[dict[str, Any]] | None = None,
        fail_on_error: bool = True,
        create_once: bool = False,
        idempotency_key: str | None = None,
        index_lag: float | None = None,
        jira_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (summary is None) == (issues is None):
            raise ValueError(
                "JiraCreateIssueOperator needs either summary (one issue) or issues (a list of field dicts), not both"
            )
        self.project_key = project_key
        self.summary = summary
        self.issue_type = issue_type
        self.description = description
        self.labels = labels
        self.fields = fields
        self.issues = issues
        self.fail_on_error = fail_on_error
        self.create_once = create_once or idempotency_key is not None
        if self.create_once:  # it looks for its markers with a search first (read:jira-work), and
            # an issue holding one counts only if its creator is the account of GET /myself
            self._also_calls("search_issues", "myself")
        if index_lag is not None and (
            isinstance(index_lag, bool) or not isinstance(index_lag, (int, float)) or index_lag < 0
        ):
            raise ValueError(f"index_lag must be a number of seconds >= 0, got {index_lag!r}")
        # None: the client's default (client.idempotency.INDEX_LAG), read when the task runs, so
        # parsing a DAG file does not import the create-once machinery.
        self.index_lag = None if index_lag is None else float(index_lag)
        self.idempotency_key = idempotency_key
        self.jira_conn_id = jira_conn_id

    def _once_key(self, context: Context) -> str | None:
        return once_key(context, self.idempotency_key) if self.create_once else None

    def _retry_args(self, context: Context) -> dict[str, Any]:
        """With ``create_once``: on a retry an earlier try may have created the issues, which
        Jira's search shows only after its lag."""
        if not self.create_once:
            return {}
        try_number = getattr(context["ti"], "try_number", 1) or 1
        return {"retrying": int(try_number) > 1, "index_lag": self.index_lag}

    def _defaults(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {"issuetype": {"name": self.issue_type}}
        if self.project_key:
            defaults["project"] = {"key": self.project_key}
        return defaults

    def execute(self, context: Context) -> str | list[str]:
        if self.issues is None:
            return self._create_one(context)
        return self._create_many(context)

    def _create_one(self, context: Context) -> str:
        fields: dict[str, Any] = {**self._defaults(), "summary": self.summary}
        if self.description is not None:
            fields["description"] = self.description
        if self.labels:
            fields["labels"] = list(self.labels)
        fields.update(self.fields or {})
        if "project" not in fields:
            raise ValueError("JiraCreateIssueOperator needs project_key (or a 'project' in fields)")
        created = self.jira_client().create_issue(fields, idempotency_key=self._once_key(context), **self._retry_args(context))
        self.log.info("Created %s: %s", created["key"], self.summary)
        return created["key"]

    def _create_many(self, context: Context) -> list[str]:
        defaults = self._defaults()
        items: list[dict[str, Any]] = []
        for n, item in enumerate(self.issues or ()):
            if not isinstance(item, Mapping):
                raise TypeError(f"issues[{n}] must be a dict of fields, got {type(item).__name__}")
            if isinstance(item.get("fields"), Mapping):  # already {"fields": ..., "update": ...}
                items.append({**item, "fields": {**defaults, **item["fields"]}})
            else:
                items.append({**defaults, **item})
        if not items:
            self.log.info("No issues to create")
            return []
        base = self._once_key(context)
        keys = None if base is None else [f"{base}/{n}" for n in range(len(items))]
        result = self.jira_client().create_issues(
            items, raise_on_error=False, idempotency_keys=keys, **self._retry_args(context)
        )
        self.log.info("Created %d of %d issue(s): %s", len(result.created), len(items), ", ".join(result.keys))
        for error in result.errors:
            self.log.error(
                "Issue #%d (%r) was not created: %s", error.index, _summary_of(items[error.index]), error.message
            )
        if result.errors and self.fail_on_error:
            from airflow_provider_jira_auth.client.errors import JiraBulkError

            context["ti"].xcom_push(key="created_keys", value=result.keys)
            raise JiraBulkError(result)
        return result.keys


def _summary_of(item: Mapping[str, Any]) -> Any:
    nested = item.get("fields")
    return (nested if isinstance(nested, Mapping) else item).get("summary")


class JiraUpdateIssueOperator(JiraOperatorMixin, BaseOperator):
    """Edit an issue's fields (``fields``: set values) or apply operations (``update``).

    .. code-block:: python

        JiraUpdateIssueOperator(
            task_id="label_it",
            issue_key="{{ ti.xcom_pull('ticket') }}",
            fields={"summary": "Nightly load failed (investigating)"},
            update={"labels": [{"add": "investigating"}]},
        )

    A plain-text ``description`` is converted to Atlassian Document Format. Returns the issue key.

    :param issue_key: the issue (templated).
    :param fields: field -> new value (templated).
    :param update: field -> list of operations, e.g. ``{"labels": [{"add": "x"}]}`` (templated).
    :param notify_users: ``False`` suppresses Jira's emails (Jira allows that to admins only).
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = ("issue_key", "fields", "update")
    jira_operations = ("update_issue",)

    def __init__(
        self,
        *,
        issue_key: str,
        fields: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
        notify_users: bool = True,
        jira_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fields is None and update is None:
            raise ValueError("JiraUpdateIssueOperator needs fields or update")
        self.issue_key = issue_key
        self.fields = fields
        self.update = update
        self.notify_users = notify_users
        self.jira_conn_id = jira_conn_id

    def execute(self, context: Context) -> str:
        self.jira_client().update_issue(
            self.issue_key, fields=self.fields, update=self.update, notify_users=self.notify_users
        )
        self.log.info("Updated %s", self.issue_key)
        return self.issue_key


class JiraCommentOperator(JiraOperatorMixin, BaseOperator):
    """Comment on an issue; plain text becomes Atlassian Document Format, ADF is sent as is.

    .. code-block:: python

        JiraCommentOperator(
            task_id="report",
            issue_key="ENG-42",
            body="Loaded {{ ti.xcom_pull('load') }} rows on {{ ds }}.",
        )

    Blank lines separate paragraphs. Returns the new comment's id.

    With ``comment_once=True`` the comment is added at most once for this task of this DAG run:
    it carries a marker (an entity property), a lost answer is checked against the issue before
    anything is sent again, and a task retry finds the comment its earlier try added; only a
    comment whose author is the connection's own account counts, a marker another user sets is
    ignored and logged (see ``client/idempotency.py``). Without it, a lost answer fails the task
    and a retry may comment twice.

    :param issue_key: the issue (templated).
    :param body: plain text or an ADF document (templated).
    :param comment_once: add the comment at most once per DAG run, across lost answers and task retries.
    :param idempotency_key: with ``comment_once``, what identifies "the same comment" (templated);
        default ``<dag_id>/<task_id>/<run_id>/<map_index>``.
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = ("issue_key", "body", "idempotency_key")
    jira_operations = ("add_comment",)

    def __init__(
        self,
        *,
        issue_key: str,
        body: str | dict[str, Any],
        comment_once: bool = False,
        idempotency_key: str | None = None,
        jira_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.issue_key = issue_key
        self.body = body
        self.comment_once = comment_once or idempotency_key is not None
        if self.comment_once:  # it reads the issue's comments first: read:jira-work too
            self._also_calls("issue_comments", "comments_by_id", "myself")
        self.idempotency_key = idempotency_key
        self.jira_conn_id = jira_conn_id

    def execute(self, context: Context) -> str:
        key = once_key(context, self.idempotency_key) if self.comment_once else None
        comment = self.jira_client().add_comment(self.issue_key, self.body, idempotency_key=key)
        self.log.info("Commented on %s (comment %s)", self.issue_key, comment.get("id"))
        return str(comment.get("id"))


# -- transitions -----------------------------------------------------------------------------------


class JiraTransitionIssueOperator(JiraOperatorMixin, BaseOperator):
    """Move an issue through its workflow by transition name or by target status.

    Names are matched case-insensitively (a transition id works too). The API wants transition
    ids, which depend on the issue's current status; this operator looks them up. If the issue
    already is in the target status, the task succeeds without transitioning (so a retry, or a
    rerun, is harmless). A name the issue does not offer fails the task with the transitions
    it does offer.

    .. code-block:: python

        JiraTransitionIssueOperator(task_id="start", issue_key="ENG-42", transition="Start Progress")
        JiraTransitionIssueOperator(task_id="close", issue_key="ENG-42", target_status="done")

    Returns ``{"issue_key", "status", "transitioned"}``.

    :param issue_key: the issue (templated).
    :param transition: the transition's name (or id), e.g. ``"Start Progress"`` (templated).
    :param target_status: the status to reach, e.g. ``"Done"`` (templated); give this or ``transition``.
    :param fields: fields the transition screen sets, e.g. a resolution (templated).
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = ("issue_key", "transition", "target_status", "fields")
    jira_operations = ("get_issue", "get_transitions", "transition_issue")

    def __init__(
        self,
        *,
        issue_key: str,
        transition: str | None = None,
        target_status: str | None = None,
        fields: dict[str, Any] | None = None,
        jira_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (transition is None) == (target_status is None):
            raise ValueError("JiraTransitionIssueOperator needs either transition (a name) or target_status, not both")
        self.issue_key = issue_key
        self.transition = transition
        self.target_status = target_status
        self.fields = fields
        self.jira_conn_id = jira_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        client = self.jira_client()
        current = _status_name(client.get_issue(self.issue_key, fields=["status"]))
        if self.target_status is not None and _same_name(current, self.target_status):
            return self._already_there(current)
        available = client.get_transitions(self.issue_key)
        chosen = choose_transition(available, self.transition, self.target_status)
        if chosen is None:
            # A workflow seldom offers "Done" from Done; a name that is the current status means there.
            if self.transition is not None and _same_name(current, self.transition):
                return self._already_there(current)
            raise JiraTransitionError(self._not_available(current, available))
        target = (chosen.get("to") or {}).get("name")
        if _same_name(current, target):
            return self._already_there(current)
        client.transition_issue(self.issue_key, chosen["id"], fields=self.fields)
        self.log.info("%s: %s -> %s (transition %r)", self.issue_key, current, target, chosen.get("name"))
        return {"issue_key": self.issue_key, "status": target, "transitioned": True}

    def _already_there(self, status: str | None) -> dict[str, Any]:
        self.log.info("%s is already in status %r: nothing to do", self.issue_key, status)
        return {"issue_key": self.issue_key, "status": status, "transitioned": False}

    def _not_available(self, current: str | None, available: list[dict[str, Any]]) -> str:
        if self.target_status is not None:
            problem = f"{self.issue_key} is in status {current!r}, from which no transition leads to status "
            problem += repr(self.target_status)
        else:
            problem = f"{self.issue_key} (status {current!r}) offers no transition {self.transition!r}"
        return f"{problem}. Available transitions: {describe_transitions(available)}"


# -- anything else ---------------------------------------------------------------------------------


class JiraRequestOperator(JiraOperatorMixin, BaseOperator):
    """Call any Jira Cloud REST API v3 endpoint and return its JSON answer.

    For what the other operators do not cover. ``endpoint`` is relative to ``/rest/api/3``.
    With 3LO, ``required_scopes`` are checked against the grant before calling; left ``None``
    they are taken from ``scopes.OPERATIONS`` when the endpoint is one the provider knows, and
    not checked otherwise (Jira then answers ``401 scope does not match`` if one is missing).

    .. code-block:: python

        JiraRequestOperator(
            task_id="project",
            method="GET",
            endpoint="project/ENG",
            required_scopes=["read:jira-work"],
            response_filter=lambda project: project["id"],
        )

    :param endpoint: path relative to the REST root, e.g. ``"project/ENG"`` (templated).
    :param method: HTTP method.
    :param query: query parameters (templated).
    :param json: request body, sent as JSON (templated).
    :param required_scopes: classic scopes the call needs (3LO; Atlassian: "Scopes for OAuth 2.0 (3LO) and Forge apps").
    :param response_filter: turns the parsed answer into the XCom value (keep XComs small).
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = ("endpoint", "query", "json")

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "GET",
        query: dict[str, Any] | None = None,
        json: Any = None,
        required_scopes: Iterable[str] | None = None,
        response_filter: Callable[[Any], Any] | None = None,
        jira_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.method = method.upper()
        self.query = query
        self.json = json
        self.required_scopes = None if required_scopes is None else sorted(set(required_scopes))
        self.response_filter = response_filter
        self.jira_conn_id = jira_conn_id

    def execute(self, context: Context) -> Any:
        from airflow_provider_jira_auth.scopes import scopes_for_request

        scopes = self.required_scopes
        if scopes is None:
            known = scopes_for_request(self.method, self.endpoint)
            if known is None:
                self.log.info(
                    "No scopes known for %s %s: pass required_scopes to check them before calling (3LO)",
                    self.method,
                    self.endpoint,
                )
            scopes = sorted(known or ())
        client = self.jira_client(scopes=scopes)
        result = client.request(self.method, self.endpoint, params=self.query, json=self.json)
        return self.response_filter(result) if self.response_filter is not None else result
