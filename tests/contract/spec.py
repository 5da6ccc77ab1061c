"""Atlassian's OpenAPI spec of Jira Cloud, for contract tests: load it, find the operation a call hits.

The spec is kept in the repository (``tests/contract/spec_data/``, see the README there), so
these tests run, and never skip, in a plain clone. Spec paths are full paths with ``{param}`` segments, e.g.
``/rest/api/3/issue/{issueIdOrKey}/transitions``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

SPEC_PATH = Path(__file__).resolve().parent / "spec_data" / "jira-cloud-platform-openapi.json"
REST_ROOT = "/rest/api/3"
_GATEWAY_PREFIX = "/ex/jira/"  # /ex/jira/{cloudId}/rest/api/3/...: the same API through the gateway

Operation = dict[str, Any]


def load_spec() -> dict[str, Any]:
    """The parsed spec (read once)."""
    return _read(SPEC_PATH)


@lru_cache(maxsize=1)
def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def spec_path(path: str) -> str:
    """A request's path as the spec writes it: no query, no gateway prefix, rooted at ``/rest/...``.

    Accepts what the emulator records (``/rest/api/3/issue/ENG-1``,
    ``/ex/jira/<cloudId>/rest/api/3/myself``) and paths relative to ``/rest/api/3`` (``issue/ENG-1``).
    """
    path = path.partition("?")[0]
    if path.startswith(_GATEWAY_PREFIX):
        path = "/" + path[len(_GATEWAY_PREFIX) :].partition("/")[2]
    if not path.startswith("/rest/"):
        path = f"{REST_ROOT}/{path.lstrip('/')}"
    return path.rstrip("/") or "/"


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _matches(template: list[str], concrete: list[str]) -> bool:
    return len(template) == len(concrete) and all(
        (bool(value) if _is_param(part) else part == value) for part, value in zip(template, concrete)
    )


def _specificity(template: list[str]) -> tuple[int, int]:
    """Sort key: fewer parameters first, then more literal characters (how JAX-RS picks a resource)."""
    params = [part for part in template if _is_param(part)]
    return len(params), -sum(len(part) for part in template if not _is_param(part))


def find_operation(spec: dict[str, Any], method: str, concrete_path: str) -> tuple[str, Operation] | None:
    """The spec's ``(path template, operation)`` that ``method concrete_path`` calls, or ``None``.

    The path is matched as Jira routes it: the most specific matching template wins (a literal
    segment beats a ``{param}``: ``POST /rest/api/3/issue/bulk`` is bulk create, not an issue
    called ``bulk``), and then the method must exist on it; a method only a less specific template
    has does not count. Concrete segments are percent-decoded before comparing.
    """
    segments = [unquote(part) for part in spec_path(concrete_path).split("/")]
    candidates = [
        (template, template.split("/")) for template in spec["paths"] if _matches(template.split("/"), segments)
    ]
    if not candidates:
        return None
    best = min(_specificity(parts) for _, parts in candidates)
    for template, parts in candidates:
        if _specificity(parts) == best:
            operation = spec["paths"][template].get(method.lower())
            if isinstance(operation, dict):
                return template, operation
    return None


def classic_scopes(operation: Operation) -> set[str]:
    """The classic OAuth 2.0 scopes an operation needs: its ``x-atlassian-oauth2-scopes`` entries
    whose ``state`` is ``Current`` (the ``Beta`` ones are granular scopes). An empty set means none.

    :raises LookupError: the spec states no current scopes for this operation, which is not the
        same as needing none.
    """
    current = [entry for entry in operation.get("x-atlassian-oauth2-scopes") or [] if entry.get("state") == "Current"]
    if not current:
        raise LookupError(
            f"{operation.get('operationId', 'the operation')} has no 'Current' classic scopes in the spec"
        )
    return {scope for entry in current for scope in entry.get("scopes") or []}
