"""``search_issues(..., parallelism=N)``: list the matching ids, fetch their fields N calls at a time.

Jira's search is paged by ``nextPageToken``: page n+1 cannot be asked for before page n has
answered, so one search is one stream, bound by Jira's latency (a few hundred milliseconds a
page of 100 issues). What parallelises is the work behind it:

1. **list** the matching issue ids in JQL order: ``POST search/jql`` with ``fields: ["id"]``,
   which Jira answers up to 5,000 issues a page (:data:`LISTING_PAGE_SIZE`) and cheaply;
2. **fetch** them ``page_size`` (at most 100) ids a call with ``POST issue/bulkfetch`` on
   ``parallelism`` threads, and give them back in the listing's (the JQL's) order: Jira answers
   a bulkfetch in ascending id order, so each page is put back in the order it was asked for.

Why this and not splitting the JQL into parts searched side by side: see docs/architecture.md
("Parallel search"), with the measurements.

Memory is bounded whatever the result size: one listing page of ids (at most 5,000 strings) and
at most ``2 * parallelism`` fetch pages (:func:`window_for`), queued or in flight, of at most
100 issues each. A page is only asked for when there is room in that window, and the window
only moves as the caller consumes issues. At most ``parallelism + 1`` calls are in flight at
once: the fetching threads, and the listing of the next ids on the caller's thread.

Failures:

* each call goes through the client's retry policy on its own (``issue/bulkfetch`` and
  ``search/jql`` are read-only POSTs, repeated like GETs), so a page that fails transiently is
  retried alone and the others go on;
* a page that still fails raises :class:`JiraSearchPageError`, naming the page's range (its
  positions in the result and its first and last ids), chained to the client's error; pages
  before it have been yielded, none after it;
* ids Jira lists in ``issueErrors`` (it could not return them this time: its word for
  "retriable") are asked for again, backed off as the retry policy says, up to its
  ``max_attempts``; then the page fails as above;
* an id the listing gave that bulkfetch no longer returns, neither as an issue nor in
  ``issueErrors``, was deleted or became invisible to the user in between (Jira leaves such ids
  out without a word). It is **left out**, as the sequential search would leave it out had it
  been deleted before its page was read, but not silently: a warning names it and
  :attr:`ParallelSearch.vanished` lists it.
* nothing is ever yielded twice: each id is fetched and yielded once, at its first place in the
  listing, also when Jira's paging lists it again (a result that changes while it is paged can
  shift a page back by one); a warning says so and :attr:`ParallelSearch.relisted` lists it.

The result is the set of issues that matched when they were listed, each with its fields as
they were when fetched (an issue edited in between so that it no longer matches is still
yielded, with its new values); issues created after the listing are not in it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from airflow_provider_jira_auth.client.bulk import BULK_FETCH_CHUNK
from airflow_provider_jira_auth.client.errors import JiraError, JiraSearchPageError
from airflow_provider_jira_auth.client.paging import next_page_token
from airflow_provider_jira_auth.client.retry import RetryPolicy

log = logging.getLogger(__name__)


class SearchClient(Protocol):
    """What a parallel search needs of :class:`~.http.JiraClient` (named here, not imported:
    http.py imports this module)."""

    retry: RetryPolicy

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any: ...

#: Most threads one search fetches with. With the listing of the next ids (on the caller's
#: thread) that is 10 calls at once, the connections ``requests`` keeps per host; beyond them it
#: would open and drop connections. Jira's burst limit (about 100 calls a second per endpoint) is
#: far above what 9 threads send at its latency.
MAX_PARALLELISM = 9

#: Ids per listing page: Jira's ``maxResults`` cap when only ids are asked for.
LISTING_PAGE_SIZE = 5000

#: Fields that a listing page already carries: asking for only these leaves nothing to fetch.
_ID_FIELDS = frozenset({"id", "key"})


def check_parallelism(parallelism: Any) -> int:
    """``parallelism`` as an int in 1..:data:`MAX_PARALLELISM`, else :class:`ValueError`."""
    if isinstance(parallelism, bool) or not isinstance(parallelism, int):
        raise ValueError(f"parallelism must be an integer from 1 to {MAX_PARALLELISM}, got {parallelism!r}")
    if not 1 <= parallelism <= MAX_PARALLELISM:
        raise ValueError(f"parallelism must be between 1 and {MAX_PARALLELISM}, got {parallelism}")
    return parallelism


def parallel_applies(body: dict[str, Any], parallelism: int) -> bool:
    """Whether a search with this ``search/jql`` body gains from fetching in parallel.

    Not with ``parallelism=1`` (the plain stream), nor when only ids or keys are asked for (Jira's
    default): the listing is then the whole answer and there is nothing to fetch.
    """
    check_parallelism(parallelism)
    if parallelism == 1:
        return False
    fields = body.get("fields")
    return bool(body.get("expand")) or not (fields is None or set(fields) <= _ID_FIELDS)


def window_for(parallelism: int) -> int:
    """Fetch pages queued or in flight at most: each thread busy, and as many ready to go."""
    return 2 * parallelism


class ParallelSearch(Iterator[dict[str, Any]]):
    """The issues of one search, in the JQL's order, fetched ``parallelism`` pages at a time.

    Lazy like the plain stream: nothing is sent before the first issue is asked for. Closing it
    (or letting it go) cancels the pages not yet sent; pages in flight finish in the background.

    :param client: the client whose ``request`` (and so retry policy and auth) every call uses.
    :param body: the ``search/jql`` body ``search_issues`` built: ``jql``, ``fields``, ``expand``.
    :param page_size: ids per bulkfetch call (capped at 100, Jira's limit).
    :param limit: stop after this many issues; ``None`` for all.
    :param parallelism: threads fetching pages, 2..:data:`MAX_PARALLELISM`.

    .. attribute:: vanished

        Ids the listing gave that bulkfetch no longer returned (deleted or no longer visible
        since), in listing order; complete once the iterator is exhausted.

    .. attribute:: relisted

        Ids the listing gave a second time, each yielded once only.
    """

    def __init__(
        self, client: SearchClient, body: dict[str, Any], page_size: int, limit: int | None, parallelism: int
    ) -> None:
        self._client = client
        self._jql = body["jql"]
        self._fields = body.get("fields")
        expand = body.get("expand")
        self._expand = [e.strip() for e in expand.split(",") if e.strip()] if isinstance(expand, str) else expand
        self._page_size = min(page_size, BULK_FETCH_CHUNK)
        self._limit = limit
        self.parallelism = check_parallelism(parallelism)
        self.vanished: list[str] = []
        self.relisted: list[str] = []
        self._issues = self._run()

    def __repr__(self) -> str:
        return f"ParallelSearch({self._jql!r}, parallelism={self.parallelism})"

    def __iter__(self) -> ParallelSearch:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._issues)

    def close(self) -> None:
        """Stop: pages not yet sent are cancelled."""
        self._issues.close()

    # -- listing --------------------------------------------------------------------------------

    def _listing(self) -> Iterator[str]:
        """The matching ids in JQL order, ``LISTING_PAGE_SIZE`` a call."""
        body: dict[str, Any] = {"jql": self._jql, "fields": ["id"], "maxResults": LISTING_PAGE_SIZE}
        remaining, listed = self._limit, 0
        while remaining is None or remaining > 0:
            if remaining is not None:
                body["maxResults"] = min(LISTING_PAGE_SIZE, remaining)
            try:
                page = self._client.request("POST", "search/jql", json=body) or {}
            except JiraError as exc:
                raise JiraSearchPageError(
                    f"listing the ids of issues {listed + 1}.. of JQL {self._jql!r}", listed + 1, None, (), exc
                ) from exc
            ids = [str(issue["id"]) for issue in page.get("issues") or []]
            if remaining is not None:
                ids = ids[:remaining]
                remaining -= len(ids)
            listed += len(ids)
            yield from ids
            token = next_page_token(page.get("nextPageToken"), page.get("isLast"), body.get("nextPageToken"))
            if token is None:
                return
            body["nextPageToken"] = token

    def _pages(self) -> Iterator[tuple[int, list[str]]]:
        """``(position of the first, ids)`` of each fetch page, positions from 1 in the result.

        An id the listing gives a second time (Jira's paging is not a snapshot: an issue created
        or changed meanwhile can shift a later page back by one) is dropped, with a warning.
        """
        page: list[str] = []
        position = 1
        seen = _SeenIds()
        for issue_id in self._listing():
            if not seen.add(issue_id):
                self.relisted.append(issue_id)
                log.warning(
                    "JQL %r: Jira listed issue id %s a second time (the result changed while it was paged); "
                    "it is fetched and yielded once",
                    self._jql,
                    issue_id,
                )
                continue
            page.append(issue_id)
            if len(page) == self._page_size:
                yield position, page
                position += len(page)
                page = []
        if page:
            yield position, page

    # -- fetching -------------------------------------------------------------------------------

    def _fetch(self, start: int, ids: list[str]) -> list[Any]:
        """One page in listing order: runs on a worker thread."""
        retry = self._client.retry
        found: dict[str, dict[str, Any]] = {}
        wanted = ids
        attempt = 1
        while True:
            payload: dict[str, Any] = {"issueIdsOrKeys": wanted}
            if self._fields is not None:
                payload["fields"] = self._fields
            if self._expand:
                payload["expand"] = self._expand
            try:
                answer = self._client.request("POST", "issue/bulkfetch", json=payload) or {}
            except JiraError as exc:
                raise self._page_error(start, ids, str(exc), exc) from exc
            for issue in answer.get("issues") or []:
                found[str(issue.get("id"))] = issue
            errors = {
                str(e.get("id")): str(e.get("errorMessage") or "no reason given")
                for e in answer.get("issueErrors") or []
                if str(e.get("id")) in wanted and str(e.get("id")) not in found
            }
            if not errors:
                break
            if attempt >= retry.max_attempts:
                said = "; ".join(f"{i}: {m}" for i, m in list(errors.items())[:5])
                raise self._page_error(
                    start, ids, f"Jira could not return {len(errors)} of its issues after {attempt} attempts ({said})"
                )
            wait = retry.backoff(attempt)
            log.warning(
                "Jira POST issue/bulkfetch could not return %d issue(s) of %s; asking again in %.1f s",
                len(errors),
                _range(start, ids),
                wait,
            )
            retry.sleep(wait)
            wanted = [i for i in ids if i in errors]
            attempt += 1
        return [found[i] if i in found else _Vanished(i) for i in ids]

    def _page_error(
        self, start: int, ids: list[str], why: str, cause: BaseException | None = None
    ) -> JiraSearchPageError:
        return JiraSearchPageError(f"fetching {_range(start, ids)} of JQL {self._jql!r}", start, len(ids), ids, cause, why)

    def _run(self) -> Iterator[dict[str, Any]]:
        parallelism = self.parallelism
        window: deque[tuple[int, list[str], Future[list[Any]]]] = deque()
        pages = self._pages()
        pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="jira-search")
        yielded = 0

        def send_next() -> bool:
            page = next(pages, None)
            if page is None:
                return False
            start, ids = page
            window.append((start, ids, pool.submit(self._fetch, start, ids)))
            return True

        try:
            while len(window) < window_for(parallelism) and send_next():
                pass
            while window:
                start, ids, future = window.popleft()
                issues = future.result()
                send_next()  # keep the window full while this page is consumed
                gone = [issue.id for issue in issues if isinstance(issue, _Vanished)]
                if gone:
                    self.vanished.extend(gone)
                    log.warning(
                        "JQL %r: %d issue(s) of %s are gone since they were listed (deleted, or no longer visible "
                        "to this user) and are left out: ids %s",
                        self._jql,
                        len(gone),
                        _range(start, ids),
                        ", ".join(gone[:20]) + (" ..." if len(gone) > 20 else ""),
                    )
                for issue in issues:
                    if not isinstance(issue, _Vanished):
                        yielded += 1
                        yield issue
                issues = []
            log.info(
                "JQL %r: %d issue(s) fetched in parallel (%d threads)%s",
                self._jql,
                yielded,
                parallelism,
                f", {len(self.vanished)} gone since listed" if self.vanished else "",
            )
        finally:
            for _, _, future in window:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)


class _SeenIds:
    """Which ids were listed: a bitmap over Jira's numeric issue ids, so that it grows with the
    highest id (1 MB per 8 million) rather than with the number of issues; a set for any other id."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self._others: set[str] = set()

    def add(self, issue_id: str) -> bool:
        """Record ``issue_id``; ``False`` if it was already there."""
        if not issue_id.isdigit() or len(issue_id) > 8:  # a bitmap up to 12.5 MB, a set beyond
            if issue_id in self._others:
                return False
            self._others.add(issue_id)
            return True
        byte, bit = divmod(int(issue_id), 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        mask = 1 << bit
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        return True


class _Vanished:
    """The place of a listed id that bulkfetch no longer returned."""

    __slots__ = ("id",)

    def __init__(self, issue_id: str) -> None:
        self.id = issue_id


def _range(start: int, ids: list[str]) -> str:
    return f"issues {start}-{start + len(ids) - 1} (ids {ids[0]}..{ids[-1]})"
