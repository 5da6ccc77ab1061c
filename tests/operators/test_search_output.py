"""Where JiraSearchOperator's export goes: paths, URLs and ObjectStoragePath, all or nothing.

Real object storage through Airflow's own ``ObjectStoragePath``: ``file://`` (built in) and
fsspec's in-memory filesystem attached under the ``memory`` scheme, as a provider registers s3.
"""

from __future__ import annotations

import json

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_jira_auth.client.errors import JiraConfigError
from airflow_provider_jira_auth.operators import output
from airflow_provider_jira_auth.operators.jira_cloud import JiraSearchOperator
from tests.operators.conftest import Jira


@pytest.fixture
def memory_fs():
    """fsspec's memory filesystem attached to Airflow's object storage as ``memory://``."""
    from airflow.sdk.io.store import _STORE_CACHE, attach

    fs = MemoryFileSystem()
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    attach(protocol="memory", fs=fs)
    yield fs
    _STORE_CACHE.pop("memory", None)
    fs.store.clear()


def export(jira: Jira, context, output_path, **kwargs):
    op = JiraSearchOperator(
        task_id="export", jql="project = ENG ORDER BY key", max_xcom_issues=10, output_path=output_path,
        jira_conn_id=jira.conn_id, **kwargs,
    )
    return op.execute(context)


def keys_in(text: str) -> list[str]:
    return [json.loads(line)["key"] for line in text.splitlines()]


def expected_keys(n: int) -> list[str]:
    return [f"ENG-{i}" for i in range(1, n + 1)]


def test_a_file_url_writes_the_file_it_names_and_nothing_under_a_url_shaped_name(jira: Jira, context, tmp_path, monkeypatch):
    from airflow.sdk import ObjectStoragePath

    jira.emu.seed_issues(project="ENG", count=120)
    monkeypatch.chdir(tmp_path)
    url = f"file://{tmp_path}/exports/eng.jsonl"

    result = export(jira, context, url)
    again = export(jira, context, ObjectStoragePath(f"file://{tmp_path}/exports/eng-2.jsonl"))

    assert result == {"path": str(tmp_path / "exports" / "eng.jsonl"), "count": 125}
    assert keys_in((tmp_path / "exports" / "eng.jsonl").read_text()) == expected_keys(125)
    assert keys_in((tmp_path / "exports" / "eng-2.jsonl").read_text()) == expected_keys(125)
    assert again["count"] == 125
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports"]  # no ./file:/... left behind


def test_a_registered_object_store_holds_exactly_the_issues(jira: Jira, context, tmp_path, monkeypatch, memory_fs):
    from airflow.sdk import ObjectStoragePath

    jira.emu.seed_issues(project="ENG", count=120)
    monkeypatch.chdir(tmp_path)

    by_url = export(jira, context, "memory://exports/jira/eng.jsonl")
    by_path = export(jira, context, ObjectStoragePath("memory://exports/jira/eng-2.jsonl"))

    # The path as Airflow's ObjectStoragePath writes it: memory:/// with universal-pathlib 0.2, memory:// with 0.3.
    assert by_url["count"] == by_path["count"] == 125
    assert by_url["path"] in ("memory:///exports/jira/eng.jsonl", "memory://exports/jira/eng.jsonl")
    assert by_path["path"] in ("memory:///exports/jira/eng-2.jsonl", "memory://exports/jira/eng-2.jsonl")
    assert keys_in(memory_fs.cat("/exports/jira/eng.jsonl").decode()) == expected_keys(125)
    assert keys_in(memory_fs.cat("/exports/jira/eng-2.jsonl").decode()) == expected_keys(125)
    assert not [name for name in memory_fs.find("/exports") if name.endswith(".part")]
    assert list(tmp_path.iterdir()) == []  # nothing on the local disk


def test_an_unregistered_scheme_fails_before_any_jira_call_naming_it(jira: Jira, context, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JiraConfigError, match=r"output_path.*scheme 'nosuch'") as raised:
        export(jira, context, "nosuch://bucket/eng.jsonl")
    with pytest.raises(JiraConfigError, match=r"scheme 's3'.*apache-airflow-providers-amazon"):
        export(jira, context, "s3://bucket/eng.jsonl")
    assert "output_path" in str(raised.value)
    assert [c for c in jira.api_calls() if "search" in c[1]] == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["local", "memory"])
def test_an_export_that_fails_midway_leaves_no_file_that_looks_complete(where, tmp_path, memory_fs):
    target = output.resolve_output(str(tmp_path / "eng.jsonl") if where == "local" else "memory://exports/eng.jsonl")
    if where == "memory":
        memory_fs.pipe("/exports/eng.jsonl", b'{"key":"OLD-1"}\n')  # yesterday's complete export

    def records():
        yield {"key": "ENG-1"}
        yield {"key": "ENG-2"}
        raise ConnectionError("Jira went away on page 2")

    with pytest.raises(ConnectionError):
        output.write_jsonl(target, records())

    if where == "local":
        assert list(tmp_path.iterdir()) == []
    else:
        assert memory_fs.cat("/exports/eng.jsonl") == b'{"key":"OLD-1"}\n'
        assert memory_fs.find("/exports") == ["/exports/eng.jsonl"]


def test_asset_outlets_get_events_that_say_what_was_written(jira: Jira, context, tmp_path):
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import OutletEventAccessors

    jira.emu.seed_issues(project="ENG", count=3)
    exported, listed = Asset("jira://eng/export"), Asset("jira://eng/listed")
    context = {**context, "outlet_events": OutletEventAccessors()}
    path = tmp_path / "eng.jsonl"

    JiraSearchOperator(
        task_id="export", jql="project = ENG", output_path=str(path), outlets=[exported], jira_conn_id=jira.conn_id
    ).execute(context)
    JiraSearchOperator(task_id="listed", jql="project = ENG", outlets=[listed], jira_conn_id=jira.conn_id).execute(context)

    assert context["outlet_events"][exported].extra == {"uri": path.resolve().as_uri(), "jql": "project = ENG", "count": 8}
    assert context["outlet_events"][listed].extra == {"jql": "project = ENG", "count": 8}


def test_counts_and_expand_are_templated_and_checked(jira: Jira, context):
    op = JiraSearchOperator(task_id="s", jql="project = ENG", page_size="{{ params.n }}", max_xcom_issues="nope",
                            jira_conn_id=jira.conn_id)
    assert {"page_size", "max_xcom_issues", "expand", "output_path"} <= set(op.template_fields)
    with pytest.raises(ValueError, match="max_xcom_issues must be a whole number"):
        op.execute(context)
