"""Runs a benchmark script the way a user does (``python bench/<script> ...``) for the smoke tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


@pytest.fixture
def run_bench() -> Callable[..., str]:
    """``run_bench("search_throughput.py", "--runs", "1")``: the script's standard output once it
    exited 0 (otherwise the test fails with the ends of its output)."""
    return _run
