"""The emulator's scope table agrees with Atlassian's OpenAPI spec of Jira Cloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_jira_auth.testing._scopes import CLASSIC_SCOPES

SPEC = Path(__file__).resolve().parents[2].parent / "shared/reference/jira-cloud-platform-openapi.json"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"the Jira Cloud OpenAPI spec is not at {SPEC} (it ships beside the repo, not in it)")
    return json.loads(SPEC.read_text())


@pytest.mark.parametrize(("method", "path"), sorted(CLASSIC_SCOPES), ids=lambda v: str(v))
def test_scope_table_entry_matches_the_spec(spec: dict[str, Any], method: str, path: str) -> None:
    operation = spec["paths"].get(path, {}).get(method.lower())
    assert operation is not None, f"{method} {path} is not in the spec"
    current = [e for e in operation.get("x-atlassian-oauth2-scopes", []) if e.get("state") == "Current"]
    assert len(current) == 1, f"{method} {path}: no single 'Current' scope entry in the spec"
    assert sorted(CLASSIC_SCOPES[(method, path)]) == sorted(current[0]["scopes"])
