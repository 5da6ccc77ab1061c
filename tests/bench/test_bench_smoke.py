"""The search benchmark still runs end to end: a small load, one run, and its ratio line."""

from __future__ import annotations

import re


def test_search_benchmark_runs_and_prints_the_provider_ratio(run_bench) -> None:
    out = run_bench("search_throughput.py", "--issues", "500", "--runs", "1")

    assert re.search(r"^ratio provider/plain issues/s: \d+\.\d\dx", out, re.MULTILINE), out


def test_search_benchmark_latency_mode_runs_the_parallel_variant_beside_the_plain_loop(run_bench) -> None:
    out = run_bench(
        "search_throughput.py",
        *("--issues", "300", "--runs", "1", "--latency", "0.01,0.0002"),
        *("--variants", "parallel,partition", "--parallelism", "2"),
    )

    assert "latency mode: every REST answer 0.01 s late + 0.2 ms an issue" in out, out
    assert re.search(r"^ratio parallel-2/plain issues/s: \d+\.\d\dx", out, re.MULTILINE), out
    assert re.search(r"^ratio partition-2/plain issues/s: \d+\.\d\dx", out, re.MULTILINE), out
    assert "byte-identical across variants and runs: yes" in out, out
