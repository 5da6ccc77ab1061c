"""The history benchmark still runs end to end: a small load, and both exports carry the same history."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "history_export.py"


def test_history_benchmark_runs_and_both_ways_export_the_same_history() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--issues", "30", "--changes", "45", "--comments", "25", "--latency", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "same history in both exports: yes" in proc.stdout, output
    assert "complete_history vs per-issue:" in proc.stdout, output
