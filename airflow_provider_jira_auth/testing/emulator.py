"""The Jira Cloud emulator: Atlassian's auth server, its API gateway and Jira Cloud sites, offline.

One real HTTP server on 127.0.0.1 plays all three by default::

    with JiraCloudEmulator() as emu:
        emu.seed_issues(count=500)
        os.environ["AIRFLOW_CONN_JIRA_CLOUD_DEFAULT"] = emu.connection_json("basic")
        ...  # run the code under test against emu.url

It follows the Atlassian facts the provider relies on (auth per URL, scopes, rotating refresh
tokens with reuse leeway and family revocation, search/jql paging, 410 for the removed search,
realistic 429s) and lets a test inject faults, rate limits and move the clock.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Union
from zoneinfo import ZoneInfo

from ._accounts import Accounts, User
from ._dispatch import Dispatcher, RecordedRequest
from ._faults import AnswerDelays, DelayRule, FaultMix, FaultRule, QuotaWindow, RequestRateLimit, failure, rate_limited
from ._http import EmulatorHTTPServer
from ._oauth import OAuthApp, OAuthServer, OAuthSettings
from ._runtime import Clock, Counters
from ._scopes import DEFAULT_TOKEN_SCOPES
from ._adf import adf_paragraph
from ._site import STATUSES, JiraSite, Project, new_cloud_id
from airflow_provider_jira_auth.client.pacing import forget_pacers

#: a point in time as the seeding methods take it
Moment = Union[datetime, float, str]

#: where the provider's api-server plugin receives Atlassian's redirect ("Connect to Jira" page)
AIRFLOW_CONSENT_CALLBACK_PATH = "/jira-auth/connect/callback"
DEFAULT_GRANT_SCOPES = ("read:jira-work", "write:jira-work", "read:jira-user", "offline_access")
STAT_NAMES = (
    "api_calls",
    "token_refreshes",
    "code_exchanges",
    "reuse_within_leeway",
    "family_revocations",
    "rejected_refreshes",
    "authorizations",
    "auth_failures",
    "scope_rejections",
    "faults_injected",
    "rate_limited",
    "peak_concurrent_calls",  # the most Jira REST calls served at once (a high-water mark, not a count)
)


class JiraCloudEmulator:
    """An offline Jira Cloud for tests.

    Where: ``url`` (= ``site_url``), ``api_url`` (gateway), ``auth_url``, ``cloud_id``; more sites
    with ``add_site``. Who: ``default_user`` (classic API token), ``default_scoped_user``,
    ``default_app`` (OAuth client), ``add_user``, ``add_oauth_app``, ``add_redirect_uri``,
    ``issue_grant``, ``consent``.
    What: project ENG, ``create_project``, ``seed_issues``, ``get_issue``, ``set_status``.
    Misbehaviour: ``fail_next``, ``rate_limit``, ``limit_request_rate`` (a burst limit, Jira's headers
    on every answer), ``exhaust_quota`` (a spent hourly quota), ``set_answer_delays`` (latency), ``delete_issue``,
    ``fail_bulkfetch_of``, ``oauth`` (token lifetimes), ``advance``.
    Observation: ``requests`` (each with the ``delay`` its answer was held back), ``stats``
    (``stats.peak_concurrent_calls``: calls served at once). Airflow: ``connection_json``, ``connection_extra``.
    """

    def __init__(self, port: int = 0, seed: int = 0, *, host: str = "127.0.0.1", verbose: bool = False) -> None:
        self._host = host
        self._port = port
        self._verbose = verbose
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._clock = Clock()
        self._servers: list[EmulatorHTTPServer] = []
        self._site_ports: dict[str, int] = {}
        self.stats = Counters({name: 0 for name in STAT_NAMES})
        self.oauth = OAuthSettings()
        self._accounts = Accounts(self._rng)
        self.default_user = self._accounts.add("ada@example.com", display_name="Ada Lovelace")
        self._oauth_server = OAuthServer(self.oauth, self._now, self.stats)
        self._sites: dict[str, JiraSite] = {}
        self.default_site = self._new_site("emulator")
        self._dispatcher = Dispatcher(
            lock=self._lock,
            clock=self._now,
            counters=self.stats,
            accounts=self._accounts,
            oauth=self._oauth_server,
            sites=self._sites,
            default_site=self.default_site,
            default_user=self.default_user,
        )
        self.default_scoped_user = self.add_user("automation@example.com", scoped=True, display_name="Automation Bot")
        self.default_app = self.add_oauth_app()

    def __repr__(self) -> str:
        where = self.default_site.url or "not started"
        return f"JiraCloudEmulator({where}, cloud_id={self.cloud_id!r})"

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> JiraCloudEmulator:
        with self._lock:
            if self._servers:
                return self
            main = EmulatorHTTPServer(
                self._host, self._port, self._dispatcher.app(self.default_site, main=True), verbose=self._verbose
            )
            self._port = main.port  # a restart keeps the same URL
            self._servers.append(main)
            self._claim(self.default_site, main.port)
            self._dispatcher.api_url = self.default_site.url
            for site in self._sites.values():
                if site is not self.default_site:
                    self._serve(site)
            main.start()
        return self

    def stop(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.stop()

    def __enter__(self) -> JiraCloudEmulator:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _serve(self, site: JiraSite) -> None:
        server = EmulatorHTTPServer(
            self._host,
            self._site_ports.get(site.cloud_id, 0),
            self._dispatcher.app(site, main=False),
            verbose=self._verbose,
        )
        self._site_ports[site.cloud_id] = server.port
        self._claim(site, server.port)
        self._servers.append(server)
        server.start()

    def _claim(self, site: JiraSite, port: int) -> None:
        """Give ``site`` its URL; at an address new to this emulator, clients forget what an
        earlier server there said of its rate limits (a quota pause, a burst limit)."""
        url = f"http://{self._host}:{port}"
        if site.url != url:
            forget_pacers(url)
        site.url = url

    # -- where it is ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The default site's URL (``http://127.0.0.1:PORT``), like ``https://x.atlassian.net``."""
        if not self._servers:
            raise RuntimeError("the emulator is not running: call start() or use it as a context manager")
        return self.default_site.url

    @property
    def site_url(self) -> str:
        return self.url

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections clients have opened to the emulator (all its servers) so far."""
        return sum(server.connections_accepted for server in self._servers)

    @property
    def api_url(self) -> str:
        """The gateway's base URL, like ``https://api.atlassian.com``."""
        return self.url

    @property
    def auth_url(self) -> str:
        """The auth server's base URL, like ``https://auth.atlassian.com``."""
        return self.url

    @property
    def cloud_id(self) -> str:
        return self.default_site.cloud_id

    @property
    def sites(self) -> list[JiraSite]:
        with self._lock:
            return list(self._sites.values())

    # -- time -------------------------------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """A callable returning the emulator's now (seconds); ``advance()`` moves it forward."""
        return self._clock

    @clock.setter
    def clock(self, value: Callable[[], float]) -> None:
        self._clock = value if isinstance(value, Clock) else Clock(value)

    def _now(self) -> float:
        return self._clock()

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward, e.g. past an access token's expiry."""
        with self._lock:
            self._clock.advance(seconds)

    # -- accounts and OAuth --------------------------------------------------------------------------

    def add_user(
        self,
        email: str,
        api_token: str | None = None,
        *,
        scoped: bool = False,
        scopes: Iterable[str] | None = None,
        display_name: str | None = None,
        time_zone: str = "Etc/UTC",
        projects: Iterable[str] | None = None,
    ) -> User:
        """An account with one API token; ``scoped=True`` (or any ``scopes``) makes it a scoped token.

        ``time_zone`` (an IANA name) is the profile's: ``GET /myself`` shows it and JQL dates
        the user writes are read in it. Change ``user.time_zone`` later to move the user.
        ``projects``: the keys of the projects it may browse (default: all); see :meth:`set_browse`.
        """
        scoped = scoped or scopes is not None
        chosen = tuple(scopes) if scopes is not None else (DEFAULT_TOKEN_SCOPES if scoped else ())
        ZoneInfo(time_zone)  # an unknown name fails here, not in a later search
        with self._lock:
            user = self._accounts.add(email, api_token, scoped=scoped, scopes=chosen, display_name=display_name)
            user.time_zone = time_zone
            user.projects = None if projects is None else frozenset(p.upper() for p in projects)
            return user

    def set_browse(self, user: User, projects: Iterable[str] | None) -> None:
        """Let ``user`` browse only ``projects`` (keys; ``None``: every project), as a Jira admin
        changing a permission scheme would: issues of other projects vanish from its searches
        and answer 404 to its reads, with no other sign."""
        with self._lock:
            user.projects = None if projects is None else frozenset(p.upper() for p in projects)

    def add_oauth_app(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uris: Sequence[str] = ("http://127.0.0.1/callback",),
    ) -> OAuthApp:
        """Register an app; ``/authorize`` redirects only to one of its ``redirect_uris``, exactly."""
        with self._lock:
            return self._oauth_server.add_app(client_id, client_secret, tuple(redirect_uris))

    def add_redirect_uri(self, client_id: str, redirect_uri: str) -> OAuthApp:
        """Register one more callback URL on an existing app (e.g. ``airflow_consent_callback(...)``).

        :raises ValueError: for an unknown client id or a value that is not an absolute http(s) URL.
        """
        with self._lock:
            return self._oauth_server.add_redirect_uri(client_id, redirect_uri)

    def issue_grant(
        self, client_id: str, scopes: Iterable[str] = DEFAULT_GRANT_SCOPES, user: User | None = None
    ) -> dict[str, Any]:
        """A consented grant without the browser round trip: the token response of its code exchange."""
        with self._lock:
            return self._oauth_server.new_grant(client_id, tuple(scopes), user or self.default_user)

    def revoke_grant(self, refresh_token_or_client_id: str) -> int:
        """Revoke the grant of a refresh token, or every grant of a client id; returns how many."""
        with self._lock:
            return self._oauth_server.revoke(refresh_token_or_client_id)

    @property
    def consent(self) -> str:
        """What the user answers on the consent screen: ``"approve"`` or ``"deny"``."""
        return self._dispatcher.consent

    @consent.setter
    def consent(self, value: str) -> None:
        if value not in ("approve", "deny"):
            raise ValueError("consent must be 'approve' or 'deny'")
        self._dispatcher.consent = value

    @property
    def consent_user(self) -> User:
        """The user logged in at the consent screen (default: ``default_user``)."""
        return self._dispatcher.consent_user or self.default_user

    @consent_user.setter
    def consent_user(self, user: User | None) -> None:
        self._dispatcher.consent_user = user

    # -- sites, projects, issues ------------------------------------------------------------------------

    def _new_site(self, name: str) -> JiraSite:
        site = JiraSite(name, new_cloud_id(self._rng), self._accounts, self._now)
        site.create_project("ENG", "Engineering")
        self._sites[site.cloud_id] = site
        return site

    def add_site(self, name: str) -> JiraSite:
        """Another Jira site of the same Atlassian organisation, on its own port, with project ENG."""
        with self._lock:
            site = self._new_site(name)
            if self._servers:
                self._serve(site)
            return site

    def create_project(self, key: str, name: str | None = None, *, site: JiraSite | None = None) -> Project:
        with self._lock:
            return (site or self.default_site).create_project(key, name)

    def seed_issues(
        self,
        project: str = "ENG",
        count: int = 10,
        statuses: Iterable[str] | None = None,
        labels: Iterable[str | Sequence[str]] | None = None,
        *,
        site: JiraSite | None = None,
    ) -> list[str]:
        """Create ``count`` issues quickly; returns their keys.

        ``statuses`` and ``labels`` are handed out round-robin, one element per issue (a label
        element may be a list of labels). Defaults: all three statuses in turn; labels
        ``backend``, ``frontend``, ``backend``+``urgent`` and none in turn. A missing project is created.
        """
        with self._lock:
            target = site or self.default_site
            found = target.find_project(project) or target.create_project(project)
            return target.seed(
                found,
                count,
                list(statuses) if statuses is not None else list(STATUSES),
                list(labels) if labels is not None else [("backend",), ("frontend",), ("backend", "urgent"), ()],
                self.default_user,
                self._rng,
            )

    def seed_issue(
        self,
        project: str = "ENG",
        *,
        summary: str | None = None,
        created: Moment | None = None,
        updated: Moment | None = None,
        status: str = "To Do",
        issue_type: str = "Task",
        labels: Sequence[str] = (),
        assignee: User | str | None = None,
        reporter: User | str | None = None,
        custom_fields: dict[str, Any] | None = None,
        site: JiraSite | None = None,
    ) -> str:
        """Create one issue exactly as given; returns its key.

        ``created`` and ``updated`` are aware datetimes, epoch seconds or ISO 8601 strings
        (default: the emulator's clock now; ``updated`` defaults to ``created``).
        ``assignee``/``reporter`` are users (or their account id or email); the reporter
        defaults to ``default_user``. ``custom_fields`` are ``customfield_NNNNN`` values, shown
        with ``*all``/``*navigable`` or when asked for by id. A missing project is created.
        """
        with self._lock:
            target = site or self.default_site
            found = target.find_project(project) or target.create_project(project)
            made = _epoch(created, "created") if created is not None else self._now()
            return target.seed_one(
                found,
                summary=summary,
                status=status,
                issue_type=issue_type,
                labels=list(labels),
                assignee=self._user(assignee, "assignee"),
                reporter=self._user(reporter, "reporter") if reporter is not None else self.default_user,
                custom_fields=dict(custom_fields or {}),
                created=made,
                updated=_epoch(updated, "updated") if updated is not None else made,
            ).key

    def edit_issue(
        self,
        key: str,
        fields: dict[str, Any] | None = None,
        *,
        status: str | None = None,
        at: Moment | None = None,
        site: JiraSite | None = None,
    ) -> None:
        """Change an issue as a user would have at ``at`` (default: the clock now): ``updated`` becomes ``at``.

        ``fields`` sets values as they are (``summary``, ``labels``, ``description``, ``priority``,
        ``assignee``/``reporter`` as a user, account id or email, or ``customfield_*``);
        ``status`` moves it directly, bypassing the workflow. Nothing at all: a touch.
        """
        with self._lock:
            target = site or self.default_site
            issue = target.find_issue(key)
            if issue is None:
                raise KeyError(f"no issue {key} on site {target.name}")
            changes = dict(fields or {})
            for role in ("assignee", "reporter"):
                if role in changes:
                    user = self._user(changes[role], role)
                    changes[role] = user.to_json() if user else None
            target.edit_at(issue, changes, status, _epoch(at, "at") if at is not None else self._now())

    def bulk_edit(
        self,
        keys: Iterable[str],
        fields: dict[str, Any] | None = None,
        *,
        status: str | None = None,
        at: Moment | None = None,
        site: JiraSite | None = None,
    ) -> None:
        """Change many issues in one instant, as a bulk change in Jira's UI does (a sprint closed,
        hundreds of issues moved): every one gets the same ``updated``. Arguments as :meth:`edit_issue`."""
        with self._lock:
            target = site or self.default_site
            moment = _epoch(at, "at") if at is not None else self._now()
            found = []
            for key in keys:
                issue = target.find_issue(key)
                if issue is None:
                    raise KeyError(f"no issue {key} on site {target.name}")
                found.append(issue)
            changes = dict(fields or {})
            for role in ("assignee", "reporter"):
                if role in changes:
                    user = self._user(changes[role], role)
                    changes[role] = user.to_json() if user else None
            for issue in found:
                target.edit_at(issue, changes, status, moment)

    @property
    def search_index_lag(self) -> float:
        """Seconds (on the emulator's clock) between a write and the moment search shows it.

        Jira's search is eventually consistent: with a lag, an issue just created or edited is
        missing from ``search/jql`` and ``approximate-count`` (on every site) until the lag has
        passed, unless the search names it in ``reconcileIssues``. ``GET issue/{key}`` and the
        other reads by id always show the latest write. Default 0: search shows writes at once.
        """
        return self.default_site.search_index_lag

    @search_index_lag.setter
    def search_index_lag(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("search_index_lag must be >= 0 seconds")
        with self._lock:
            for site in self.sites:
                site.search_index_lag = float(seconds)

    def _user(self, value: User | str | None, role: str) -> User | None:
        if value is None or isinstance(value, User):
            return value
        found = self._accounts.find(value)
        if found is None:
            raise ValueError(f"{role}: no account with id, email or name {value!r}; add it with add_user()")
        return found

    def get_issue(self, key: str, *, site: JiraSite | None = None) -> dict[str, Any]:
        """A deep copy of the stored issue as Jira shows it with ``fields=*all``."""
        with self._lock:
            target = site or self.default_site
            issue = target.find_issue(key)
            if issue is None:
                raise KeyError(f"no issue {key} on site {target.name}")
            return target.snapshot(issue)

    def issue_keys(self, project: str | None = None, *, site: JiraSite | None = None) -> list[str]:
        """Keys of the stored issues in creation order, optionally of one project."""
        with self._lock:
            target = site or self.default_site
            return [i.key for i in target.ordered if project is None or i.project == project.upper()]

    def delete_issue(self, key: str, *, site: JiraSite | None = None) -> None:
        """Delete an issue: gone from lookups, bulkfetch and new searches (a search already paging
        keeps the result it started with)."""
        with self._lock:
            target = site or self.default_site
            issue = target.find_issue(key)
            if issue is None:
                raise KeyError(f"no issue {key} on site {target.name}")
            target.delete_issue(issue)

    def fail_bulkfetch_of(self, key: str, *, times: int = 1, site: JiraSite | None = None) -> None:
        """The next ``times`` bulkfetch answers that ask for this issue list it in ``issueErrors``
        (Jira's "could not be retrieved, try again") instead of returning it."""
        with self._lock:
            target = site or self.default_site
            issue = target.find_issue(key)
            if issue is None:
                raise KeyError(f"no issue {key} on site {target.name}")
            target.bulkfetch_errors[issue.id] = target.bulkfetch_errors.get(issue.id, 0) + times

    def _issue(self, key: str, site: JiraSite | None) -> tuple[JiraSite, Any]:
        target = site or self.default_site
        issue = target.find_issue(key)
        if issue is None:
            raise KeyError(f"no issue {key} on site {target.name}")
        return target, issue

    def add_comments(
        self,
        key: str,
        count: int | None = None,
        *,
        bodies: Iterable[Any] | None = None,
        author: User | None = None,
        site: JiraSite | None = None,
    ) -> list[str]:
        """Comment on an issue ``count`` times (bodies ``Comment 1``...) or once per element of
        ``bodies`` (plain text or ADF); returns the new comment ids, oldest first.

        The issue's ``comment`` field embeds only a first page of them (``site.embedded_comment_limit``,
        20 by default); ``GET issue/{key}/comment`` pages through all of them, 100 a page.
        """
        if (count is None) == (bodies is None):
            raise ValueError("add_comments needs count or bodies, not both")
        texts = list(bodies) if bodies is not None else [f"Comment {n}" for n in range(1, (count or 0) + 1)]
        with self._lock:
            target, issue = self._issue(key, site)
            ids = []
            for body in texts:
                adf = adf_paragraph(body) if isinstance(body, str) else body
                ids.append(target.add_comment(issue, adf, author or self.default_user, reindex=False)["id"])
            issue.reindex()
            return ids

    def add_changelog(
        self,
        key: str,
        count: int | None = None,
        *,
        entries: Iterable[list[dict[str, Any]]] | None = None,
        author: User | None = None,
        site: JiraSite | None = None,
    ) -> list[str]:
        """Add history to an issue: ``count`` entries (each a change of the ``labels`` field, one
        second apart, ending now) or one entry per element of ``entries`` (its list of change items,
        ``{"field", "fieldtype", "from", "fromString", "to", "toString"}``); returns their ids.

        Searches with ``expand=changelog`` embed at most 40 entries, ``GET issue`` at most 100;
        ``GET issue/{key}/changelog`` and ``POST changelog/bulkfetch`` page through all of them.
        """
        if (count is None) == (entries is None):
            raise ValueError("add_changelog needs count or entries, not both")
        if entries is None:
            items = [
                [{"field": "labels", "fieldtype": "jira", "fieldId": "labels", "from": None,
                  "fromString": f"step-{n - 1}" if n > 1 else "", "to": None, "toString": f"step-{n}"}]
                for n in range(1, (count or 0) + 1)
            ]
        else:
            items = [list(entry) for entry in entries]
        with self._lock:
            target, issue = self._issue(key, site)
            now = self._now()
            return [
                target.add_history(issue, change, author or self.default_user, at=now - (len(items) - n))["id"]
                for n, change in enumerate(items, start=1)
            ]

    def set_status(self, key: str, status_name: str, *, site: JiraSite | None = None) -> None:
        """Put an issue in a status directly, bypassing the workflow's transitions."""
        with self._lock:
            target = site or self.default_site
            issue = target.find_issue(key)
            if issue is None:
                raise KeyError(f"no issue {key} on site {target.name}")
            target.set_status(issue, status_name)

    def add_transition(
        self, from_status: str, name: str, to_status: str, *, transition_id: str | None = None, site: JiraSite | None = None
    ) -> str:
        """Add a transition to the workflow: offered from ``from_status``, leading to ``to_status``.

        The same status both ways makes a self-loop, as workflows use for "Update" or "Log work".
        Returns the transition's id.
        """
        with self._lock:
            return (site or self.default_site).add_transition(from_status, name, to_status, transition_id)

    # -- faults and observation ---------------------------------------------------------------------------

    def fail_next(
        self,
        method: str | None,
        path_regex: str | re.Pattern[str],
        *,
        status: int = 503,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        drop: bool = False,
        after_work: bool = False,
    ) -> None:
        """The next ``times`` calls matching method (None or "*": any) and path regex (searched) fail.

        ``body``: None gives a Jira-style JSON error, a str is sent as an HTML page (like a proxy's),
        a dict or list as JSON. ``drop=True`` closes the connection without any answer.
        ``after_work=True``: the call is carried out first (an issue is created...), then its
        answer is replaced by the failure, as when a proxy or the network loses Jira's answer.
        """
        with self._lock:
            self._dispatcher.faults.add(
                FaultRule(
                    _method(method), re.compile(path_regex), times, failure(status, headers, body, drop),
                    after_work=after_work,
                )
            )

    def inject_fault_mix(
        self,
        *,
        server_errors: float = 0.0,
        dropped: float = 0.0,
        after_work: float = 0.5,
        seed: int = 0,
        methods: Iterable[str] | None = None,
    ) -> None:
        """From now on, a random share of Jira REST calls fails: ``server_errors`` answered 503,
        ``dropped`` with the connection closed; ``after_work`` of those after the call was carried
        out. Seeded, so a test sees the same sequence each run. ``clear_fault_mix()`` stops it."""
        with self._lock:
            chosen = tuple(m.upper() for m in methods) if methods is not None else None
            self._dispatcher.fault_mix = FaultMix(server_errors, dropped, after_work, seed, chosen)

    def clear_fault_mix(self) -> None:
        with self._lock:
            self._dispatcher.fault_mix = None

    def limit_request_rate(self, per_second: float | None, *, reason: str = "jira-burst-based") -> None:
        """At most ``per_second`` Jira REST calls a second, 429 with Jira's headers beyond; None lifts it."""
        with self._lock:
            self._dispatcher.rate_limit = RequestRateLimit(per_second, reason) if per_second else None

    def exhaust_quota(
        self, seconds: float, *, reason: str = "jira-quota-global-based", limit: int = 65000
    ) -> float:
        """The app's hourly quota is spent for the next ``seconds``: every Jira REST call is answered
        429 with ``reason`` (``jira-quota-global-based`` or ``jira-quota-tenant-based``), its
        ``Retry-After`` and ``X-RateLimit-Reset`` pointing at the reset. Returns the reset time
        (the emulator's clock)."""
        with self._lock:
            until = self._now() + seconds
            self._dispatcher.quota = QuotaWindow(until, reason, limit)
            return until

    def delay_next(self, method: str | None, path_regex: str | re.Pattern[str], seconds: float, *, times: int = 1) -> None:
        """Answer the next ``times`` matching calls ``seconds`` late; the work itself is done at once.

        Models a slow network after Atlassian acted, e.g. a refresh that rotated the token while
        its answer is still on the way (the window a crash must survive).
        """
        with self._lock:
            self._dispatcher.delays.add(DelayRule(_method(method), re.compile(path_regex), times, seconds))

    @property
    def sleep(self) -> Callable[[float], Any]:
        """How a late answer waits out its delay (``delay_next``, answer delays), outside the
        emulator's lock: ``time.sleep`` unless a test sets another, e.g. one that holds answers
        until a condition. Each request records the delay it was given (``requests[i].delay``)."""
        return self._dispatcher.sleep

    @sleep.setter
    def sleep(self, value: Callable[[float], Any]) -> None:
        self._dispatcher.sleep = value

    @property
    def answer_delays(self) -> AnswerDelays:
        """How late every Jira REST answer comes (see :meth:`set_answer_delays`)."""
        return self._dispatcher.answer_delays

    def set_answer_delays(self, per_call: float = 0.0, per_issue: float = 0.0, *, per_id: float = 0.0) -> None:
        """Answer every Jira REST call like the real service: ``per_call`` seconds late, plus
        ``per_issue`` for each issue the answer carries with fields (a search page, a bulkfetch,
        an issue), plus ``per_id`` for each issue listed by id or key only. Jira Cloud answers a
        100-issue search page in a few hundred milliseconds: ``set_answer_delays(0.15, 0.002)``.
        The work is done at once; only the answer waits, outside the emulator's lock, so calls
        sent in parallel wait in parallel. All zero (the default) turns it off."""
        with self._lock:
            self._dispatcher.answer_delays = AnswerDelays(per_call, per_issue, per_id)

    def rate_limit(
        self,
        method: str | None = None,
        path_regex: str | re.Pattern[str] | None = None,
        *,
        times: int = 1,
        retry_after: str | float | None = "1",
        reason: str = "jira-burst-based",
    ) -> None:
        """The next ``times`` matching calls get a 429 like Jira's (no path: any REST API call).

        ``retry_after=None`` omits the Retry-After header, as a gateway once did.
        """
        upper = _method(method)
        after = None if retry_after is None else str(retry_after)
        pattern = re.compile(path_regex) if path_regex is not None else None
        with self._lock:
            self._dispatcher.faults.add(
                FaultRule(upper, pattern, times, rate_limited(upper, after, reason), counter="rate_limited")
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._dispatcher.faults.clear()
            self._dispatcher.delays.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far (oldest first; a copy)."""
        with self._lock:
            return list(self._dispatcher.requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._dispatcher.requests.clear()

    def reset_stats(self) -> None:
        with self._lock:
            for name in self.stats:
                self.stats[name] = 0

    # -- Airflow connections ----------------------------------------------------------------------------

    def connection_extra(self, auth_type: str = "basic", **overrides: Any) -> dict[str, Any]:
        """The ``extra`` of a ``jira_cloud`` connection to this emulator.

        ``"basic"``: classic API token at the site URL. ``"scoped"``: a scoped API token, still
        ``auth_type`` basic, with ``cloud_id`` so that calls go through the gateway. ``"oauth2"``:
        3LO with the default app and a fresh grant's refresh token unless overridden.
        """
        if auth_type == "basic":
            extra: dict[str, Any] = {"auth_type": "basic"}
        elif auth_type == "scoped":
            extra = {
                "auth_type": "basic",
                "cloud_id": self.cloud_id,
                "auth_url": self.auth_url,
                "api_url": self.api_url,
            }
        elif auth_type == "oauth2":
            client_id = overrides.get("client_id") or self.default_app.client_id
            app = self._oauth_server.apps.get(client_id)
            refresh_token = overrides.get("refresh_token") or self.issue_grant(client_id)["refresh_token"]
            extra = {
                "auth_type": "oauth2",
                "client_id": client_id,
                "client_secret": app.client_secret if app else "",
                "refresh_token": refresh_token,
                "cloud_id": self.cloud_id,
                "auth_url": self.auth_url,
                "api_url": self.api_url,
            }
        else:
            raise ValueError("auth_type must be 'basic', 'scoped' or 'oauth2'")
        extra.update(overrides)
        return extra

    def connection_json(
        self,
        auth_type: str = "basic",
        user: User | None = None,
        app: OAuthApp | None = None,
        refresh_token: str | None = None,
        **extra_overrides: Any,
    ) -> str:
        """JSON for ``AIRFLOW_CONN_<ID>``: a ``jira_cloud`` connection to this emulator."""
        connection: dict[str, Any] = {"conn_type": "jira_cloud", "host": self.url}
        if auth_type == "oauth2":
            chosen_app = app or self.default_app
            extra_overrides.setdefault("client_id", chosen_app.client_id)
            extra_overrides.setdefault("client_secret", chosen_app.client_secret)
            if refresh_token:
                extra_overrides["refresh_token"] = refresh_token
        else:
            chosen = user or (self.default_scoped_user if auth_type == "scoped" else self.default_user)
            connection.update(login=chosen.email, password=chosen.api_token)
        connection["extra"] = self.connection_extra(auth_type, **extra_overrides)
        return json.dumps(connection)


def _epoch(value: Moment, name: str) -> float:
    """An aware datetime, epoch seconds or an ISO 8601 string with an offset, as epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime, epoch seconds or ISO 8601 with an offset, not {value!r}")
    return moment.timestamp()


def airflow_consent_callback(airflow_url: str) -> str:
    """The callback URL of the "Connect to Jira" page of the Airflow api-server at ``airflow_url``.

    ``airflow_url`` is the api-server's base URL as the browser reaches it, e.g.
    ``http://localhost:8080`` (with its path prefix, if it is served under one).
    """
    return airflow_url.rstrip("/") + AIRFLOW_CONSENT_CALLBACK_PATH


def _method(method: str | None) -> str | None:
    return None if method in (None, "", "*") else method.upper()
