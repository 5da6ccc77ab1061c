"""A small JQL subset: parse a query, then compile it into a predicate and a sort key.

Supported: clauses joined by AND / OR / NOT with parentheses; the operators ``= != ~ !~ < <=
> >= IN, NOT IN, IS, IS NOT``; fields project, key (issuekey), id, status, statusCategory,
labels, summary, description, comment, text, issuetype (type), priority, assignee, reporter,
resolution, created, updated; functions currentUser(), now(), startOfDay(), endOfDay();
``ORDER BY`` key, id, created, updated, summary, status, priority, project, issuetype. Absolute
dates ("yyyy-MM-dd HH:mm") are read in the caller's profile time zone (``User.time_zone``), as Jira does.
Errors carry Jira's own wording, e.g. "Error in the JQL Query: Expecting operator but got 'x'...".

Compiled predicates read these attributes of an issue: id, key, num, project, status_lc,
category, labels_lc, summary_lc, description_lc, text_lc, comment_lc, issuetype_lc, priority_lc,
priority_rank, assignee, reporter, resolution_lc, created, updated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Predicate = Callable[[Any], bool]

_QUERY_ERROR = "Error in the JQL Query: "
_OPERATORS = "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "EMPTY", "NULL", "ORDER", "BY", "ASC", "DESC"})
_SPECIAL = set("()\",'=!~<>")


class JqlError(ValueError):
    """A query Jira would refuse with 400; ``str(error)`` is Jira's message."""


# -- tokens -------------------------------------------------------------------------------------


@dataclass
class _Tok:
    kind: str  # WORD, STR, OP, LP, RP, COMMA, EOF
    text: str
    pos: int  # 1-based character, as in Jira's messages

    def is_kw(self, *words: str) -> bool:
        return self.kind == "WORD" and self.text.upper() in words


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "\"'":
            start, i, chars = i, i + 1, []
            while i < n and text[i] != c:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise JqlError(
                    f"{_QUERY_ERROR}The quoted string '{''.join(chars)}' has not been completed. "
                    f"(line 1, character {start + 1})"
                )
            toks.append(_Tok("STR", "".join(chars), start + 1))
            i += 1
        elif c in "(),":
            toks.append(_Tok({"(": "LP", ")": "RP", ",": "COMMA"}[c], c, i + 1))
            i += 1
        elif c in "=~<>!":
            two = text[i : i + 2]
            op = two if two in ("!=", "!~", "<=", ">=") else c
            if op == "!":
                raise JqlError(
                    f"{_QUERY_ERROR}Expecting operator but got '!'. {_OPERATORS} (line 1, character {i + 1})"
                )
            toks.append(_Tok("OP", op, i + 1))
            i += len(op)
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            toks.append(_Tok("WORD", text[start:i], start + 1))
    toks.append(_Tok("EOF", "", n + 1))
    return toks


# -- syntax tree --------------------------------------------------------------------------------


@dataclass
class Value:
    kind: str  # "str" (quoted), "word", "func", "empty"
    text: str
    args: tuple[str, ...] = ()

    def shown(self) -> str:
        return f"{self.text}({', '.join(self.args)})" if self.kind == "func" else self.text


@dataclass
class Clause:
    field: str  # canonical field name
    name: str  # as written
    op: str  # "=", "!=", "~", "!~", "<", "<=", ">", ">=", "IN", "NOT IN", "IS", "IS NOT"
    values: list[Value]
    is_list: bool = False


@dataclass
class BoolOp:
    op: str  # "AND" | "OR"
    parts: list[Node]


@dataclass
class Not:
    part: Node


Node = Clause | BoolOp | Not


@dataclass
class Query:
    where: Node | None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)


_FIELD_NAMES = {
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "id": "id",
    "status": "status",
    "statuscategory": "statuscategory",
    "labels": "labels",
    "summary": "summary",
    "description": "description",
    "comment": "comment",
    "text": "text",
    "issuetype": "issuetype",
    "type": "issuetype",
    "priority": "priority",
    "assignee": "assignee",
    "reporter": "reporter",
    "resolution": "resolution",
    "created": "created",
    "createddate": "created",
    "updated": "updated",
    "updateddate": "updated",
}
_TEXT_FIELDS = {"summary", "description", "comment", "text"}
_DATE_FIELDS = {"created", "updated"}
_OPS_BY_KIND = {
    "text": {"~", "!~", "IS", "IS NOT"},
    "date": {"=", "!=", "<", "<=", ">", ">=", "IS", "IS NOT", "IN", "NOT IN"},
    "ordered": {"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "IS", "IS NOT"},
    "equality": {"=", "!=", "IN", "NOT IN", "IS", "IS NOT"},
}
_SORTABLE = {"key", "id", "created", "updated", "summary", "status", "priority", "project", "issuetype"}


def _kind(field_name: str) -> str:
    if field_name in _TEXT_FIELDS:
        return "text"
    if field_name in _DATE_FIELDS:
        return "date"
    if field_name in ("key", "id"):
        return "ordered"
    return "equality"


def _unknown_field(name: str) -> JqlError:
    return JqlError(f"{_QUERY_ERROR}Field '{name}' does not exist or you do not have permission to view it.")


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, expecting: str, tok: _Tok, extra: str = "") -> JqlError:
        if tok.kind == "EOF":
            return JqlError(f"{_QUERY_ERROR}Expecting {expecting} before the end of the query.{extra}")
        return JqlError(
            f"{_QUERY_ERROR}Expecting {expecting} but got '{tok.text}'.{extra} (line 1, character {tok.pos})"
        )

    def at_order_by(self) -> bool:
        return self.peek().is_kw("ORDER") and self.toks[self.i + 1].is_kw("BY")

    def parse(self) -> Query:
        where = None
        if not self.at_order_by() and self.peek().kind != "EOF":
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.at_order_by():
            self.i += 2
            order = self.sort_list()
        tok = self.peek()
        if tok.kind != "EOF":
            raise self.fail("either 'OR' or 'AND'", tok)
        return Query(where, order)

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.peek().is_kw("OR"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolOp("OR", parts)

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self.peek().is_kw("AND"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else BoolOp("AND", parts)

    def not_expr(self) -> Node:
        tok = self.peek()
        if tok.is_kw("NOT"):
            self.take()
            return Not(self.not_expr())
        if tok.kind == "LP":
            self.take()
            inner = self.or_expr()
            if self.peek().kind != "RP":
                raise self.fail("')'", self.peek())
            self.take()
            return inner
        return self.clause()

    def clause(self) -> Clause:
        tok = self.take()
        if tok.kind not in ("WORD", "STR") or (tok.kind == "WORD" and tok.text.upper() in _KEYWORDS):
            raise self.fail(
                "a field name",
                tok,
                f" You must surround '{tok.text}' in quotation marks to use it as a field name."
                if tok.kind != "EOF"
                else "",
            )
        canonical = _FIELD_NAMES.get(tok.text.lower())
        if canonical is None:
            raise _unknown_field(tok.text)
        op = self.operator()
        if op not in _OPS_BY_KIND[_kind(canonical)]:
            raise JqlError(f"{_QUERY_ERROR}The operator '{op}' is not supported by the '{tok.text}' field.")
        if op in ("IS", "IS NOT"):
            empty = self.take()
            if not empty.is_kw("EMPTY", "NULL"):
                raise self.fail("'EMPTY' or 'NULL'", empty)
            return Clause(canonical, tok.text, op, [Value("empty", empty.text)])
        if self.peek().kind == "LP":
            values = self.value_list()
            if op not in ("IN", "NOT IN"):
                shown = "(" + ", ".join(v.shown() for v in values) + ")"
                raise JqlError(
                    f"{_QUERY_ERROR}The operator '{op}' does not support the list value '{shown}' "
                    f"for field '{tok.text}'."
                )
            return Clause(canonical, tok.text, op, values, is_list=True)
        value = self.value()
        if op in ("IN", "NOT IN"):
            raise JqlError(
                f"{_QUERY_ERROR}The operator '{op}' does not support the non-list value '{value.shown()}' "
                f"for field '{tok.text}'."
            )
        return Clause(canonical, tok.text, op, [value])

    def operator(self) -> str:
        tok = self.take()
        if tok.kind == "OP":
            return tok.text
        if tok.is_kw("IN"):
            return "IN"
        if tok.is_kw("IS"):
            if self.peek().is_kw("NOT"):
                self.take()
                return "IS NOT"
            return "IS"
        if tok.is_kw("NOT") and self.peek().is_kw("IN"):
            self.take()
            return "NOT IN"
        raise self.fail("operator", tok, f" {_OPERATORS}")

    def value_list(self) -> list[Value]:
        self.take()  # "("
        values = [self.value()]
        while self.peek().kind == "COMMA":
            self.take()
            values.append(self.value())
        if self.peek().kind != "RP":
            raise self.fail("')'", self.peek())
        self.take()
        return values

    def value(self) -> Value:
        tok = self.take()
        if tok.kind == "STR":
            return Value("str", tok.text)
        if tok.kind == "WORD" and tok.is_kw("EMPTY", "NULL"):
            return Value("empty", tok.text)
        if tok.kind == "WORD" and tok.text.upper() not in _KEYWORDS:
            if self.peek().kind == "LP":
                return Value("func", tok.text, self.function_args())
            return Value("word", tok.text)
        extra = f" You must surround '{tok.text}' in quotation marks to use it as a value." if tok.kind != "EOF" else ""
        raise self.fail("either a value, list or function", tok, extra)

    def function_args(self) -> tuple[str, ...]:
        self.take()  # "("
        args: list[str] = []
        while self.peek().kind in ("WORD", "STR"):
            args.append(self.take().text)
            if self.peek().kind == "COMMA":
                self.take()
        if self.peek().kind != "RP":
            raise self.fail("')'", self.peek())
        self.take()
        return tuple(args)

    def sort_list(self) -> list[tuple[str, bool]]:
        order: list[tuple[str, bool]] = []
        while True:
            tok = self.take()
            if tok.kind not in ("WORD", "STR"):
                raise self.fail("a field name", tok)
            canonical = _FIELD_NAMES.get(tok.text.lower())
            if canonical is None:
                raise _unknown_field(tok.text)
            if canonical not in _SORTABLE:
                raise JqlError(f"{_QUERY_ERROR}Field '{tok.text}' does not support sorting.")
            descending = False
            if self.peek().is_kw("ASC", "DESC"):
                descending = self.take().text.upper() == "DESC"
            order.append((canonical, descending))
            if self.peek().kind != "COMMA":
                return order
            self.take()


def parse(text: str) -> Query:
    """Parse ``text``; raises :class:`JqlError` with Jira's wording on a syntax error or unknown field."""
    return _Parser(text).parse()


# -- compiling ------------------------------------------------------------------------------------


@dataclass
class JqlEnv:
    """What compiling needs to know about the site and the caller."""

    project_key: Callable[[str], str | None]  # key, id or name -> key
    status_name: Callable[[str], str | None]  # name or id -> lower-case name
    category_key: Callable[[str], str | None]  # name, key or id -> key
    issuetype_name: Callable[[str], str | None]
    priority_name: Callable[[str], str | None]
    resolution_name: Callable[[str], str | None]
    account_id: Callable[[str], str | None]  # account id, email or display name -> account id
    current_account_id: str | None
    now: float
    time_zone: str = "Etc/UTC"  # the caller's: JQL reads "yyyy-MM-dd HH:mm" in it, as Jira does


def _no_value(value: Value, name: str) -> JqlError:
    return JqlError(f"The value '{value.shown()}' does not exist for the field '{name}'.")


_DURATION = re.compile(r"^([+-]?)((?:\d+\s*[wdhm]\s*)+)$", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+)\s*([wdhm])", re.IGNORECASE)
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


def _duration(text: str) -> float | None:
    match = _DURATION.match(text.strip())
    if not match:
        return None
    seconds = sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION_PART.findall(match.group(2)))
    return -seconds if match.group(1) == "-" else seconds


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def _date_value(value: Value, name: str, env: JqlEnv) -> float:
    if value.kind == "func":
        fn = value.text.lower()
        offset = _duration(value.args[0]) if value.args else 0.0
        if offset is None:
            raise JqlError(f"{_QUERY_ERROR}Unable to parse the argument of the function '{value.text}()'.")
        if fn == "now":
            return env.now + offset
        if fn in ("startofday", "endofday"):
            day = datetime.fromtimestamp(env.now + offset, tz=timezone.utc).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            if fn == "endofday":
                day += timedelta(days=1, microseconds=-1)
            return day.timestamp()
        raise JqlError(f"{_QUERY_ERROR}Unable to find JQL function '{value.text}()'.")
    relative = _duration(value.text)
    if relative is not None:
        return env.now + relative
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value.text.strip(), fmt).replace(tzinfo=_zone(env.time_zone)).timestamp()
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{value.text}' for field '{name}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    )


def _text_matcher(value: Value, name: str) -> Callable[[str], bool]:
    text = value.text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        phrase = text[1:-1].lower()
        return lambda s: phrase in s
    terms = re.findall(r"[\w*?]+", text.lower())
    if not terms:
        raise JqlError(f"The field '{name}' does not support searching for an empty string.")
    # Jira stems words; matching each term as a word prefix is close enough for tests.
    patterns = [re.compile(r"\b" + re.escape(t).replace(r"\*", r"\w*").replace(r"\?", r"\w")) for t in terms]
    return lambda s: all(p.search(s) for p in patterns)


_TEXT_ATTR = {"summary": "summary_lc", "description": "description_lc", "comment": "comment_lc", "text": "text_lc"}
_SCALAR_ATTR = {
    "project": "project",
    "status": "status_lc",
    "statuscategory": "category",
    "issuetype": "issuetype_lc",
    "priority": "priority_lc",
    "assignee": "assignee",
    "reporter": "reporter",
    "resolution": "resolution_lc",
}


def _resolve(clause: Clause, env: JqlEnv) -> set[Any]:
    """The clause's values as stored on issues (None stands for EMPTY)."""
    resolvers: dict[str, Callable[[str], str | None]] = {
        "project": env.project_key,
        "status": env.status_name,
        "statuscategory": env.category_key,
        "issuetype": env.issuetype_name,
        "priority": env.priority_name,
    }
    out: set[Any] = set()
    for value in clause.values:
        if value.kind == "empty":
            out.add(None)
        elif clause.field in ("assignee", "reporter"):
            if value.kind == "func":
                if value.text.lower() != "currentuser":
                    raise JqlError(f"{_QUERY_ERROR}Unable to find JQL function '{value.text}()'.")
                out.add(env.current_account_id or "\0anonymous")
            else:
                account = env.account_id(value.text)
                if account is None:
                    raise _no_value(value, clause.name)
                out.add(account)
        elif value.kind == "func":
            raise JqlError(f"{_QUERY_ERROR}Unable to find JQL function '{value.text}()'.")
        elif clause.field == "labels":
            out.add(value.text.lower())
        elif clause.field == "resolution":
            if value.text.lower() == "unresolved":
                out.add(None)
            elif env.resolution_name(value.text) is None:
                raise _no_value(value, clause.name)
            else:
                out.add(env.resolution_name(value.text))
        else:
            resolved = resolvers[clause.field](value.text)
            if resolved is None:
                raise _no_value(value, clause.name)
            out.add(resolved)
    return out


def _compile_clause(clause: Clause, env: JqlEnv) -> Predicate:
    f, op = clause.field, clause.op
    if f in _TEXT_FIELDS:
        attr = _TEXT_ATTR[f]
        if op in ("IS", "IS NOT"):
            empty = op == "IS"
            return lambda i: (not getattr(i, attr)) is empty
        match = _text_matcher(clause.values[0], clause.name)
        if op == "~":
            return lambda i: match(getattr(i, attr))
        return lambda i: not match(getattr(i, attr))
    if f in _DATE_FIELDS:
        if op in ("IS", "IS NOT"):
            return (lambda i: False) if op == "IS" else (lambda i: True)
        moments = [_date_value(v, clause.name, env) for v in clause.values]
        return _compare(lambda i: getattr(i, f), op, moments)
    if f in ("id", "key") and op in ("IS", "IS NOT"):
        # Every issue has an id and a key.
        return (lambda i: False) if op == "IS" else (lambda i: True)
    if f == "id":
        try:
            numbers = [int(v.text) for v in clause.values if v.kind != "empty"]
        except ValueError:
            raise _no_value(next(v for v in clause.values if not v.text.isdigit()), clause.name) from None
        return _compare(lambda i: i.id, op, numbers)
    if f == "key":
        keys = {v.text.upper() for v in clause.values if not v.text.isdigit()}
        ids = {int(v.text) for v in clause.values if v.text.isdigit()}
        if op in ("<", "<=", ">", ">="):
            project, _, num = clause.values[0].text.upper().rpartition("-")
            if not project or not num.isdigit():
                raise JqlError(f"The issue key '{clause.values[0].text}' for field '{clause.name}' is invalid.")
            ordered = _compare(lambda i: i.num, op, [int(num)])
            return lambda i: i.project == project and ordered(i)

        def hit(i: Any) -> bool:
            return i.key in keys or i.id in ids

        return hit if op in ("=", "IN") else (lambda i: not hit(i))
    values = _resolve(clause, env)
    if f == "labels":
        if op == "IS":
            return lambda i: not i.labels_lc
        if op == "IS NOT":
            return lambda i: bool(i.labels_lc)
        wanted = values - {None}
        want_empty = None in values
        if op in ("=", "IN"):
            return lambda i: (not i.labels_lc and want_empty) or not wanted.isdisjoint(i.labels_lc)
        # Like Jira, "!=" and NOT IN never match issues without labels.
        return lambda i: bool(i.labels_lc) and wanted.isdisjoint(i.labels_lc)
    attr = _SCALAR_ATTR[f]
    if op in ("IS", "IS NOT"):
        empty = op == "IS"
        return lambda i: (getattr(i, attr) is None) is empty
    if op in ("=", "IN"):
        return lambda i: getattr(i, attr) in values
    # "!=" and NOT IN do not match empty values either.
    return lambda i: getattr(i, attr) is not None and getattr(i, attr) not in values


def _compare(get: Callable[[Any], Any], op: str, values: list[Any]) -> Predicate:
    first = values[0] if values else None
    if op in ("=", "IN"):
        wanted = set(values)
        return lambda i: get(i) in wanted
    if op in ("!=", "NOT IN"):
        unwanted = set(values)
        return lambda i: get(i) not in unwanted
    return {
        "<": lambda i: get(i) < first,
        "<=": lambda i: get(i) <= first,
        ">": lambda i: get(i) > first,
        ">=": lambda i: get(i) >= first,
    }[op]


def _compile(node: Node, env: JqlEnv) -> Predicate:
    if isinstance(node, Clause):
        return _compile_clause(node, env)
    if isinstance(node, Not):
        inner = _compile(node.part, env)
        return lambda i: not inner(i)
    parts = [_compile(p, env) for p in node.parts]
    if node.op == "AND":
        return lambda i: all(p(i) for p in parts)
    return lambda i: any(p(i) for p in parts)


_SORT_KEYS: dict[str, Callable[[Any], Any]] = {
    "key": lambda i: (i.project, i.num),
    "id": lambda i: i.id,
    "created": lambda i: (i.created, i.id),
    "updated": lambda i: (i.updated, i.id),
    "summary": lambda i: i.summary_lc,
    "status": lambda i: i.status_lc,
    "priority": lambda i: i.priority_rank,
    "project": lambda i: i.project,
    "issuetype": lambda i: i.issuetype_lc,
}


def compile_query(query: Query, env: JqlEnv) -> Predicate:
    """The query's WHERE part as a predicate on issues (everything matches without one)."""
    if query.where is None:
        return lambda i: True
    return _compile(query.where, env)


def sort_issues(issues: list[Any], order: list[tuple[str, bool]]) -> list[Any]:
    """Sort by ``ORDER BY`` terms; without any, in creation order (ascending id)."""
    result = sorted(issues, key=_SORT_KEYS["id"])
    for name, descending in reversed(order):
        result.sort(key=_SORT_KEYS[name], reverse=descending)
    return result
