"""``client/adf.py``: plain text to Atlassian Document Format."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_jira_auth.client import ensure_adf, is_adf, text_to_adf


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


BREAK = {"type": "hardBreak"}


def paragraphs(doc: dict[str, Any]) -> list[list[dict[str, Any]]]:
    assert doc["type"] == "doc" and doc["version"] == 1
    return [node["content"] for node in doc["content"]]


def test_single_line_is_one_paragraph() -> None:
    assert paragraphs(text_to_adf("hello")) == [[text("hello")]]


def test_blank_lines_separate_paragraphs() -> None:
    assert paragraphs(text_to_adf("one\n\ntwo\n \n\t\nthree")) == [[text("one")], [text("two")], [text("three")]]


def test_single_newline_becomes_hard_break() -> None:
    assert paragraphs(text_to_adf("a\nb")) == [[text("a"), BREAK, text("b")]]


def test_windows_newlines_are_understood() -> None:
    assert paragraphs(text_to_adf("a\r\nb\r\n\r\nc")) == [[text("a"), BREAK, text("b")], [text("c")]]


@pytest.mark.parametrize("value", ["", "\n\n", "   "])
def test_empty_text_gives_one_empty_paragraph(value: str) -> None:
    assert text_to_adf(value) == {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": []}]}


def test_no_text_node_is_empty() -> None:
    doc = text_to_adf("\n\na\n\n\nb\n\n")

    nodes = [node for paragraph in paragraphs(doc) for node in paragraph]
    assert all(node.get("text") for node in nodes if node["type"] == "text")
    assert paragraphs(doc) == [[text("a")], [text("b")]]


def test_indentation_inside_a_paragraph_is_kept() -> None:
    assert paragraphs(text_to_adf("list:\n  - item")) == [[text("list:"), BREAK, text("  - item")]]


def test_is_adf() -> None:
    assert is_adf(text_to_adf("x"))
    assert not is_adf({"type": "paragraph", "content": []})
    assert not is_adf("x")


def test_ensure_adf_converts_text_and_keeps_documents() -> None:
    doc = {"type": "doc", "version": 1, "content": []}

    assert ensure_adf("x") == text_to_adf("x")
    assert ensure_adf(doc) is doc


def test_ensure_adf_rejects_other_values() -> None:
    with pytest.raises(TypeError):
        ensure_adf({"type": "paragraph"})  # type: ignore[arg-type]
