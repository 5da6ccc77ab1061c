"""Atlassian Document Format (ADF): what API v3 wants in rich-text fields and comment bodies."""

from __future__ import annotations

from typing import Any


def _paragraph(lines: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for line in lines:
        if content:
            content.append({"type": "hardBreak"})
        content.append({"type": "text", "text": line})
    return {"type": "paragraph", "content": content}


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document.

    Blank (or whitespace-only) lines separate paragraphs; a single newline becomes a
    ``hardBreak``. Empty text gives a document with one empty paragraph. No text node is ever
    empty: Jira rejects those.

    :param text: plain text; ``\\r\\n`` and ``\\r`` count as newlines.
    """
    if not isinstance(text, str):
        raise TypeError(f"text_to_adf() takes a str, not {type(text).__name__}")
    paragraphs: list[dict[str, Any]] = []
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.strip():
            lines.append(line)
        elif lines:
            paragraphs.append(_paragraph(lines))
            lines = []
    if lines:
        paragraphs.append(_paragraph(lines))
    return {"type": "doc", "version": 1, "content": paragraphs or [{"type": "paragraph", "content": []}]}


def is_adf(value: Any) -> bool:
    """Whether ``value`` looks like an ADF document (a ``doc`` node with a content list)."""
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


def ensure_adf(value: str | dict[str, Any]) -> dict[str, Any]:
    """An ADF document as is, or plain text converted with :func:`text_to_adf`.

    :raises TypeError: for anything else (ADF has to be a ``doc`` node, not a bare paragraph).
    """
    if isinstance(value, str):
        return text_to_adf(value)
    if isinstance(value, dict) and is_adf(value):
        return value
    raise TypeError(
        "expected plain text or an ADF document {'type': 'doc', 'version': 1, 'content': [...]}, "
        f"got {type(value).__name__}"
    )
