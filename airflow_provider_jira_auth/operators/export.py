"""``JiraIncrementalExportOperator``: each run exports the issues changed in its own time window.

**The window** is ``[start, end)`` in real time (UTC), chosen from the run so that consecutive
successful runs tile time with no gap and no overlap:

* ``end``: the run's ``data_interval_end`` (for Airflow 3's default ``@daily`` / cron schedules
  this equals the run's ``logical_date``: the interval has zero length), else its ``run_after``;
* ``start``: the ``data_interval_end`` of the DAG's previous *successful* run (Airflow's
  ``prev_data_interval_end_success``: the latest successful run with an earlier logical date);
  with none, a non-empty ``data_interval_start``; with neither (the first run of a zero-length
  schedule, a manual run without a logical date), ``end - first_window``.

So a re-run of a day re-exports that day's window (its previous successful run has not moved),
a backfill run in date order exports each day once, and a run after a failed one also covers
the failed one's window. Runs must not overlap for that: give the DAG ``max_active_runs=1``
(two days running at once would both start from the last success, and export the earlier
day's changes twice). ``window_start`` / ``window_end`` override either bound (templated).

**Exactly once per change.** Jira's JQL dates have minute precision and are read in the Jira
user's time zone (``GET /myself``). The query is ``(<jql>) AND updated >= "<start - overlap,
rounded down>" AND updated < "<end, rounded up>"`` written in that zone (14 h wider when it is
unknown), and only the issues whose ``fields.updated`` lies in ``[start, end)`` are written,
once per ``(id, updated)``: a change at 00:00:30 belongs to exactly one of two adjacent windows.
An issue changed again after ``end`` belongs to the later window (its state is exported once,
by the window of its last change). See :mod:`airflow_provider_jira_auth.client.jql_time`.

**Late indexing.** Jira's search is eventually consistent: a change shows up in search a moment
after it is made. A run that starts less than ``settle`` seconds after its window's end waits
until then, so the changes of the window's last seconds are searchable.

**Output.** ``output_path`` (templated, e.g. ``.../eng/{{ ts_nodash }}.jsonl``) gets one issue per
line, written all or nothing (:mod:`.output`); an empty window writes an empty file. The task
returns, and every ``Asset`` outlet's event carries::

    {"uri": ..., "count": 3, "jql": <the query sent>,
     "window": {"start": "2026-11-29T00:00:00+00:00", "end": "2026-11-30T00:00:00+00:00"},
     "time_zone": "Asia/Kolkata"}
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow.sdk import BaseOperator

from airflow_provider_jira_auth.client.errors import JiraArgumentError
from airflow_provider_jira_auth.connection_fields import DEFAULT_CONN_ID
from airflow_provider_jira_auth.operators.jira_cloud import JiraOperatorMixin, compact_issue

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["ExportWindow", "JiraIncrementalExportOperator", "export_window", "in_window", "window_jql"]

#: fields always fetched: the exact filter reads ``updated``
_NEEDED_FIELDS = ("updated",)


class ExportWindow(NamedTuple):
    """``[start, end)`` in UTC, and where each bound came from (for the log)."""

    start: datetime
    end: datetime
    start_from: str
    end_from: str

    def to_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def _utc(value: Any, name: str) -> datetime | None:
    """A context date (pendulum or datetime, maybe a lazy proxy) or ISO string as aware UTC; None if none."""
    value = getattr(value, "__wrapped__", value)  # lazy_object_proxy: the value it stands for
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise JiraArgumentError(name, f"must be an ISO 8601 date-time with an offset, got {value!r}") from None
    if not isinstance(value, datetime):
        raise JiraArgumentError(name, f"must be a datetime or an ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        raise JiraArgumentError(name, f"{value.isoformat()} has no time zone: give an offset, e.g. +00:00")
    return datetime.fromtimestamp(value.timestamp(), tz=timezone.utc)


def _seconds(value: Any, name: str) -> float:
    """A number of seconds >= 0, or an error naming the argument."""
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise JiraArgumentError(name, f"must be a number of seconds >= 0, got {value!r}")
    return seconds


def export_window(
    context: Mapping[str, Any],
    *,
    window_start: Any = None,
    window_end: Any = None,
    first_window: timedelta = timedelta(days=1),
) -> ExportWindow:
    """The run's window ``[start, end)``: see the module's docstring for where each bound comes from."""
    end, end_from = _utc(window_end, "window_end"), "window_end"
    if end is None:
        end, end_from = _utc(context.get("data_interval_end"), "data_interval_end"), "data_interval_end"
    if end is None:
        dag_run = context.get("dag_run")
        end, end_from = _utc(getattr(dag_run, "run_after", None), "run_after"), "run_after"
    if end is None:
        raise JiraArgumentError("window_end", "the run has no data interval and no run_after: set window_end")

    start, start_from = _utc(window_start, "window_start"), "window_start"
    if start is None:
        prev = _utc(context.get("prev_data_interval_end_success"), "prev_data_interval_end_success")
        if prev is not None and prev <= end:
            start, start_from = prev, "the previous successful run's data_interval_end"
    if start is None:
        interval_start = _utc(context.get("data_interval_start"), "data_interval_start")
        if interval_start is not None and interval_start < end:
            start, start_from = interval_start, "data_interval_start"
    if start is None:
        start, start_from = end - first_window, f"first run: window_end - first_window ({first_window})"
    if start > end:
        raise JiraArgumentError(
            "window_start", f"{start.isoformat()} is after the window's end {end.isoformat()}: check window_start/window_end"
        )
    return ExportWindow(start, end, start_from, end_from)


def window_jql(jql: str, window: ExportWindow, zone: tzinfo | None, overlap: float) -> str:
    """``(<jql>) AND updated >= "..." AND updated < "..." ORDER BY updated ASC, id ASC``, bounds rounded outward."""
    from airflow_provider_jira_auth.client.jql_time import changes_jql, jql_date

    lower = jql_date(window.start - timedelta(seconds=overlap), zone)
    return changes_jql(jql, lower, jql_date(window.end, zone, up=True))


def in_window(issues: Iterable[Mapping[str, Any]], window: ExportWindow) -> Iterator[Mapping[str, Any]]:
    """The issues whose ``fields.updated`` is in ``[start, end)``, each ``(id, updated)`` once."""
    from airflow_provider_jira_auth.client.jql_time import parse_jira_time

    lo, hi = int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)
    seen: set[tuple[str, int]] = set()
    for issue in issues:
        stamp = (issue.get("fields") or {}).get("updated")
        if not stamp:
            raise ValueError(f"issue {issue.get('key') or issue.get('id')} came without fields.updated")
        pair = (str(issue["id"]), parse_jira_time(stamp))
        if not lo <= pair[1] < hi or pair in seen:
            continue
        seen.add(pair)
        yield issue


class JiraIncrementalExportOperator(JiraOperatorMixin, BaseOperator):
    """Export the issues matching ``jql`` that changed in this run's window to a JSON Lines file.

    For a scheduled DAG: each successful run picks up where the previous successful run ended,
    so every change is exported once, with no gap between days (see :mod:`.export`).

    .. code-block:: python

        @dag(schedule="@daily", start_date=datetime(2026, 11, 1, tzinfo=timezone.utc), catchup=False)
        def jira_daily():
            JiraIncrementalExportOperator(
                task_id="changed",
                jql="project = ENG",
                output_path="s3://aws_default@exports/jira/eng/{{ ts_nodash }}.jsonl",
                outlets=[Asset("s3://exports/jira/eng")],
            )

    Returns ``{"path", "uri", "count", "jql", "window": {"start", "end"}, "time_zone"}``; all but
    ``path`` are put on every ``Asset`` outlet's event, so that a DAG scheduled on the asset reads
    the file it names with ``ObjectStoragePath(event.extra["uri"])`` (a ``file://`` URL for a
    local file).

    :param jql: which issues, e.g. ``project = ENG AND type = Bug`` (templated); an ``ORDER BY``
        is replaced. Empty: every issue the user can see.
    :param output_path: where to write: a path, a URL (``s3://``, ``file://``, ...) or an
        ``ObjectStoragePath`` (templated; make it differ per run, e.g. with ``{{ ts_nodash }}``).
    :param fields: fields to export (templated); ``updated`` is always added.
    :param window_start: override the window's start (templated; a datetime or ISO 8601 with an offset).
    :param window_end: override the window's end (templated; likewise).
    :param first_window: how far back the first run reaches when nothing earlier tells.
    :param overlap: seconds the query reaches before the window's start, beyond the rounding to
        the minute (the exact filter drops what is outside the window).
    :param settle: seconds after the window's end before the search runs (Jira indexes changes
        a moment late); a run that starts earlier waits.
    :param page_size: issues per request (templated).
    :param history: attach each exported issue's whole history, as ``JiraSearchOperator`` does:
        every changelog entry (``changelog``) and every comment (``fields.comment``), oldest first,
        where a search embeds only a first page of each (see ``client/history.py``).
    :param jira_conn_id: the ``jira_cloud`` connection.
    """

    template_fields: Sequence[str] = ("jql", "output_path", "fields", "window_start", "window_end", "page_size")
    #: what it calls; ``myself`` (the user's zone, scope ``read:jira-user``) is optional: see execute()
    jira_operations = ("search_issues", "myself")

    def __init__(
        self,
        *,
        jql: str,
        output_path: str | os.PathLike[str] | Any,
        fields: str | Sequence[str] | None = ("summary", "status", "assignee", "created", "updated"),
        window_start: str | datetime | None = None,
        window_end: str | datetime | None = None,
        first_window: timedelta = timedelta(days=1),
        overlap: float = 120.0,
        settle: float = 30.0,
        page_size: int = 100,
        history: bool = False,
        jira_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(history, bool):
            raise TypeError(f"history must be True or False, got {history!r}")
        if history:
            from airflow_provider_jira_auth.client.history import HISTORY_OPERATIONS

            self._also_calls(*HISTORY_OPERATIONS)
        self.history = history
        if not isinstance(jql, str):
            raise TypeError(f"jql must be a string, got {type(jql).__name__}")
        if not isinstance(first_window, timedelta) or first_window <= timedelta(0):
            raise ValueError(f"first_window must be a positive timedelta, got {first_window!r}")
        self.jql = jql
        self.output_path = output_path
        self.fields = fields
        self.window_start = window_start
        self.window_end = window_end
        self.first_window = first_window
        self.overlap = _seconds(overlap, "overlap")
        self.settle = _seconds(settle, "settle")
        self.page_size = page_size
        self.jira_conn_id = jira_conn_id

    def _fields(self) -> list[str]:
        from airflow_provider_jira_auth.client.history import with_comment_field

        chosen = [self.fields] if isinstance(self.fields, str) else list(self.fields or ())
        names = [part.strip() for item in chosen for part in str(item).split(",") if part.strip()]
        names += [f for f in _NEEDED_FIELDS if f not in names]
        # With history, the search embeds a first page of comments: only issues with more cost calls.
        return with_comment_field(names) if self.history else names

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_jira_auth.client.history import HISTORY_OPERATIONS, complete_history
        from airflow_provider_jira_auth.client.jql_time import user_zone
        from airflow_provider_jira_auth.operators import output
        from airflow_provider_jira_auth.operators.jira_cloud import _whole_number

        page_size = _whole_number(self.page_size, "page_size", minimum=1)
        window = export_window(
            context, window_start=self.window_start, window_end=self.window_end, first_window=self.first_window
        )
        # Checked before any Jira call: a scheme nobody serves fails now, naming it.
        target = output.resolve_output(self.output_path)
        # Only the search's scopes (and the history's) are required of a 3LO grant: without
        # read:jira-user the zone is unknown and the query is widened instead (client/jql_time.py).
        # Checked before the settling wait, so that a missing scope fails at once.
        client = self.jira_client(operations=("search_issues", *(HISTORY_OPERATIONS if self.history else ())))
        self._wait_until_settled(window)
        zone = user_zone(client)
        query = window_jql(self.jql, window, zone, self.overlap)
        self.log.info(
            "Window [%s, %s) (start: %s; end: %s); the Jira user's time zone: %s",
            window.start.isoformat(),
            window.end.isoformat(),
            window.start_from,
            window.end_from,
            getattr(zone, "key", None) or "unknown (JQL dates widened by 14 h)",
        )
        issues = in_window(client.search_issues(query, fields=self._fields(), page_size=page_size), window)
        if self.history:
            # After the window's filter: history is read only for the issues written.
            issues = complete_history(client, issues)
        count = output.write_jsonl(target, (compact_issue(issue) for issue in issues))
        # A URL even for a local file, so that a reader can open it as ObjectStoragePath(uri).
        uri = output.uri_of(target)
        self.log.info("JQL %r: wrote %d issue(s) changed in the window to %s", query, count, uri)
        extra = {
            "uri": uri,
            "count": count,
            "jql": query,
            "window": window.to_json(),
            "time_zone": getattr(zone, "key", None),
        }
        output.describe_outlets(self.outlets, context, extra)
        return {"path": output.describe(target), **extra}

    def _wait_until_settled(self, window: ExportWindow) -> None:
        wait = window.end.timestamp() + self.settle - time.time()
        if wait > self.settle:
            raise JiraArgumentError(
                "window_end", f"{window.end.isoformat()} is in the future: a window can only be exported once it has ended"
            )
        if wait > 0:
            self.log.info("Waiting %.1f s for Jira to index the window's last changes (settle=%s)", wait, self.settle)
            time.sleep(wait)
