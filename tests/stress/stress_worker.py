"""One OS process of the rotation stress test: Jira calls through JiraCloudHook until a deadline.

Run as ``python -m tests.stress.stress_worker CONN_ID SECONDS GO_FILE``: imports everything,
prints ``ready``, waits until GO_FILE exists (so that all processes start together, after their
slow imports), then works for SECONDS and prints one JSON line:
{"calls": n, "failures": n, "errors": [...first few, each with how long its call took...]}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(conn_id: str, seconds: float, go_file: str) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    JiraCloudHook(conn_id).settings  # warm up imports and the connection lookup
    print("ready", flush=True)
    while not Path(go_file).exists():  # polling: the start signal is a file
        time.sleep(0.01)
    deadline = time.monotonic() + seconds
    calls = failures = 0
    errors: list[str] = []
    hook = None
    while time.monotonic() < deadline:
        # A new hook now and then, as new tasks would: no process keeps state between them
        # but what the store holds.
        if hook is None or calls % 25 == 0:
            hook = JiraCloudHook(conn_id)
        began = time.monotonic()
        try:
            hook.request("GET", "myself")
        except Exception as exc:
            failures += 1
            if len(errors) < 5:
                errors.append(f"{type(exc).__name__} after {time.monotonic() - began:.2f}s: {exc}")
        calls += 1
        # Ten calls a second per process: every process still meets each refresh window many
        # times over, while 16 of them leave the 2-core machine idle enough that a call is not
        # held up longer than the 0.5 s refresh margin (a token expiring in flight is a stall,
        # not a rotation race).
        time.sleep(0.1)
    print(json.dumps({"calls": calls, "failures": failures, "errors": errors}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3])
