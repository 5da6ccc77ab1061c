"""An issue's whole history: every changelog entry and every comment, paged.

What a search embeds is a first page only: ``search/jql`` with ``expand=changelog`` holds at most
40 histories an issue (``GET issue`` 100), and the ``comment`` field a first page of comments
(Jira Cloud REST API v3: "Issue search", "Issues: Bulk fetch changelogs"). :func:`complete_history` fills in the rest for a stream of issues:

* changelogs with ``POST changelog/bulkfetch``, one request (and its pages) for up to
  :data:`HISTORY_CHUNK` issues at once, only for the issues whose embedded changelog is missing or
  truncated;
* comments with ``GET issue/{key}/comment``, 100 a page, only for the issues whose embedded
  ``comment`` field is missing or truncated (Jira has no bulk read of comments).

It works a chunk at a time as the stream goes, so memory holds one chunk's history, not the
export's. The per-issue generators :func:`issue_changelog` and :func:`issue_comments` are
:class:`~.http.JiraClient` methods too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Protocol
from urllib.parse import quote

from airflow_provider_jira_auth.client.paging import next_page_token


class JiraClient(Protocol):
    """What this module needs of :class:`~.http.JiraClient` (which imports it: no import back)."""

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any: ...

#: Issues completed together: one ``changelog/bulkfetch`` request covers them all (Jira takes 1000).
HISTORY_CHUNK = 100
#: Jira's page limits: ``GET .../changelog`` and ``GET .../comment`` 100, ``changelog/bulkfetch`` 10000.
PAGE_LIMIT = 100
BULK_CHANGELOG_ISSUES = 1000
BULK_CHANGELOG_PAGE = 1000


#: The client operations (keys of ``scopes.OPERATIONS``) :func:`complete_history` calls.
HISTORY_OPERATIONS = ("bulk_changelogs", "issue_comments")


def with_comment_field(fields: str | Iterable[str] | None) -> list[str]:
    """``fields`` plus ``comment``, so that a search embeds each issue's first page of comments and
    :func:`complete_history` calls Jira only for issues with more."""
    items = fields.split(",") if isinstance(fields, str) else list(fields or ())
    names = [str(item).strip() for item in items if str(item).strip()]
    return names if "comment" in names or "*all" in names else [*names, "comment"]


def _offset_pages(client: JiraClient, path: str, items_key: str, page_size: int, params: dict[str, Any]) -> Iterator[Any]:
    """Items of a ``startAt``-paged listing; stops on ``isLast``, on ``total`` reached, or on an empty page."""
    if not 1 <= page_size <= PAGE_LIMIT:
        raise ValueError(f"page_size must be between 1 and {PAGE_LIMIT}, got {page_size}")
    start = 0
    while True:
        page = client.request("GET", path, params={**params, "startAt": start, "maxResults": page_size}) or {}
        items = page.get(items_key) or []
        yield from items
        start += len(items)
        total = page.get("total")
        if not items or page.get("isLast") is True or (isinstance(total, int) and start >= total):
            return


def issue_changelog(client: JiraClient, key: str, *, page_size: int = PAGE_LIMIT) -> Iterator[dict[str, Any]]:
    """Every changelog entry of one issue, oldest first (``GET issue/{key}/changelog``, paged)."""
    return _offset_pages(client, f"issue/{quote(str(key), safe='')}/changelog", "values", page_size, {})


def issue_comments(client: JiraClient, key: str, *, page_size: int = PAGE_LIMIT) -> Iterator[dict[str, Any]]:
    """Every comment of one issue, oldest first (``GET issue/{key}/comment``, paged)."""
    return _offset_pages(
        client, f"issue/{quote(str(key), safe='')}/comment", "comments", page_size, {"orderBy": "created"}
    )


def bulk_changelogs(
    client: JiraClient, keys_or_ids: Iterable[str], *, page_size: int = BULK_CHANGELOG_PAGE
) -> dict[str, list[dict[str, Any]]]:
    """Every changelog entry of many issues (``POST changelog/bulkfetch``, ``nextPageToken`` paged).

    :param keys_or_ids: at most 1000 issues (Jira's limit for one request).
    :return: issue **id** -> its entries, oldest first; an issue without history (or unknown to
        Jira) has no key.
    """
    wanted = [str(k) for k in keys_or_ids]
    if not wanted:
        return {}
    if len(wanted) > BULK_CHANGELOG_ISSUES:
        raise ValueError(f"bulk_changelogs takes at most {BULK_CHANGELOG_ISSUES} issues a call, got {len(wanted)}")
    body: dict[str, Any] = {"issueIdsOrKeys": wanted, "maxResults": page_size}
    found: dict[str, list[dict[str, Any]]] = {}
    while True:
        page = client.request("POST", "changelog/bulkfetch", json=body) or {}
        for group in page.get("issueChangeLogs") or []:
            found.setdefault(str(group.get("issueId")), []).extend(group.get("changeHistories") or [])
        token = next_page_token(
            page.get("nextPageToken"), page.get("isLast"), body.get("nextPageToken"), what="POST changelog/bulkfetch"
        )
        if token is None:
            return found
        body["nextPageToken"] = token


def _truncated(page: Any, items_key: str) -> bool:
    """Whether an embedded page (``{total, <items>}``) is missing or lacks some items."""
    if not isinstance(page, dict) or not isinstance(page.get(items_key), list):
        return True
    total = page.get("total")
    return not isinstance(total, int) or total > len(page[items_key])


def complete_history(
    client: JiraClient,
    issues: Iterable[dict[str, Any]],
    *,
    changelog: bool = True,
    comments: bool = True,
    chunk_size: int = HISTORY_CHUNK,
    concurrency: int = 4,
) -> Iterator[dict[str, Any]]:
    """The same issues, in the same order, each carrying its whole history.

    ``changelog`` becomes ``{"startAt": 0, "maxResults": n, "total": n, "histories": [...]}`` with
    every entry, oldest first; ``fields.comment`` becomes ``{"startAt": 0, "maxResults": n,
    "total": n, "comments": [...]}`` with every comment, oldest first. An issue whose embedded
    page already holds everything is left as it is, so asking the search for ``fields=comment``
    (and ``expand=changelog``) saves calls for issues with little history.

    Lazy: a chunk of ``chunk_size`` issues is read from ``issues``, completed and yielded before
    the next is read, so memory holds one chunk.

    :param client: the client to call Jira with.
    :param issues: issues as ``search/jql`` or ``issue/bulkfetch`` return them (``id``, ``key``...).
    :param changelog: complete the changelog (``POST changelog/bulkfetch``).
    :param comments: complete the comments (``GET issue/{key}/comment``).
    :param chunk_size: issues completed together, 1..1000.
    :param concurrency: issues of a chunk whose comments are read at once (1..16), on threads
        sharing ``client``; Jira has no bulk read of comments, so this is what hides its latency.
    """
    if not 1 <= chunk_size <= BULK_CHANGELOG_ISSUES:
        raise ValueError(f"chunk_size must be between 1 and {BULK_CHANGELOG_ISSUES}, got {chunk_size}")
    if not 1 <= concurrency <= 16:
        raise ValueError(f"concurrency must be between 1 and 16, got {concurrency}")
    return _complete(client, iter(issues), changelog, comments, chunk_size, concurrency)


def _complete(
    client: JiraClient, stream: Iterator[dict[str, Any]], changelog: bool, comments: bool, chunk_size: int, threads: int
) -> Iterator[dict[str, Any]]:
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="jira-history") if threads > 1 else None
    try:
        while True:
            chunk = list(islice(stream, chunk_size))
            if not chunk:
                return
            if changelog:
                _complete_changelogs(client, chunk)
            if comments:
                short = [issue for issue in chunk if _truncated((issue.get("fields") or {}).get("comment"), "comments")]
                if pool is None:
                    for issue in short:
                        _complete_comments(client, issue)
                else:
                    # list(): wait for all, and raise the first failure
                    list(pool.map(lambda issue: _complete_comments(client, issue), short))
            yield from chunk
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _whole_page(items_key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"startAt": 0, "maxResults": len(items), "total": len(items), items_key: items}


def _complete_changelogs(client: JiraClient, chunk: list[dict[str, Any]]) -> None:
    short = [issue for issue in chunk if _truncated(issue.get("changelog"), "histories")]
    if not short:
        return
    by_id = bulk_changelogs(client, [str(issue.get("id") or issue["key"]) for issue in short])
    for issue in short:
        # Keyed by id; an issue given by key alone is looked up by key.
        histories = by_id.get(str(issue.get("id"))) or by_id.get(str(issue.get("key")))
        if histories is None:
            # Nothing came back: no history, or the issue is gone meanwhile; keep what was embedded.
            embedded = issue.get("changelog")
            histories = list(embedded.get("histories") or []) if isinstance(embedded, dict) else []
        issue["changelog"] = _whole_page("histories", histories)


def _complete_comments(client: JiraClient, issue: dict[str, Any]) -> None:
    fields = issue.setdefault("fields", {})
    if not _truncated(fields.get("comment"), "comments"):
        return
    fields["comment"] = _whole_page("comments", list(issue_comments(client, str(issue.get("key") or issue["id"]))))
