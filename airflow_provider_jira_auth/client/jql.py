"""Values placed into JQL safely: quoted strings and lists, never raw text.

Operators take JQL as written, on purpose: a DAG author writes queries. A value that comes from
elsewhere (``dag_run.conf``, an XCom, a file) must be quoted, or whoever controls it can widen the
query: ``x" OR project = HR OR labels = "y`` placed in ``labels = "{{ ... }}"`` reads other
projects. Quote it with :func:`jql_quote` (in a template, register it as a Jinja filter).
"""

from __future__ import annotations

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
