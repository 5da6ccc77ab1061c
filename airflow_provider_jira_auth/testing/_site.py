"""One Jira Cloud site's data and rules: projects, issues, the workflow, field validation."""

from __future__ import annotations

import copy
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import cycle
from typing import Any

from ._accounts import Accounts, User
from ._adf import adf_paragraph, adf_problem, adf_text
from ._jql import JqlEnv
from ._runtime import jira_time

# -- the workflow: To Do -> In Progress -> Done ----------------------------------------------------

CATEGORIES: dict[str, dict[str, Any]] = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
STATUSES: dict[str, dict[str, Any]] = {
    name: {"description": "", "name": name, "id": status_id, "statusCategory": CATEGORIES[category]}
    for name, status_id, category in (
        ("To Do", "10000", "new"),
        ("In Progress", "3", "indeterminate"),
        ("Done", "10001", "done"),
    )
}
# Transition ids and names differ from status ids and names, as in real workflows: users think
# in names, the API wants transition ids, and which transitions exist depends on the status.
TRANSITIONS: dict[str, list[tuple[str, str, str]]] = {  # status -> [(transition id, name, target status)]
    "To Do": [("21", "Start Progress", "In Progress"), ("31", "Done", "Done")],
    "In Progress": [("11", "Stop Progress", "To Do"), ("31", "Done", "Done")],
    "Done": [("41", "Reopen", "To Do")],
}
ISSUE_TYPES: list[dict[str, Any]] = [
    {"id": "10001", "name": "Task", "subtask": False, "hierarchyLevel": 0},
    {"id": "10002", "name": "Bug", "subtask": False, "hierarchyLevel": 0},
    {"id": "10003", "name": "Story", "subtask": False, "hierarchyLevel": 0},
    {"id": "10000", "name": "Epic", "subtask": False, "hierarchyLevel": 1},
]
PRIORITIES: list[dict[str, Any]] = [
    {"id": str(n), "name": name} for n, name in enumerate(("Highest", "High", "Medium", "Low", "Lowest"), start=1)
]
RESOLUTION_DONE = {"id": "10000", "name": "Done", "description": "Work has been completed on this issue."}

# What Jira embeds of an issue's history: search/jql with expand=changelog holds at most 40
# histories (Atlassian's migration notes for the enhanced search), GET issue at most 100; the
# comment field at most a first page (the rest is read with GET issue/{key}/comment, 100 a page).
SEARCH_CHANGELOG_LIMIT = 40
ISSUE_CHANGELOG_LIMIT = 100
EMBEDDED_COMMENT_LIMIT = 20
COMMENT_PAGE_LIMIT = 100
CHANGELOG_PAGE_LIMIT = 100

# Field order of an issue's "fields"; "comment" is built when asked for (it holds URLs).
ALL_FIELDS = (
    "summary",
    "status",
    "labels",
    "issuetype",
    "project",
    "description",
    "priority",
    "assignee",
    "reporter",
    "creator",
    "resolution",
    "resolutiondate",
    "created",
    "updated",
    "comment",
)
NAVIGABLE_FIELDS = tuple(f for f in ALL_FIELDS if f != "comment")

_CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
_CUSTOM_FIELD = re.compile(r"^customfield_\d+$")
_EDITABLE = ("summary", "labels", "description", "priority", "assignee", "reporter")
_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")
_SEED_VERBS = ("Fix", "Add", "Improve", "Refactor", "Document", "Investigate", "Remove", "Update")
_SEED_NOUNS = (
    "login page",
    "search index",
    "billing export",
    "API client",
    "nightly DAG",
    "token refresh",
    "dashboard",
    "webhook handler",
    "data pipeline",
    "release notes",
)
_SEED_DESCRIPTION = adf_paragraph("Created by the Jira Cloud emulator's seed_issues().")
_SEED_LABELS: tuple[tuple[str, ...], ...] = (("backend",), ("frontend",), ("backend", "urgent"), ())


def _by_name_or_id(items: list[dict[str, Any]], value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        value = value.get("id") or value.get("name")
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    return next((i for i in items if i["id"] == value or i["name"].lower() == lowered), None)


@dataclass
class Project:
    id: int
    key: str
    name: str
    next_number: int = 1

    def ref(self) -> dict[str, Any]:
        """The project as an issue's ``project`` field shows it."""
        return {
            "id": str(self.id),
            "key": self.key,
            "name": self.name,
            "projectTypeKey": "software",
            "simplified": False,
        }


class Issue:
    """A stored issue: its Jira-shaped ``fields`` plus lower-cased copies JQL reads (see _jql)."""

    __slots__ = (
        "id",
        "key",
        "num",
        "project",
        "fields",
        "comments",
        "changelog",
        "created",
        "updated",
        "status_lc",
        "category",
        "labels_lc",
        "summary_lc",
        "description_lc",
        "comment_lc",
        "text_lc",
        "issuetype_lc",
        "priority_lc",
        "priority_rank",
        "assignee",
        "reporter",
        "resolution_lc",
        "written",
    )

    def __init__(self, issue_id: int, project: str, num: int, fields: dict[str, Any], created: float) -> None:
        self.id = issue_id
        self.project = project
        self.num = num
        self.key = f"{project}-{num}"
        self.fields = fields
        self.comments: list[dict[str, Any]] = []
        # (epoch, entry) oldest first: Jira's changelog of the issue, as GET issue/{key}/changelog pages it
        self.changelog: list[tuple[float, dict[str, Any]]] = []
        self.created = self.updated = created
        # when the last write reached the site (its clock): the search index shows the issue
        # only once the site's search_index_lag has passed since (see JiraSite.searchable)
        self.written = created
        self.reindex()

    def reindex(self) -> None:
        f = self.fields
        status = f["status"]
        self.status_lc = status["name"].lower()
        self.category = status["statusCategory"]["key"]
        self.labels_lc = frozenset(label.lower() for label in f["labels"])
        self.summary_lc = f["summary"].lower()
        self.description_lc = adf_text(f["description"]).lower()
        self.comment_lc = " ".join(adf_text(c["body"]) for c in self.comments).lower()
        self.text_lc = " ".join((self.summary_lc, self.description_lc, self.comment_lc))
        self.issuetype_lc = f["issuetype"]["name"].lower()
        priority = f["priority"]
        self.priority_lc = priority["name"].lower() if priority else None
        self.priority_rank = int(priority["id"]) if priority else 99
        self.assignee = f["assignee"]["accountId"] if f["assignee"] else None
        self.reporter = f["reporter"]["accountId"] if f["reporter"] else None
        self.resolution_lc = f["resolution"]["name"].lower() if f["resolution"] else None


@dataclass
class FieldSelection:
    """Which fields a response shows: ``fields=summary,-labels,*navigable``..."""

    names: tuple[str, ...]
    id_key_only: bool
    #: custom fields (``customfield_*``) too: ``*all`` and ``*navigable`` show them
    custom: bool = False

    @classmethod
    def parse(cls, raw: Any, default: Sequence[str]) -> FieldSelection:
        if isinstance(raw, str):
            raw = [raw]
        tokens = [t.strip() for item in (raw or ()) for t in str(item).split(",") if t.strip()] or list(default)
        includes = [t for t in tokens if not t.startswith("-") and not t.startswith("*")]
        excludes = {t[1:] for t in tokens if t.startswith("-")}
        if "*all" in tokens:
            base: list[str] = list(ALL_FIELDS)
        elif "*navigable" in tokens or not includes:
            base = list(NAVIGABLE_FIELDS)
        else:
            base = []
        names = [n for n in dict.fromkeys(base + includes) if n not in excludes and n not in ("id", "key")]
        id_key_only = not base and set(includes) <= {"id", "key"}
        custom = bool(base) and not any(t.startswith("customfield_") for t in excludes)
        return cls(tuple(names), id_key_only, custom)


class JiraSite:
    """A Jira Cloud site (``https://<name>.atlassian.net``): its projects and issues."""

    def __init__(self, name: str, cloud_id: str, accounts: Accounts, clock: Callable[[], float]) -> None:
        self.name = name
        self.cloud_id = cloud_id
        self.url = ""  # set when its server starts
        self._accounts = accounts
        self._clock = clock
        self.projects: dict[str, Project] = {}
        self.issues: dict[str, Issue] = {}
        self.by_id: dict[int, Issue] = {}
        self.ordered: list[Issue] = []  # creation order
        self.search_cache: OrderedDict[str, Any] = OrderedDict()  # paging-token id -> cached result
        # issue id -> how many more bulkfetch answers list it in issueErrors instead of returning it
        self.bulkfetch_errors: dict[int, int] = {}
        self._next_issue_id = 10001
        self._next_project_id = 10000
        self._next_comment_id = 10000
        # comment id -> (its issue, its entity properties): comments are found by id alone
        # (POST comment/list), and their properties are shown only when asked for.
        self._comments: dict[str, tuple[Issue, list[dict[str, Any]]]] = {}
        self._next_history_id = 10000
        #: seconds between a write and the moment the search index shows the issue (Jira's search
        #: is eventually consistent): a created or edited issue is missing from ``search/jql`` and
        #: ``approximate-count`` until then, unless the search names it in ``reconcileIssues``
        self.search_index_lag = 0.0
        # How many comments an issue's "comment" field embeds (tests may lower or raise it).
        self.embedded_comment_limit = EMBEDDED_COMMENT_LIMIT
        #: most comments ``GET issue/{key}/comment`` answers a page (Jira Cloud: 100); lower it to
        #: test a client that must follow the page sizes Jira actually sends
        self.comment_page_limit = COMMENT_PAGE_LIMIT
        # status -> [(transition id, name, target status)]; a copy, so a test may change its site's
        self.workflow: dict[str, list[tuple[str, str, str]]] = {s: list(t) for s, t in TRANSITIONS.items()}

    def __repr__(self) -> str:
        return f"JiraSite(name={self.name!r}, url={self.url!r}, cloud_id={self.cloud_id!r})"

    # -- projects ---------------------------------------------------------------------------------

    def create_project(self, key: str, name: str | None = None) -> Project:
        if not _PROJECT_KEY.match(key):
            raise ValueError(f"project key {key!r}: use 2-10 upper-case letters, digits or _, starting with a letter")
        if key in self.projects:
            raise ValueError(f"project {key} already exists")
        project = Project(self._next_project_id, key, name or key.title())
        self._next_project_id += 1
        self.projects[key] = project
        return project

    def find_project(self, value: Any) -> Project | None:
        """By key, id or name, as Jira accepts them."""
        if isinstance(value, dict):
            value = value.get("key") or value.get("id")
        if not isinstance(value, (str, int)):
            return None
        text = str(value)
        if text.upper() in self.projects:
            return self.projects[text.upper()]
        lowered = text.lower()
        return next((p for p in self.projects.values() if str(p.id) == text or p.name.lower() == lowered), None)

    def project_json(self, project: Project, base: str) -> dict[str, Any]:
        return {
            "self": f"{base}/rest/api/3/project/{project.id}",
            **project.ref(),
            "description": "",
            "style": "classic",
            "isPrivate": False,
            "issueTypes": ISSUE_TYPES,
        }

    # -- issues -----------------------------------------------------------------------------------

    def find_issue(self, id_or_key: str) -> Issue | None:
        if id_or_key.isdigit():
            return self.by_id.get(int(id_or_key))
        return self.issues.get(id_or_key.upper())

    def searchable(self, issue: Issue, reconciled: frozenset[int] = frozenset()) -> bool:
        """Whether the search index shows ``issue`` now (see ``search_index_lag``)."""
        return issue.id in reconciled or issue.written <= self._clock() - self.search_index_lag

    def _store(self, project: Project, fields: dict[str, Any], created: float) -> Issue:
        # The account that created the issue; unlike the reporter, nobody can change it.
        fields.setdefault("creator", fields.get("reporter"))
        issue = Issue(self._next_issue_id, project.key, project.next_number, fields, created)
        self._next_issue_id += 1
        project.next_number += 1
        issue.written = self._clock()
        self.issues[issue.key] = issue
        self.by_id[issue.id] = issue
        self.ordered.append(issue)
        return issue

    def delete_issue(self, issue: Issue) -> None:
        """Gone from lookups and new searches; a search already paging keeps its result (as cached)."""
        del self.issues[issue.key]
        del self.by_id[issue.id]
        self.ordered.remove(issue)
        self.bulkfetch_errors.pop(issue.id, None)
        for comment in issue.comments:
            self._comments.pop(comment["id"], None)

    def take_bulkfetch_error(self, issue: Issue) -> bool:
        """Whether this bulkfetch answer reports ``issue`` in ``issueErrors`` (one of its remaining times)."""
        left = self.bulkfetch_errors.get(issue.id, 0)
        if left <= 0:
            return False
        if left == 1:
            del self.bulkfetch_errors[issue.id]
        else:
            self.bulkfetch_errors[issue.id] = left - 1
        return True

    def issue_json(
        self,
        issue: Issue,
        selection: FieldSelection,
        base: str,
        *,
        expand: Iterable[str] = (),
        changelog_limit: int = ISSUE_CHANGELOG_LIMIT,
        comment_limit: int | None = None,
    ) -> dict[str, Any]:
        """The issue as Jira shows it; ``expand`` may ask for ``changelog`` (at most
        ``changelog_limit`` histories embedded) and ``transitions``. The ``comment`` field holds a
        first page of ``comment_limit`` comments (default: the site's embedded limit)."""
        fields = issue.fields
        shown = {name: fields[name] for name in selection.names if name in fields}
        if selection.custom:
            shown.update((name, value) for name, value in fields.items() if name.startswith("customfield_"))
        if "comment" in selection.names:
            limit = self.embedded_comment_limit if comment_limit is None else comment_limit
            shown["comment"] = self.comment_page(issue, base, 0, limit)
        answer: dict[str, Any] = {
            "id": str(issue.id), "key": issue.key, "self": f"{base}/rest/api/3/issue/{issue.id}", "fields": shown,
        }
        if "changelog" in expand:
            histories = [entry for _at, entry in issue.changelog[:changelog_limit]]
            answer["changelog"] = {
                "startAt": 0, "maxResults": len(histories), "total": len(issue.changelog), "histories": histories,
            }
        if "transitions" in expand:
            answer["transitions"] = self.transitions(issue)
        return answer

    def snapshot(self, issue: Issue) -> dict[str, Any]:
        """A deep copy of the whole issue, for test assertions."""
        whole = self.issue_json(issue, FieldSelection(ALL_FIELDS, False, True), self.url, comment_limit=len(issue.comments))
        whole["changelog"] = {"histories": [entry for _at, entry in issue.changelog], "total": len(issue.changelog)}
        return copy.deepcopy(whole)

    def seed(
        self,
        project: Project,
        count: int,
        statuses: Iterable[str],
        labels: Iterable[str | Sequence[str]],
        reporter: User,
        rng: Any,
    ) -> list[str]:
        status_list = [self.status(s) for s in statuses]
        if not status_list:
            raise ValueError("statuses must name at least one status")
        status_cycle = cycle(status_list)
        label_cycle = cycle([(lbl,) if isinstance(lbl, str) else tuple(lbl) for lbl in labels] or [()])
        # Shared read-only parts: edits replace field values, they never mutate them in place.
        issuetype, priority, project_ref, person = ISSUE_TYPES[0], PRIORITIES[2], project.ref(), reporter.to_json()
        now = self._clock()
        keys = []
        for n in range(count):
            status = next(status_cycle)
            created = jira_time(now - (count - n) * 60)
            done = status["statusCategory"]["key"] == "done"
            fields = {
                "summary": f"{rng.choice(_SEED_VERBS)} {rng.choice(_SEED_NOUNS)} #{project.next_number}",
                "status": status,
                "labels": list(next(label_cycle)),
                "issuetype": issuetype,
                "project": project_ref,
                "description": _SEED_DESCRIPTION,
                "priority": priority,
                "assignee": None,
                "reporter": person,
                "resolution": RESOLUTION_DONE if done else None,
                "resolutiondate": created if done else None,
                "created": created,
                "updated": created,
            }
            keys.append(self._store(project, fields, now - (count - n) * 60).key)
        return keys

    def seed_one(
        self,
        project: Project,
        *,
        summary: str | None,
        status: str,
        issue_type: str,
        labels: Sequence[str],
        assignee: User | None,
        reporter: User | None,
        custom_fields: dict[str, Any],
        created: float,
        updated: float,
    ) -> Issue:
        """One issue with every field given, as it would be after its last edit at ``updated``."""
        if updated < created:
            raise ValueError("updated must not be before created")
        found_type = _by_name_or_id(ISSUE_TYPES, issue_type)
        if found_type is None:
            raise ValueError(f"unknown issue type {issue_type!r}; the site has {', '.join(t['name'] for t in ISSUE_TYPES)}")
        bad = [name for name in custom_fields if not _CUSTOM_FIELD.match(name)]
        if bad:
            raise ValueError(f"custom field ids look like customfield_10010, not {', '.join(map(repr, bad))}")
        state = self.status(status)
        done = state["statusCategory"]["key"] == "done"
        fields = {
            "summary": summary or f"Seeded issue #{project.next_number}",
            "status": state,
            "labels": list(labels),
            "issuetype": found_type,
            "project": project.ref(),
            "description": _SEED_DESCRIPTION,
            "priority": PRIORITIES[2],
            "assignee": assignee.to_json() if assignee else None,
            "reporter": reporter.to_json() if reporter else None,
            "resolution": RESOLUTION_DONE if done else None,
            "resolutiondate": jira_time(updated) if done else None,
            "created": jira_time(created),
            "updated": jira_time(updated),
            **copy.deepcopy(custom_fields),
        }
        issue = self._store(project, fields, created)
        self._touch(issue, updated)
        return issue

    def edit_at(self, issue: Issue, changes: dict[str, Any], status: str | None, at: float) -> None:
        """Set field values as they are (no validation) and/or the status, as an edit at ``at``."""
        bad = [name for name in changes if name not in _EDITABLE and not _CUSTOM_FIELD.match(name)]
        if bad:
            raise ValueError(f"cannot edit {', '.join(map(repr, bad))}: edit {', '.join(_EDITABLE)} or customfield_*")
        issue.fields.update(copy.deepcopy(changes))
        if status is not None:
            state = self.status(status)
            done = state["statusCategory"]["key"] == "done"
            issue.fields["status"] = state
            issue.fields["resolution"] = RESOLUTION_DONE if done else None
            issue.fields["resolutiondate"] = jira_time(at) if done else None
        self._touch(issue, at)

    def status(self, name: str) -> dict[str, Any]:
        found = _by_name_or_id(list(STATUSES.values()), name)
        if found is None:
            raise ValueError(f"unknown status {name!r}; the workflow has {', '.join(STATUSES)}")
        return found

    def set_status(self, issue: Issue, name: str) -> None:
        status = self.status(name)
        now = self._clock()
        done = status["statusCategory"]["key"] == "done"
        issue.fields["status"] = status
        issue.fields["resolution"] = RESOLUTION_DONE if done else None
        issue.fields["resolutiondate"] = jira_time(now) if done else None
        self._touch(issue, now)

    def _touch(self, issue: Issue, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        issue.updated = now
        issue.fields["updated"] = jira_time(now)
        issue.written = self._clock()
        issue.reindex()

    # -- create and edit (Jira's validation, Jira's messages) ---------------------------------------

    def create_issue(self, payload: Any, reporter: User | None) -> tuple[Issue | None, dict[str, str]]:
        """Create from a REST payload; returns (issue, {}) or (None, errors by field)."""
        if not isinstance(payload, dict):
            return None, {"issueUpdates": "Each element must be an object with fields"}
        fields = payload.get("fields") or {}
        update = payload.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            return None, {"fields": "fields and update must be objects"}
        errors: dict[str, str] = {}
        project = self.find_project(fields.get("project"))
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        issuetype = fields.get("issuetype")
        if issuetype is None:
            errors["issuetype"] = "Specify an issue type"
        elif _by_name_or_id(ISSUE_TYPES, issuetype) is None:
            errors["issuetype"] = "The issue type selected is invalid."
        if not fields.get("summary") and "summary" not in update:
            errors["summary"] = "You must specify a summary of the issue."
        rest = {k: v for k, v in fields.items() if k not in ("project", "issuetype")}
        changes, comments, more_errors = self._plan(rest, update, current_labels=[], creating=True)
        errors.update({k: v for k, v in more_errors.items() if k not in errors})
        if errors:
            return None, errors
        assert project is not None
        now = self._clock()
        stamp = jira_time(now)
        reporter_json = changes.pop("reporter", reporter.to_json() if reporter else None)
        new_fields = {
            "summary": "",
            "status": STATUSES["To Do"],
            "labels": [],
            "issuetype": _by_name_or_id(ISSUE_TYPES, issuetype),
            "project": project.ref(),
            "description": None,
            "priority": PRIORITIES[2],
            "assignee": None,
            "reporter": reporter_json,
            "creator": reporter.to_json() if reporter else None,
            "resolution": None,
            "resolutiondate": None,
            "created": stamp,
            "updated": stamp,
        }
        new_fields.update(changes)
        issue = self._store(project, new_fields, now)
        for body in comments:
            self.add_comment(issue, body, reporter)
        return issue, {}

    def edit_issue(self, issue: Issue, payload: Any) -> dict[str, str]:
        """Apply a PUT (or transition) payload's fields and update; returns errors by field."""
        if not isinstance(payload, dict):
            return {"fields": "The request body must be an object"}
        fields = payload.get("fields") or {}
        update = payload.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            return {"fields": "fields and update must be objects"}
        changes, comments, errors = self._plan(fields, update, issue.fields["labels"], creating=False)
        if errors:
            return errors
        if changes or comments:
            issue.fields.update(changes)
            for body in comments:
                self.add_comment(issue, body, None, reindex=False)
            self._touch(issue)
        return {}

    def _plan(
        self, fields: dict[str, Any], update: dict[str, Any], current_labels: list[str], *, creating: bool
    ) -> tuple[dict[str, Any], list[Any], dict[str, str]]:
        """Validate fields and update operations; returns (new field values, comments to add, errors)."""
        changes: dict[str, Any] = {}
        comments: list[Any] = []
        errors: dict[str, str] = {}
        settable = self._setters(creating)
        for name, value in fields.items():
            if name not in settable:
                errors[name] = _CANNOT_SET.format(name)
                continue
            error, result = settable[name](value)
            if error:
                errors[name] = error
            else:
                changes[name] = result
        labels = list(changes.get("labels", current_labels))
        for name, operations in update.items():
            if name in fields:
                errors[name] = f"Field '{name}' cannot be set in both fields and update."
                continue
            if not isinstance(operations, list):
                errors[name] = "Operations must be a list."
                continue
            if name == "comment":
                for op in operations:
                    body = (
                        op.get("add", {}).get("body")
                        if isinstance(op, dict) and isinstance(op.get("add"), dict)
                        else None
                    )
                    problem = "Comment body can not be empty!" if body is None else adf_problem(body)
                    if problem:
                        errors["comment"] = problem
                    else:
                        comments.append(body)
                continue
            if name not in settable:
                errors[name] = _CANNOT_SET.format(name)
                continue
            for op in operations:
                verb, value = next(iter(op.items())) if isinstance(op, dict) and len(op) == 1 else ("?", None)
                if name == "labels" and verb in ("add", "remove"):
                    if not isinstance(value, str) or " " in value or not value:
                        errors[name] = f"The label '{value}' contains spaces which is invalid."
                    elif verb == "add" and value not in labels:
                        labels.append(value)
                    elif verb == "remove" and value in labels:
                        labels.remove(value)
                    changes["labels"] = list(labels)
                elif verb == "set":
                    error, result = settable[name](value)
                    if error:
                        errors[name] = error
                    else:
                        changes[name] = result
                        if name == "labels":
                            labels = list(result)
                else:
                    errors[name] = f"Field '{name}' does not support operation '{verb}'."
        return changes, comments, errors

    def _setters(self, creating: bool) -> dict[str, Callable[[Any], tuple[str | None, Any]]]:
        setters: dict[str, Callable[[Any], tuple[str | None, Any]]] = {
            "summary": _check_summary,
            "description": _check_description,
            "labels": _check_labels,
            "priority": _check_priority,
            "assignee": self._check_user,
        }
        if creating:
            setters["reporter"] = self._check_user
        return setters

    def _check_user(self, value: Any) -> tuple[str | None, Any]:
        if value is None:
            return None, None
        account_id = value.get("accountId") if isinstance(value, dict) else None
        user = self._accounts.by_account_id(account_id) if isinstance(account_id, str) else None
        if user is None:
            return "Specified user does not exist or you do not have required permissions", None
        return None, user.to_json()

    # -- transitions and comments -------------------------------------------------------------------

    def add_transition(self, from_status: str, name: str, to_status: str, transition_id: str | None = None) -> str:
        """Offer transition ``name`` from ``from_status`` to ``to_status`` (the same status: a self-loop)."""
        source, target = self.status(from_status)["name"], self.status(to_status)["name"]
        taken = {tid for offered in self.workflow.values() for tid, _name, _target in offered}
        if transition_id is None:
            transition_id = str(max(int(tid) for tid in taken) + 10)
        elif transition_id in taken:
            raise ValueError(f"transition id {transition_id} is taken")
        self.workflow[source].append((transition_id, name, target))
        return transition_id

    def transitions(self, issue: Issue) -> list[dict[str, Any]]:
        current = issue.fields["status"]["name"]
        return [
            {
                "id": tid,
                "name": name,
                "to": STATUSES[target],
                "hasScreen": False,
                "isGlobal": False,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": target == current,
            }
            for tid, name, target in self.workflow[current]
        ]

    def transition(self, issue: Issue, transition_id: str, author: User | None = None) -> bool:
        """Move along the transition with that id, recording the status change in the issue's
        changelog as Jira does; False if the current status has no such transition."""
        for tid, _name, target in self.workflow[issue.fields["status"]["name"]]:
            if tid == transition_id:
                before = issue.fields["status"]
                self.set_status(issue, target)
                after = issue.fields["status"]
                item = {
                    "field": "status", "fieldtype": "jira", "fieldId": "status",
                    "from": before["id"], "fromString": before["name"], "to": after["id"], "toString": after["name"],
                }
                self.add_history(issue, [item], author)
                return True
        return False

    # -- history ----------------------------------------------------------------------------------------

    def add_history(
        self, issue: Issue, items: list[dict[str, Any]], author: User | None, at: float | None = None
    ) -> dict[str, Any]:
        """Append one changelog entry (its ``items`` say what changed); ``at`` defaults to now."""
        at = self._clock() if at is None else at
        entry = {
            "id": str(self._next_history_id),
            "author": author.to_json() if author else None,
            "created": jira_time(at),
            "items": items,
        }
        self._next_history_id += 1
        issue.changelog.append((at, entry))
        return entry

    def changelog_page(self, issue: Issue, base: str, start: int, limit: int) -> dict[str, Any]:
        """``GET issue/{key}/changelog``: a ``PageBeanChangelog``, oldest entry first."""
        page = [entry for _at, entry in issue.changelog[start : start + limit]]
        total = len(issue.changelog)
        answer: dict[str, Any] = {
            "self": f"{base}/rest/api/3/issue/{issue.key}/changelog?startAt={start}&maxResults={limit}",
            "maxResults": limit,
            "startAt": start,
            "total": total,
            "isLast": start + len(page) >= total,
            "values": page,
        }
        if not answer["isLast"]:
            answer["nextPage"] = (
                f"{base}/rest/api/3/issue/{issue.key}/changelog?startAt={start + len(page)}&maxResults={limit}"
            )
        return answer

    def bulk_changelog(self, issues: list[Issue], offset: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """``POST changelog/bulkfetch``: the entries of ``issues`` ordered by date, then issue id
        (Jira's order), from ``offset``, at most ``limit``; consecutive entries of one issue are
        grouped as one ``IssueChangeLog``. Returns the groups and the next offset (``None``: last page)."""
        every = sorted(
            ((at, issue.id, int(entry["id"]), entry) for issue in issues for at, entry in issue.changelog),
            key=lambda row: row[:3],
        )
        page = every[offset : offset + limit]
        groups: list[dict[str, Any]] = []
        for _at, issue_id, _eid, entry in page:
            if groups and groups[-1]["issueId"] == str(issue_id):
                groups[-1]["changeHistories"].append(entry)
            else:
                groups.append({"issueId": str(issue_id), "changeHistories": [entry]})
        end = offset + len(page)
        return groups, (end if end < len(every) else None)

    def add_comment(
        self,
        issue: Issue,
        body: Any,
        author: User | None,
        *,
        reindex: bool = True,
        properties: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        stamp = jira_time(self._clock())
        comment = {
            "id": str(self._next_comment_id),
            "author": author.to_json() if author else None,
            "body": body,
            "created": stamp,
            "updated": stamp,
            "jsdPublic": True,
        }
        self._next_comment_id += 1
        issue.comments.append(comment)
        self._comments[comment["id"]] = (issue, [dict(p) for p in properties or ()])
        if reindex:
            self._touch(issue)
        return comment

    def comment_json(self, issue: Issue, comment: dict[str, Any], base: str, *, properties: bool = False) -> dict[str, Any]:
        shown = {"self": f"{base}/rest/api/3/issue/{issue.id}/comment/{comment['id']}", **comment}
        if properties:
            shown["properties"] = [dict(p) for p in self._comments.get(comment["id"], (issue, []))[1]]
        return shown

    def comments_by_id(self, ids: list[int], base: str, *, properties: bool) -> list[dict[str, Any]]:
        """``POST comment/list``: the comments with these ids, in id order; unknown ids are left out."""
        found = []
        for comment_id in sorted(set(ids)):
            held = self._comments.get(str(comment_id))
            if held is None:
                continue
            issue = held[0]
            comment = next((c for c in issue.comments if c["id"] == str(comment_id)), None)
            if comment is not None:
                found.append(self.comment_json(issue, comment, base, properties=properties))
        return found

    def comment_page(
        self, issue: Issue, base: str, start: int, limit: int, *, newest_first: bool = False
    ) -> dict[str, Any]:
        ordered = issue.comments[::-1] if newest_first else issue.comments
        page = ordered[start : start + limit]
        return {
            "comments": [self.comment_json(issue, c, base) for c in page],
            "self": f"{base}/rest/api/3/issue/{issue.id}/comment",
            "maxResults": limit,
            "total": len(issue.comments),
            "startAt": start,
        }

    # -- JQL ------------------------------------------------------------------------------------------

    def jql_env(self, user: User | None) -> JqlEnv:
        def lower_name(items: list[dict[str, Any]]) -> Callable[[str], str | None]:
            def find(value: str) -> str | None:
                found = _by_name_or_id(items, value)
                return found["name"].lower() if found else None

            return find

        def category(value: str) -> str | None:
            lowered = value.lower()
            return next((k for k, c in CATEGORIES.items() if lowered in (k, c["name"].lower(), str(c["id"]))), None)

        def project_key(value: str) -> str | None:
            project = self.find_project(value)
            return project.key if project else None

        def account_id(value: str) -> str | None:
            found = self._accounts.find(value)
            return found.account_id if found else None

        return JqlEnv(
            project_key=project_key,
            status_name=lower_name(list(STATUSES.values())),
            category_key=category,
            issuetype_name=lower_name(ISSUE_TYPES),
            priority_name=lower_name(PRIORITIES),
            resolution_name=lower_name([RESOLUTION_DONE]),
            account_id=account_id,
            current_account_id=user.account_id if user else None,
            now=self._clock(),
            time_zone=user.time_zone if user else "Etc/UTC",
        )


def _check_summary(value: Any) -> tuple[str | None, Any]:
    if not isinstance(value, str) or not value.strip():
        return "You must specify a summary of the issue.", None
    if len(value) > 255:
        return "Summary must be less than 255 characters.", None
    if "\n" in value or "\r" in value:
        return "The summary is invalid because it contains newline characters.", None
    return None, value


def _check_description(value: Any) -> tuple[str | None, Any]:
    if value is None:
        return None, None
    problem = adf_problem(value)
    return (problem, None) if problem else (None, copy.deepcopy(value))


def _check_labels(value: Any) -> tuple[str | None, Any]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return "The labels must be a list of non-empty strings.", None
    for label in value:
        if " " in label:
            return f"The label '{label}' contains spaces which is invalid.", None
        if len(label) > 255:
            return "The label must not exceed 255 characters.", None
    return None, list(dict.fromkeys(value))


def _check_priority(value: Any) -> tuple[str | None, Any]:
    found = _by_name_or_id(PRIORITIES, value)
    return ("The priority selected is invalid.", None) if found is None else (None, found)


def new_cloud_id(rng: Any) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
