"""The token broker's replay memory, shared by every api-server process through the metadata DB.

A signed request is accepted once: its nonce goes into a small table of this provider's own,
``jira_auth_broker_nonce``, whose primary key refuses a second insert of the same nonce, from
any process or replica on the same database. The table is created on first use (PostgreSQL,
MySQL and SQLite alike); rows older than twice the broker's time window are deleted now and
then, since a request that old is refused by its timestamp anyway. Dropping the table loses
nothing but the replay memory of the last few minutes; it is created again on the next request.
"""

from __future__ import annotations

import hashlib
import threading
import time

from airflow_provider_jira_auth.auth.broker_protocol import MAX_SKEW

TABLE = "jira_auth_broker_nonce"
#: a nonce is remembered this long: a request is inside the window at most MAX_SKEW after its
#: timestamp, which is at most MAX_SKEW before the moment it was first seen
KEEP = 2 * MAX_SKEW
#: how often one process deletes expired rows
PURGE_EVERY = 60.0

_CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (nonce VARCHAR(64) NOT NULL PRIMARY KEY, seen_at DOUBLE PRECISION NOT NULL)"


class NonceStore:
    """Accepts each (connection, nonce) pair once across every process using the metadata DB."""

    def __init__(self) -> None:
        self._ready = False
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def accept(self, conn_id: str, nonce: str, now: float | None = None) -> bool:
        """Record the pair; ``False`` when it was recorded before (a replay)."""
        from airflow import settings
        from sqlalchemy import text
        from sqlalchemy.exc import IntegrityError

        now = time.time() if now is None else now
        engine = settings.engine
        self._create_table(engine)
        key = hashlib.sha256(f"{conn_id}\x00{nonce}".encode()).hexdigest()
        try:
            with engine.begin() as connection:
                connection.execute(text(f"INSERT INTO {TABLE} (nonce, seen_at) VALUES (:nonce, :seen_at)"), {"nonce": key, "seen_at": now})
        except IntegrityError:
            return False
        except Exception:
            self._ready = False  # the table may have been dropped: create it again next time
            raise
        self._purge(engine, now)
        return True

    def _create_table(self, engine: object) -> None:
        if self._ready:
            return
        from sqlalchemy import inspect, text

        with self._lock:
            if self._ready:
                return
            try:
                with engine.begin() as connection:  # type: ignore[attr-defined]
                    connection.execute(text(_CREATE))
            except Exception:
                # Two processes creating it at once: PostgreSQL may report the loser's
                # "IF NOT EXISTS" as a duplicate type. The table is there either way.
                if not inspect(engine).has_table(TABLE):
                    raise
            self._ready = True

    def _purge(self, engine: object, now: float) -> None:
        if now < self._next_purge:
            return
        from sqlalchemy import text

        self._next_purge = now + PURGE_EVERY
        try:
            with engine.begin() as connection:  # type: ignore[attr-defined]
                connection.execute(text(f"DELETE FROM {TABLE} WHERE seen_at < :cutoff"), {"cutoff": now - KEEP})
        except Exception:
            pass  # expired rows stay until the next purge; they refuse nothing a timestamp would not
