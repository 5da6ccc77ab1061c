"""Rewrites of a user's JQL keep every quoted value whole, whatever the value says.

The changes watch and the incremental export drop the user's ``ORDER BY`` and wrap the rest in
``(...) AND updated >= ...``. A value quoted with ``jql_quote`` that contains ``order by`` and a
quote (``5" order by noon``) must not be taken for the clause: a cut there leaves an
unterminated string, Jira refuses the query, and whoever wrote the value has stopped the watch or
the export. The property tests generate such values (quotes of both kinds, backslashes, ``order
by`` in any case and spacing, unicode) and check each rewrite two ways: the literal is still in the
query character for character, and the emulator's JQL parser, which reads strings as Jira does,
finds the original value in it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_jira_auth.client.jql import jql_code, jql_quote, strip_order_by
from airflow_provider_jira_auth.client.jql_time import changes_jql
from airflow_provider_jira_auth.operators.export import ExportWindow, window_jql
from airflow_provider_jira_auth.testing._jql import BoolOp, Clause, Not, parse

HOSTILE = '5" order by noon'
LOWER, UPPER = "2026-03-10 05:28", "2026-03-11 00:00"
WINDOW = ExportWindow(
    datetime(2026, 3, 10, tzinfo=timezone.utc), datetime(2026, 3, 11, tzinfo=timezone.utc), "test", "test"
)


def single_quoted(value: str) -> str:
    """A JQL literal in single quotes, escaped the way ``jql_quote`` escapes double ones."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def string_values(jql: str) -> list[str]:
    """The quoted values of ``jql`` as the emulator's parser (Jira's reading of strings) sees them."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Clause):
            found.extend(value.text for value in node.values if value.kind == "str")
        elif isinstance(node, BoolOp):
            for part in node.parts:
                walk(part)
        elif isinstance(node, Not):
            walk(node.part)

    walk(parse(jql).where)
    return found


def rewrites(jql: str) -> dict[str, str]:
    """Every rewrite the provider applies to a user's JQL."""
    return {
        "strip_order_by": strip_order_by(jql),
        "changes_jql (watch)": changes_jql(jql, LOWER),
        "changes_jql (bounded)": changes_jql(jql, LOWER, UPPER),
        "window_jql (export)": window_jql(jql, WINDOW, timezone(timedelta(hours=5, minutes=30)), 120),
    }


# -- examples ---------------------------------------------------------------------------------------


def test_a_quoted_value_saying_order_by_after_a_quote_is_not_cut() -> None:
    literal = jql_quote(HOSTILE)
    jql = f"project = ENG AND summary ~ {literal} ORDER BY key"

    assert strip_order_by(jql) == f"project = ENG AND summary ~ {literal}"
    assert changes_jql(jql, LOWER) == (
        f'(project = ENG AND summary ~ {literal}) AND updated >= "{LOWER}" ORDER BY updated ASC, id ASC'
    )
    assert string_values(changes_jql(jql, LOWER)) == [HOSTILE, LOWER]


@pytest.mark.parametrize(
    ("jql", "kept"),
    [
        ("project = ENG ORDER BY key", "project = ENG"),
        ("project = ENG order  by rank DESC", "project = ENG"),
        ("ORDER BY created", ""),
        ('summary ~ "order by x" ORDER BY key', 'summary ~ "order by x"'),
        ("summary ~ 'it\\'s an order by' order by key", "summary ~ 'it\\'s an order by'"),
        ('summary ~ "a \\\\" ORDER BY key', 'summary ~ "a \\\\"'),  # an escaped backslash ends the string
        ('summary ~ "x"ORDER BY key', 'summary ~ "x"'),
        ("reorder = 1 AND border by", "reorder = 1 AND border by"),  # keywords are whole words
        # an escaped space makes "word order" one word: "order" is no keyword there
        ("summary ~ word\\ order by key", "summary ~ word\\ order by key"),
        ('summary ~ "never closed order by key', 'summary ~ "never closed order by key'),
    ],
)
def test_order_by_is_found_only_where_jira_reads_keywords(jql: str, kept: str) -> None:
    assert strip_order_by(jql) == kept


def test_the_mask_keeps_every_index_and_hides_only_literals_and_escapes() -> None:
    jql = "a = \"x\\\"y\" AND b ~ 'z' AND c\\ d"
    masked = jql_code(jql)

    assert len(masked) == len(jql)
    assert masked == 'a = """""" AND b ~ """ AND c__d'


# -- properties -------------------------------------------------------------------------------------


def _any_case(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda ups: "".join(ch.upper() if up else ch for ch, up in zip(word, ups))
    )


GAPS = st.sampled_from([" ", "  ", "\u00a0", "\u3000"])  # Python's \s, and so strip_order_by's, spans them all
ORDER_BY_PHRASE = st.builds(lambda order, gap, by: order + gap + by, _any_case("order"), GAPS, _any_case("by"))
# What jql_quote accepts: anything but control characters (and lone surrogates, which no text holds).
PLAIN = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=6)
PIECE = st.one_of(
    ORDER_BY_PHRASE,
    st.sampled_from(['"', "'", "\\", "\\\\", '\\"', "\\'", " ", "(", ")", ",", "=", "~", "é", "順序", "🙂", "ORDER"]),
    PLAIN,
)
VALUES = st.lists(PIECE, max_size=8).map("".join)
QUOTES = st.sampled_from([jql_quote, single_quoted])
TEMPLATES = st.sampled_from(
    [
        "summary ~ {a}",
        "summary ~ {a} ORDER BY key",
        "project = ENG AND summary ~ {a} order by created DESC, key",
        "(summary ~ {a} OR description ~ {b}) ORDER BY updated",
        "summary ~ {a} AND labels in ({b}, {a}) Order  By key",
        "labels = {a} AND summary !~ {b}",
    ]
)
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(template=TEMPLATES, a=VALUES, b=VALUES, quote_a=QUOTES, quote_b=QUOTES)
def test_every_rewrite_keeps_each_quoted_value_whole(template, a, b, quote_a, quote_b) -> None:
    literal_a, literal_b = quote_a(a), quote_b(b)
    jql = template.format(a=literal_a, b=literal_b)
    expected = string_values(jql)  # the user's values, as Jira reads the query as written
    assert a in expected and ("{b}" not in template or b in expected)

    for name, rewritten in rewrites(jql).items():
        assert literal_a in rewritten, name
        if "{b}" in template:
            assert literal_b in rewritten, name
        query = parse(rewritten)  # Jira would accept it
        values = string_values(rewritten)
        assert values[: len(expected)] == expected, name
        if name == "strip_order_by":
            assert query.order == [], name
        else:
            assert query.order == [("updated", False), ("id", False)], name


@PROPERTY
@given(value=VALUES, quote=QUOTES)
def test_a_quoted_value_alone_is_never_mistaken_for_an_order_by(value, quote) -> None:
    literal = quote(value)

    assert strip_order_by(literal) == literal
    assert strip_order_by(f"summary ~ {literal} ORDER BY key") == f"summary ~ {literal}"
    assert changes_jql(f"summary ~ {literal}", LOWER).startswith(f"(summary ~ {literal}) AND ")
