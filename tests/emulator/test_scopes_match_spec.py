"""The emulator's scope table agrees with Atlassian's OpenAPI spec of Jira Cloud."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.spec import load_spec

from airflow_provider_jira_auth.testing._scopes import CLASSIC_SCOPES


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


@pytest.mark.parametrize(("method", "path"), sorted(CLASSIC_SCOPES), ids=lambda v: str(v))
def test_scope_table_entry_matches_the_spec(spec: dict[str, Any], method: str, path: str) -> None:
    operation = spec["paths"].get(path, {}).get(method.lower())
    assert operation is not None, f"{method} {path} is not in the spec"
    current = [e for e in operation.get("x-atlassian-oauth2-scopes", []) if e.get("state") == "Current"]
    assert len(current) == 1, f"{method} {path}: no single 'Current' scope entry in the spec"
    assert sorted(CLASSIC_SCOPES[(method, path)]) == sorted(current[0]["scopes"])
