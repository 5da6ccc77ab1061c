"""bench/refresh_economy.py still runs and still shows the provider refreshing once per token life."""

from __future__ import annotations


def test_refresh_economy_runs_and_passes_on_a_short_day(run_bench):
    out = run_bench("refresh_economy.py", "--tasks", "60", "--hours", "3")

    assert "ratio naive/provider token-endpoint calls:" in out, out[-2000:]
    assert "PASS" in out, out[-2000:]
