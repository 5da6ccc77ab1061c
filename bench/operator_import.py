#!/usr/bin/env python
"""What importing the provider's operators costs DAG parsing, over ``import airflow.sdk``.

    python bench/operator_import.py [--runs 7] [--budget-ms 100]

A DAG file imports ``airflow.sdk`` and then the provider's classes; the DAG processor pays both
on every parse of a fresh process. Airflow's part is not ours to shrink, so the figure that
matters is what the provider adds on top. Each run is a fresh interpreter (imports are cached
per process) that times, with ``perf_counter``:

1. ``import airflow.sdk`` (and touching ``BaseOperator``, as a DAG file does);
2. then the provider modules a DAG file imports: the operators, the sensors and the notifier.

It also reports which heavy modules the provider import pulled in (``requests``, ``tenacity``,
the hook, the client): none should be, since they are deferred to task execution.

Prints the best and median of ``--runs`` for both steps, and PASS when the median added time is
under ``--budget-ms`` (100 ms) and no heavy module was imported; exit status 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROVIDER_MODULES = (
    "airflow_provider_jira_auth.operators.jira_cloud",
    "airflow_provider_jira_auth.operators.export",
    "airflow_provider_jira_auth.sensors.jira_cloud",
    "airflow_provider_jira_auth.notifications.jira_cloud",
)
#: Modules that belong to task execution, not to parsing.
HEAVY_MODULES = (
    "requests",
    "tenacity",
    "airflow_provider_jira_auth.hooks.jira_cloud",
    "airflow_provider_jira_auth.client.http",
    "airflow_provider_jira_auth.triggers.jira_cloud",
)

WORKER = f"""
import json, sys, time
sys.path.insert(0, {str(REPO)!r})
t0 = time.perf_counter()
import airflow.sdk
airflow.sdk.BaseOperator
t1 = time.perf_counter()
heavy_before = [m for m in {HEAVY_MODULES!r} if m in sys.modules]
for name in {PROVIDER_MODULES!r}:
    __import__(name)
t2 = time.perf_counter()
print(json.dumps({{
    "sdk_ms": (t1 - t0) * 1000,
    "added_ms": (t2 - t1) * 1000,
    "heavy": [m for m in {HEAVY_MODULES!r} if m in sys.modules and m not in heavy_before],
}}))
"""


def measure_once(env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise SystemExit(f"the import worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters to time (default %(default)s)")
    parser.add_argument("--budget-ms", type=float, default=100.0, help="largest median added time that passes")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    # Airflow reads its config on import: a throw-away home keeps the user's out of the figures.
    env.setdefault("AIRFLOW_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "jira-operator-import-bench"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    measure_once(env)  # warm the OS file cache and write Airflow's default config once

    runs = [measure_once(env) for _ in range(args.runs)]
    sdk = [float(r["sdk_ms"]) for r in runs]
    added = [float(r["added_ms"]) for r in runs]
    heavy = sorted({m for r in runs for m in r["heavy"]})  # type: ignore[union-attr]
    median_added = statistics.median(added)

    print(f"fresh interpreters: {args.runs} (Python {sys.version.split()[0]})")
    print(f"import airflow.sdk:                 best {min(sdk):8.1f} ms   median {statistics.median(sdk):8.1f} ms")
    print(f"+ operators, sensors, notifier:     best {min(added):8.1f} ms   median {median_added:8.1f} ms")
    print(f"heavy modules pulled in at parse time: {', '.join(heavy) or 'none'}")
    ok = median_added < args.budget_ms and not heavy
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}: the provider adds {median_added:.1f} ms (median) to DAG parsing; budget {args.budget_ms:g} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
