"""One short-lived process, as one task would be: ``python -m tests.stress.hook_call CONN_ID ACTION``.

ACTION ``myself`` calls GET /myself; ``keep_alive`` forces a refresh. Prints ``ok`` on success.
"""

from __future__ import annotations

import sys


def main(conn_id: str, action: str) -> None:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    hook = JiraCloudHook(conn_id)
    if action == "keep_alive":
        hook.keep_alive(max_age_days=0)
    else:
        hook.request("GET", "myself")
    print("ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
