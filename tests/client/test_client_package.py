"""The client package stands alone: no Airflow, and its public names importable from the package."""

from __future__ import annotations

import subprocess
import sys


def test_client_imports_nothing_from_airflow() -> None:
    code = (
        "import sys, airflow_provider_jira_auth.client as c; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"


def test_public_names_are_exported() -> None:
    import airflow_provider_jira_auth.client as client

    for name in client.__all__:
        assert hasattr(client, name), name
