"""Atlassian Document Format: the checks Jira applies to rich-text fields, and their plain text."""

from __future__ import annotations

from typing import Any

# What Jira answers (per field) when a v3 rich-text field gets a plain string or a malformed document.
ADF_ERROR = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"

_NODE_TYPES = frozenset(
    {
        "blockCard",
        "blockquote",
        "bulletList",
        "codeBlock",
        "date",
        "decisionItem",
        "decisionList",
        "embedCard",
        "emoji",
        "expand",
        "hardBreak",
        "heading",
        "inlineCard",
        "listItem",
        "media",
        "mediaGroup",
        "mediaInline",
        "mediaSingle",
        "mention",
        "nestedExpand",
        "orderedList",
        "panel",
        "paragraph",
        "placeholder",
        "rule",
        "status",
        "table",
        "tableCell",
        "tableHeader",
        "tableRow",
        "taskItem",
        "taskList",
        "text",
    }
)
_MAX_DEPTH = 32


def adf_problem(value: Any) -> str | None:
    """``None`` when ``value`` is a well-formed ADF document, else Jira's error message."""
    if not isinstance(value, dict) or value.get("type") != "doc" or value.get("version") != 1:
        return ADF_ERROR
    content = value.get("content")
    if not isinstance(content, list):
        return ADF_ERROR
    return None if all(_node_ok(node, 1) for node in content) else ADF_ERROR


def _node_ok(node: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH or not isinstance(node, dict) or node.get("type") not in _NODE_TYPES:
        return False
    if node["type"] == "text" and not (isinstance(node.get("text"), str) and node["text"]):
        return False
    if "marks" in node and not isinstance(node["marks"], list):
        return False
    content = node.get("content", [])
    return isinstance(content, list) and all(_node_ok(child, depth + 1) for child in content)


def adf_text(doc: Any) -> str:
    """The plain text of a document (for text search); ``""`` for ``None``."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for child in node.get("content") or ():
                walk(child)

    walk(doc)
    return " ".join(parts)


def adf_paragraph(text: str) -> dict[str, Any]:
    """A one-paragraph document holding ``text``."""
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }
