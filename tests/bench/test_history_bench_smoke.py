"""The history benchmark still runs end to end: a small load, and both exports carry the same history."""

from __future__ import annotations


def test_history_benchmark_runs_and_both_ways_export_the_same_history(run_bench) -> None:
    out = run_bench("history_export.py", "--issues", "30", "--changes", "45", "--comments", "25", "--latency", "0")

    assert "same history in both exports: yes" in out, out
    assert "complete_history vs per-issue:" in out, out
