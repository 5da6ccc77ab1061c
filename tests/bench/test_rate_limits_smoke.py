"""The rate-limit benchmark still runs end to end: a short load, its table, ratios and target line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "search_throughput.py"


def test_rate_limit_mode_runs_the_paced_client_beside_the_plain_loop() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--rate-limit", "40", "--calls", "60", "--threads", "2", "--quota-reset", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    for variant in ("plain", "unpaced", "paced"):
        assert re.search(rf"^{variant}\s+1\s+\d+\.\d\d", proc.stdout, re.MULTILINE), output
    assert re.search(r"^ratio paced-2/plain calls/s: \d+\.\d\dx", proc.stdout, re.MULTILINE), output
    assert re.search(r"^paced\s+429s\s+\d+; calls sent during the pause:\s+\d+", proc.stdout, re.MULTILINE), output
    assert "targets (paced):" in proc.stdout, output
