"""The rate-limit benchmark still runs end to end: a short load, its table, ratios and target line."""

from __future__ import annotations

import re


def test_rate_limit_mode_runs_the_paced_client_beside_the_plain_loop(run_bench) -> None:
    out = run_bench(
        "search_throughput.py", "--rate-limit", "40", "--calls", "60", "--threads", "2", "--quota-reset", "1"
    )

    for variant in ("plain", "unpaced", "paced"):
        assert re.search(rf"^{variant}\s+1\s+\d+\.\d\d", out, re.MULTILINE), out
    assert re.search(r"^ratio paced-2/plain calls/s: \d+\.\d\dx", out, re.MULTILINE), out
    assert re.search(r"^paced\s+429s\s+\d+; calls sent during the pause:\s+\d+", out, re.MULTILINE), out
    assert "targets (paced):" in out, out
