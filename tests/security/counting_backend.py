"""A secrets backend for the broker tests: it records every lookup, and is slow only for what it holds.

Configured through ``[secrets] backend_kwargs``: ``lookups`` is a file that gets one line per
``get_conn_value`` call (the connection id), ``connections`` a JSON file mapping connection ids to
``AIRFLOW_CONN_*``-style JSON documents. A connection it holds is answered after ``delay`` seconds,
as a remote backend (Vault, AWS) answers a found secret later than a missing one; anything else
is ``None`` at once, and Airflow goes on to the environment and the metadata DB.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from airflow.secrets.base_secrets import BaseSecretsBackend


class CountingSecretsBackend(BaseSecretsBackend):
    def __init__(self, lookups: str, connections: str, delay: float = 0.025) -> None:
        super().__init__()
        self.lookups = Path(lookups)
        self.connections = Path(connections)
        self.delay = delay

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        with self.lookups.open("a") as out:
            out.write(conn_id + "\n")
        held = json.loads(self.connections.read_text()) if self.connections.exists() else {}
        if conn_id not in held:
            return None
        time.sleep(self.delay)  # real: the latency of a remote backend is what the tests measure against
        return held[conn_id]

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        return None
