"""bench/refresh_economy.py still runs and still shows the provider refreshing once per token life."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_refresh_economy_runs_and_passes_on_a_short_day():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "refresh_economy.py"), "--tasks", "60", "--hours", "3"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "ratio naive/provider token-endpoint calls:" in result.stdout
    assert "PASS" in result.stdout
