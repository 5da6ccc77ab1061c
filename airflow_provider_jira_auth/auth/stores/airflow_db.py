"""Token stores in Airflow's metadata database: the connection itself, or a Variable.

They use the ORM, so they run where Airflow allows it: the api-server (through the token
broker plugin), the scheduler, the CLI and ``dag.test()``. Task and trigger processes reach
them through the broker (see ``auth/broker_client.py``).

A refresh takes a per-connection lock held across short transactions (see
``TokenStore.update``): PostgreSQL a session advisory lock, MySQL a named lock, SQLite (one
host by nature) a file lock beside the database file. A process that dies while holding the
lock loses its database connection or file, and with them the lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_jira_auth.auth.stores.base import TokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraTokenStoreError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["ConnectionTokenStore", "VariableTokenStore", "database_lock"]

# Longest wait for another process's refresh (which itself retries for at most two minutes).
LOCK_TIMEOUT = 150.0

log = logging.getLogger(__name__)

# Keys of the connection's extra that hold the rotating state. ``refresh_token`` is also the
# form field the user (or the consent step) fills in, so the connection always shows the live one.
EXTRA_REFRESH_TOKEN = "refresh_token"
EXTRA_ACCESS_TOKEN = "access_token"
EXTRA_EXPIRES_AT = "access_token_expires_at"
EXTRA_ROTATED_AT = "refresh_token_rotated_at"
EXTRA_GRANTED_SCOPES = "granted_scopes"
EXTRA_REFRESH_STARTED_AT = "refresh_started_at"


def state_from_extra(extra: dict[str, Any]) -> TokenState | None:
    refresh_token = extra.get(EXTRA_REFRESH_TOKEN) or extra.get(f"extra__jira_cloud__{EXTRA_REFRESH_TOKEN}")
    if not refresh_token:
        return None
    return TokenState.from_dict(
        {
            "refresh_token": refresh_token,
            "access_token": extra.get(EXTRA_ACCESS_TOKEN),
            "expires_at": extra.get(EXTRA_EXPIRES_AT),
            "scopes": extra.get(EXTRA_GRANTED_SCOPES) or (),
            "rotated_at": extra.get(EXTRA_ROTATED_AT),
            "refresh_started_at": extra.get(EXTRA_REFRESH_STARTED_AT),
        }
    )


def state_into_extra(extra: dict[str, Any], state: TokenState) -> dict[str, Any]:
    extra = dict(extra)
    extra.pop(f"extra__jira_cloud__{EXTRA_REFRESH_TOKEN}", None)
    extra[EXTRA_REFRESH_TOKEN] = state.refresh_token
    extra[EXTRA_ACCESS_TOKEN] = state.access_token
    extra[EXTRA_EXPIRES_AT] = state.expires_at
    extra[EXTRA_ROTATED_AT] = state.rotated_at
    extra[EXTRA_GRANTED_SCOPES] = " ".join(state.scopes)
    extra[EXTRA_REFRESH_STARTED_AT] = state.refresh_started_at
    return extra


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL advisory locks."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def database_lock(name: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive lock called ``name``, across transactions, until the block ends.

    The lock lives on a database connection of its own (PostgreSQL, MySQL) or an open file
    (SQLite), so it also ends when the process dies, whatever it was doing.
    """
    from airflow import settings
    from sqlalchemy import text

    engine = settings.engine
    dialect = engine.dialect.name
    deadline = time.monotonic() + timeout
    if dialect == "sqlite":
        lock_path = Path(f"{engine.url.database or 'airflow'}.{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock")
        with lock_path.open("a") as handle:
            _wait_for(lambda: _try_flock(handle), deadline, name)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if dialect == "postgresql":
        take = text("SELECT pg_try_advisory_lock(:key)").bindparams(key=_lock_key(name))
        give = text("SELECT pg_advisory_unlock(:key)").bindparams(key=_lock_key(name))
    elif dialect == "mysql":
        take = text("SELECT GET_LOCK(:name, 0)").bindparams(name=name[:64])
        give = text("SELECT RELEASE_LOCK(:name)").bindparams(name=name[:64])
    else:
        raise JiraTokenStoreError(f"no lock for the {dialect!r} metadata database")
    with engine.connect() as connection:
        _wait_for(lambda: bool(connection.execute(take).scalar()), deadline, name)
        try:
            yield
        finally:
            connection.execute(give)
            connection.commit()


_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


@contextmanager
def _process_lock(name: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    with _process_locks_guard:
        lock = _process_locks.setdefault(name, threading.Lock())
    if not lock.acquire(timeout=timeout):
        raise JiraTokenStoreError(f"timed out waiting for the lock {name!r}: another thread holds it")
    try:
        yield
    finally:
        lock.release()


def _try_flock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _wait_for(attempt: Any, deadline: float, name: str) -> None:
    delay = 0.005
    while not attempt():
        if time.monotonic() > deadline:
            raise JiraTokenStoreError(f"timed out waiting for the lock {name!r}: another process holds it")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class _MetadataDbStore(TokenStore):
    """Token state in a metadata-DB row; each read and write is a short transaction of its own."""

    def _read(self, session: Session, *, for_update: bool = False) -> TokenState | None:
        raise NotImplementedError

    def _write(self, session: Session, new: TokenState) -> None:
        raise NotImplementedError

    @property
    def lock_name(self) -> str:
        return f"jira_cloud_token:{self.conn_id}"

    def load(self) -> TokenState | None:
        from airflow.utils.session import create_session

        with create_session() as session:
            return self._read(session)

    @contextmanager
    def lock(self) -> Iterator[None]:
        # One database waiter per process and connection: threads of one process (the api-server's
        # broker serves many tasks at once) queue here instead of each holding a pooled database
        # connection while polling for the lock.
        with _process_lock(self.lock_name), database_lock(self.lock_name):
            yield

    def save(self, new: TokenState, previous: TokenState | None) -> None:
        from airflow.utils.session import create_session

        with create_session() as session:  # commits on leaving the block
            stored = self._read(session, for_update=True)
            if (
                previous is not None
                and stored is not None
                and stored.refresh_token not in (previous.refresh_token, new.refresh_token)
            ):
                raise JiraTokenStoreError(
                    f"the refresh token in the {self.describe()} was replaced outside the provider's lock "
                    "(a new consent, or an edit?); keeping that one"
                )
            self._write(session, new)


class ConnectionTokenStore(_MetadataDbStore):
    """The connection itself, in the metadata database: its extra holds the live refresh token."""

    kind = "connection"

    def describe(self) -> str:
        return f"connection {self.conn_id!r} in the metadata database"

    def _row(self, session: Session, for_update: bool = False) -> Any:
        from airflow.models.connection import Connection
        from sqlalchemy import select

        query = select(Connection).where(Connection.conn_id == self.conn_id)
        conn = session.scalar(query.with_for_update() if for_update else query)
        if conn is None:
            raise JiraTokenStoreError(
                f"connection {self.conn_id!r} is not in the metadata database (it comes from an environment "
                "variable or a secrets backend, which Airflow cannot write): set token_store to 'variable' "
                "in its extra, or name a store class of your own"
            )
        return conn

    def _read(self, session: Session, *, for_update: bool = False) -> TokenState | None:
        return state_from_extra(self._row(session, for_update).extra_dejson)

    def _write(self, session: Session, new: TokenState) -> None:
        conn = self._row(session)
        conn.set_extra(json.dumps(state_into_extra(conn.extra_dejson, new)))
        session.flush()


class VariableTokenStore(_MetadataDbStore):
    """An Airflow Variable (Fernet-encrypted), for connections Airflow cannot write.

    On first use it is seeded from the connection's ``refresh_token``; from then on the
    Variable, not the connection, holds the live token.
    """

    kind = "variable"

    def __init__(self, conn_id: str, seed_refresh_token: str | None = None, key: str | None = None) -> None:
        super().__init__(conn_id)
        self.key = key or f"jira_cloud_token__{conn_id}"
        self._seed = seed_refresh_token

    def describe(self) -> str:
        return f"Airflow Variable {self.key!r} (connection {self.conn_id!r})"

    def _row(self, session: Session, for_update: bool = False) -> Any:
        from airflow.models.variable import Variable
        from sqlalchemy import select

        query = select(Variable).where(Variable.key == self.key)
        return session.scalar(query.with_for_update() if for_update else query)

    def _read(self, session: Session, *, for_update: bool = False) -> TokenState | None:
        row = self._row(session, for_update)
        if row is None:
            return TokenState(refresh_token=self._seed) if self._seed else None
        try:
            return TokenState.from_dict(json.loads(row.val))
        except (KeyError, TypeError, ValueError) as exc:
            raise JiraTokenStoreError(
                f"the {self.describe()} does not hold token state ({type(exc).__name__}); run the consent step "
                f"again: airflow-jira-auth authorize --conn-id {self.conn_id}"
            ) from None

    def _write(self, session: Session, new: TokenState) -> None:
        from airflow.models.variable import Variable

        row = self._row(session)
        value = json.dumps(new.to_dict())
        if row is None:
            row = Variable(key=self.key, val=value, description=f"OAuth token state of Jira connection {self.conn_id}")
            session.add(row)
        else:
            row.set_val(value)
        session.flush()
