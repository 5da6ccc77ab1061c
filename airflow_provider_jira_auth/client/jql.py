"""Values placed into JQL safely: quoted strings and lists, never raw text.

Operators take JQL as written, on purpose: a DAG author writes queries. A value that comes from
elsewhere (``dag_run.conf``, an XCom, a file) must be quoted, or whoever controls it can widen the
query: ``x" OR project = HR OR labels = "y`` placed in ``labels = "{{ ... }}"`` reads other
projects. Quote it with :func:`jql_quote` (in a template, register it as a Jinja filter).
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def jql_quote(value: object) -> str:
    """``value`` as one JQL string literal, e.g. ``jql_quote('say "hi"')`` -> ``"say \\"hi\\""``.

    Backslashes and double quotes are escaped; line breaks and other control characters are
    refused (a JQL string cannot hold them, and they have no place in a field value).
    """
    text = str(value)
    bad = [ch for ch in text if ord(ch) < 32 or ord(ch) == 127]
    if bad:
        raise ValueError(f"a JQL value cannot contain control characters ({bad[0]!r}): {text[:40]!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jql_list(values: Iterable[object]) -> str:
    """Values as a JQL list for ``in``: ``jql_list(["ENG-1", "ENG-2"])`` -> ``("ENG-1", "ENG-2")``."""
    quoted = [jql_quote(value) for value in values]
    if not quoted:
        raise ValueError("a JQL list needs at least one value (`x in ()` is a syntax error)")
    return "(" + ", ".join(quoted) + ")"


# -- rewriting a query ------------------------------------------------------------------------------
#
# Code that adds to a user's query (the changes watch, the incremental export) must find its
# keywords only where JQL reads keywords: never inside a string literal. JQL has two quotes,
# "..." and '...', and inside either a backslash escapes the next character (``\"``, ``\'``,
# ``\\``, ``\uXXXX``, ...); outside a string a backslash escapes the next character too, which
# is then part of the word. :func:`jql_quote` writes exactly these escapes, so a value it quoted
# is one literal to every rewrite here, whatever it contains.

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def jql_code(jql: str) -> str:
    """``jql`` with every string literal and every escaped character masked, index for index.

    A literal (its quotes included, or up to the end when it is never closed) becomes ``"``
    characters, which JQL's keywords never contain or touch; an escaped character outside a
    literal (``\\`` and what follows) becomes two ``_``, a part of the word it stands in. What is
    left as written is what Jira reads as keywords, field names, operators and unquoted words, so
    a search over the result finds a keyword only where Jira would.
    """
    out: list[str] = []
    i, n = 0, len(jql)
    while i < n:
        ch = jql[i]
        if ch in "\"'":
            start, i = i, i + 1
            while i < n and jql[i] != ch:
                i += 2 if jql[i] == "\\" else 1
            i = min(i + 1, n)  # the closing quote, if there is one
            out.append('"' * (i - start))
        elif ch == "\\":
            width = min(2, n - i)
            out.append("_" * width)
            i += width
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def strip_order_by(jql: str) -> str:
    """The JQL without its ``ORDER BY`` clause, for callers that set their own order.

    ``ORDER BY`` counts only outside string literals (see :func:`jql_code`), so a value quoted
    with :func:`jql_quote` that says ``order by`` stays whole: cutting there would leave an
    unterminated string and Jira would refuse the whole query.
    """
    found = _ORDER_BY.search(jql_code(jql))
    return (jql[: found.start()] if found else jql).strip()
