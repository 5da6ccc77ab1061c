"""An export into a shared directory: a name another user planted is never followed.

Another local user who may write to the output directory plants a symbolic link where the export
used to write its partial file (``eng.jsonl.part``), pointing at a file the worker may write. The
export must neither write through it nor rename it into place; the file it leaves is its own,
with the mode its docstring promises (0644 less the umask: readable as the umask allows, never
writable by others). Run as a person would: the incremental export against the emulator.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_jira_auth.operators import output
from airflow_provider_jira_auth.operators.export import JiraIncrementalExportOperator
from airflow_provider_jira_auth.testing import JiraCloudEmulator

PRECIOUS = b"the worker's own settings\n"


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def run_export(emu: JiraCloudEmulator, path: Path | str) -> dict:
    end = datetime.now(timezone.utc).replace(microsecond=0)
    return JiraIncrementalExportOperator(
        task_id="export", jql="project = ENG ORDER BY key", output_path=str(path), settle=0
    ).execute({"data_interval_start": end, "data_interval_end": end, "logical_date": end})


@pytest.fixture
def shared(jira_cloud_connection: JiraCloudEmulator, tmp_path: Path) -> tuple[JiraCloudEmulator, Path, Path]:
    """Two issues to export, a shared output directory, and a file elsewhere the worker may write."""
    jira_cloud_connection.seed_issues("ENG", 2)
    victim = tmp_path / "home" / "settings.json"
    victim.parent.mkdir()
    victim.write_bytes(PRECIOUS)
    directory = tmp_path / "shared"
    directory.mkdir()
    return jira_cloud_connection, directory, victim


def assert_exported(path: Path) -> None:
    assert not path.is_symlink() and path.is_file()
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["ENG-1", "ENG-2"]


def test_a_link_planted_at_the_old_partial_name_is_neither_written_through_nor_moved_into_place(shared) -> None:
    emu, directory, victim = shared
    (directory / "eng.jsonl.part").symlink_to(victim)

    result = run_export(emu, directory / "eng.jsonl")

    assert victim.read_bytes() == PRECIOUS
    assert_exported(directory / "eng.jsonl")
    assert result["count"] == 2
    # The planted link is not the export's to delete; nothing else is left behind.
    assert sorted(p.name for p in directory.iterdir()) == ["eng.jsonl", "eng.jsonl.part"]


def test_a_link_at_the_exact_partial_name_is_skipped_for_a_fresh_one(shared, monkeypatch) -> None:
    """Even a guessed random name: O_EXCL refuses the existing link, and another name is drawn."""
    emu, directory, victim = shared
    names = iter(["guessed0guessed0", "guessed1guessed1", "fresh000fresh000"])
    monkeypatch.setattr(output.secrets, "token_hex", lambda n: next(names))
    (directory / ".eng.jsonl.guessed0guessed0.part").symlink_to(victim)
    # A dangling link: O_CREAT alone would create the file it names.
    (directory / ".eng.jsonl.guessed1guessed1.part").symlink_to(directory / "missing")

    run_export(emu, directory / "eng.jsonl")

    assert victim.read_bytes() == PRECIOUS
    assert_exported(directory / "eng.jsonl")
    assert not (directory / "missing").exists()


def test_a_link_planted_at_the_target_is_replaced_not_followed(shared) -> None:
    emu, directory, victim = shared
    (directory / "eng.jsonl").symlink_to(victim)

    run_export(emu, directory / "eng.jsonl")

    assert victim.read_bytes() == PRECIOUS
    assert_exported(directory / "eng.jsonl")


def test_a_file_object_storage_path_gets_the_same_protection(shared) -> None:
    from airflow.sdk import ObjectStoragePath

    emu, directory, victim = shared
    (directory / "eng.jsonl.part").symlink_to(victim)
    target = ObjectStoragePath((directory / "eng.jsonl").as_uri())

    count = output.write_jsonl(target, [{"key": "ENG-1"}, {"key": "ENG-2"}])

    assert count == 2 and victim.read_bytes() == PRECIOUS
    assert_exported(directory / "eng.jsonl")


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o644), (0o000, 0o644), (0o077, 0o600)])
def test_the_export_is_readable_as_the_umask_allows_and_never_writable_by_others(shared, mask, mode) -> None:
    emu, directory, _ = shared
    previous = os.umask(mask)
    try:
        run_export(emu, directory / "eng.jsonl")
    finally:
        os.umask(previous)

    assert stat.S_IMODE((directory / "eng.jsonl").stat().st_mode) == mode


def test_a_rerun_replaces_yesterdays_file_and_leaves_nothing_else(shared, umask) -> None:
    emu, directory, _ = shared
    (directory / "eng.jsonl").write_text('{"key":"OLD-1"}\n')

    run_export(emu, directory / "eng.jsonl")

    assert_exported(directory / "eng.jsonl")
    assert [p.name for p in directory.iterdir()] == ["eng.jsonl"]
