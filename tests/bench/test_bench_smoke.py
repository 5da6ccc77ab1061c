"""The search benchmark still runs end to end: a small load, one run, and its ratio line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "search_throughput.py"


def test_search_benchmark_runs_and_prints_the_provider_ratio() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--issues", "500", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"^ratio provider/plain issues/s: \d+\.\d\dx", proc.stdout, re.MULTILINE), output


def test_search_benchmark_latency_mode_runs_the_parallel_variant_beside_the_plain_loop() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--issues",
            "300",
            "--runs",
            "1",
            "--latency",
            "0.01,0.0002",
            "--variants",
            "parallel,partition",
            "--parallelism",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "latency mode: every REST answer 0.01 s late + 0.2 ms an issue" in proc.stdout, output
    assert re.search(r"^ratio parallel-2/plain issues/s: \d+\.\d\dx", proc.stdout, re.MULTILINE), output
    assert re.search(r"^ratio partition-2/plain issues/s: \d+\.\d\dx", proc.stdout, re.MULTILINE), output
    assert "byte-identical across variants and runs: yes" in proc.stdout, output
