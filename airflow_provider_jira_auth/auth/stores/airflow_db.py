"""Token stores in Airflow's metadata database: the connection itself, or a Variable.

They use the ORM, so they run where Airflow allows it: the api-server (through the token
broker plugin), the scheduler, the CLI and ``dag.test()``. Task and trigger processes reach
them through the broker (see ``auth/broker_client.py``).

A refresh takes a per-connection lock held across short transactions (see
``TokenStore.refreshing``): PostgreSQL a session advisory lock, MySQL a named lock, SQLite (one
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
from airflow_provider_jira_auth.client.errors import JiraTokenStoreConflictError, JiraTokenStoreError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["ConnectionTokenStore", "VariableTokenStore", "database_lock"]

# Longest wait for another process's refresh (which itself retries for at most two minutes).
LOCK_TIMEOUT = 150.0

log = logging.getLogger(__name__)

# Keys of the connection's extra that hold the rotating state. ``refresh_token`` is also the
# form field the user (or the consent step) fills in, so the connection always shows the live one.
# No key but the secrets contains "token": Airflow masks such keys (Airflow's secrets masker, ``should_hide_value_for_key``).
EXTRA_REFRESH_TOKEN = "refresh_token"
EXTRA_ACCESS_TOKEN = "access_token"
EXTRA_EXPIRES_AT = "access_expires_at"
EXTRA_ROTATED_AT = "refresh_rotated_at"
EXTRA_GRANTED_SCOPES = "granted_scopes"
EXTRA_REFRESH_STARTED_AT = "refresh_started_at"
EXTRA_GRANT_ID = "grant_id"
EXTRA_LIFETIME = "access_lifetime"
# Names used before 0.2, read when the new ones are absent and removed on the next write.
_LEGACY_KEYS = {EXTRA_EXPIRES_AT: "access_token_expires_at", EXTRA_ROTATED_AT: "refresh_token_rotated_at"}


def _extra_get(extra: dict[str, Any], key: str) -> Any:
    value = extra.get(key)
    if value is None and key in _LEGACY_KEYS:
        value = extra.get(_LEGACY_KEYS[key])
    return value


def state_from_extra(extra: dict[str, Any]) -> TokenState | None:
    refresh_token = extra.get(EXTRA_REFRESH_TOKEN) or extra.get(f"extra__jira_cloud__{EXTRA_REFRESH_TOKEN}")
    if not refresh_token:
        return None
    return TokenState.from_dict(
        {
            "refresh_token": refresh_token,
            "access_token": extra.get(EXTRA_ACCESS_TOKEN),
            "expires_at": _extra_get(extra, EXTRA_EXPIRES_AT),
            "scopes": extra.get(EXTRA_GRANTED_SCOPES) or (),
            "rotated_at": _extra_get(extra, EXTRA_ROTATED_AT),
            "refresh_started_at": extra.get(EXTRA_REFRESH_STARTED_AT),
            "lifetime": extra.get(EXTRA_LIFETIME),
        }
    )


def state_into_extra(extra: dict[str, Any], state: TokenState, grant_id: str | None = None) -> dict[str, Any]:
    """``extra`` with ``state`` written in; ``grant_id`` pins the grant the state belongs to."""
    extra = dict(extra)
    extra.pop(f"extra__jira_cloud__{EXTRA_REFRESH_TOKEN}", None)
    for legacy in _LEGACY_KEYS.values():
        extra.pop(legacy, None)
    extra[EXTRA_REFRESH_TOKEN] = state.refresh_token
    extra[EXTRA_ACCESS_TOKEN] = state.access_token
    extra[EXTRA_EXPIRES_AT] = state.expires_at
    extra[EXTRA_ROTATED_AT] = state.rotated_at
    extra[EXTRA_GRANTED_SCOPES] = " ".join(state.scopes)
    extra[EXTRA_REFRESH_STARTED_AT] = state.refresh_started_at
    extra[EXTRA_LIFETIME] = state.lifetime
    if grant_id:
        extra[EXTRA_GRANT_ID] = grant_id
    return extra


def stored_grant_id(conn: Any) -> str | None:
    """The grant a stored ``jira_cloud`` connection holds, as its own settings would compute it."""
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    try:
        return JiraConnectionSettings.of(conn.conn_id, conn).grant_id
    except Exception:  # a broken connection shares nothing
        return None


def connections_of_grant(session: Session, grant_id: str, *, store_kind: str | None = None) -> list[Any]:
    """The ``jira_cloud`` connections in the metadata DB that hold ``grant_id``.

    With ``store_kind``, only those whose ``grant_store`` is that kind. Copies of one connection
    (Airflow's Test button tests a copy under a random id; a person may duplicate a connection)
    hold the same grant: they must share its one live token state, or the first rotation
    retires the refresh token the others still hold (Atlassian's rotating refresh tokens: a reuse leeway, then the grant is revoked; docs/token-rotation.md).
    """
    from airflow.models.connection import Connection
    from sqlalchemy import select

    from airflow_provider_jira_auth.settings import extra_value

    found = []
    for conn in session.scalars(select(Connection).where(Connection.conn_type == "jira_cloud").order_by(Connection.id)):
        if stored_grant_id(conn) != grant_id:
            continue
        if store_kind is not None and str(extra_value(conn.extra_dejson, "grant_store") or "connection") != store_kind:
            continue
        found.append(conn)
    return found


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
                raise JiraTokenStoreConflictError(
                    f"the refresh token in the {self.describe()} was replaced outside the provider's lock "
                    "(a new consent, or an edit?); keeping that one"
                )
            self._write(session, new)


class ConnectionTokenStore(_MetadataDbStore):
    """The connection itself, in the metadata database: its extra holds the live refresh token.

    The state belongs to the grant, not to one connection id: every stored connection holding
    the same grant (``grant_id``; a duplicate of a connection, or the copy Airflow's Test button
    makes under a random id) reads the newest state among them and every write updates all of
    them, under one lock per grant. So no copy is left holding a retired refresh token.

    :param conn_id: the connection.
    :param grant_id: the grant it holds (``JiraConnectionSettings.grant_id``); without it, only
        the connection's own row is used.
    """

    kind = "connection"

    def __init__(self, conn_id: str, grant_id: str | None = None) -> None:
        super().__init__(conn_id)
        self.grant_id = grant_id

    def describe(self) -> str:
        return f"connection {self.conn_id!r} in the metadata database"

    @property
    def lock_name(self) -> str:
        return f"jira_cloud_grant:{self.grant_id}" if self.grant_id else f"jira_cloud_token:{self.conn_id}"

    def load(self) -> TokenState | None:
        # Fast path: a stored connection's own row is current, because every rotation writes
        # every row of the grant. The whole grant is read under the lock (load_locked, save).
        from airflow.utils.session import create_session

        with create_session() as session:
            return self._read(session, whole_grant=False)

    def load_locked(self) -> TokenState | None:
        from airflow.utils.session import create_session

        with create_session() as session:
            return self._read(session)

    def _rows(self, session: Session, for_update: bool = False, *, whole_grant: bool = True) -> list[Any]:
        from airflow.models.connection import Connection
        from sqlalchemy import select

        query = select(Connection).where(Connection.conn_id == self.conn_id)
        own = session.scalar(query.with_for_update() if for_update else query)
        rows = [own] if own is not None else []
        if self.grant_id and (whole_grant or not rows):
            rows += [
                conn for conn in connections_of_grant(session, self.grant_id, store_kind="connection")
                if conn.conn_id != self.conn_id
            ]
        if not rows:
            raise JiraTokenStoreError(
                f"connection {self.conn_id!r} is not in the metadata database, and no stored connection holds "
                "its OAuth grant (it comes from an environment variable or a secrets backend, which Airflow "
                "cannot write): set grant_store to 'variable' in its extra, or name a store class of your own"
            )
        return rows

    def _read(self, session: Session, *, for_update: bool = False, whole_grant: bool = True) -> TokenState | None:
        rows = self._rows(session, for_update, whole_grant=whole_grant)
        states = [state_from_extra(conn.extra_dejson) for conn in rows]
        # Copies that rotated before they were linked by grant_id disagree: the newest is live.
        known = [state for state in states if state is not None]
        return max(known, key=lambda state: state.rotated_at or 0.0) if known else None

    def _write(self, session: Session, new: TokenState) -> None:
        from airflow_provider_jira_auth.settings import pin_broker_secret

        for conn in self._rows(session):
            # A connection without broker_secret signs broker requests with one derived from the
            # refresh token replaced here: pinned first, so tasks' keys survive the rotation.
            extra = pin_broker_secret(conn.extra_dejson, conn.conn_id)
            conn.set_extra(json.dumps(state_into_extra(extra, new, self.grant_id)))
        session.flush()


#: Variables that hold a grant's token state: the key keeps "token" so Airflow masks the value.
VARIABLE_PREFIX = "jira_cloud_token__"


class VariableTokenStore(_MetadataDbStore):
    """An Airflow Variable (Fernet-encrypted), for connections Airflow cannot write.

    The Variable is named after the grant (``jira_cloud_token__grant_<grant_id>``), so every
    connection holding the same grant, and the copy Airflow's Test button makes, share it. On
    first use it is seeded from the connection's ``refresh_token``; from then on the Variable,
    not the connection, holds the live token. A Variable named after the connection id (before
    0.2) is read when the grant's is missing, and replaced by it on the next write.
    """

    kind = "variable"

    def __init__(
        self,
        conn_id: str,
        seed_refresh_token: str | None = None,
        key: str | None = None,
        *,
        grant_id: str | None = None,
    ) -> None:
        super().__init__(conn_id)
        self.grant_id = grant_id
        self.legacy_key = f"{VARIABLE_PREFIX}{conn_id}"
        self.key = key or (f"{VARIABLE_PREFIX}grant_{grant_id}" if grant_id else self.legacy_key)
        self._seed = seed_refresh_token
        # The legacy Variable the state was last read from, deleted by the next write. Set only,
        # never cleared, so a concurrent unlocked read cannot make a write forget it.
        self._legacy_read: str | None = None

    def describe(self) -> str:
        return f"Airflow Variable {self.key!r} (connection {self.conn_id!r})"

    @property
    def lock_name(self) -> str:
        return f"jira_cloud_grant:{self.grant_id}" if self.grant_id else f"jira_cloud_token:{self.conn_id}"

    def _variable(self, session: Session, key: str, for_update: bool = False) -> Any:
        from airflow.models.variable import Variable
        from sqlalchemy import select

        query = select(Variable).where(Variable.key == key)
        return session.scalar(query.with_for_update() if for_update else query)

    def _legacy_keys(self, session: Session) -> list[str]:
        """Variables named after a connection holding this grant (the connection's own first)."""
        if self.key == self.legacy_key:
            return []
        keys = [self.legacy_key]
        if self.grant_id:
            keys += [f"{VARIABLE_PREFIX}{conn.conn_id}" for conn in connections_of_grant(session, self.grant_id)]
            keys += [f"{VARIABLE_PREFIX}{conn_id}" for conn_id in _env_connections_of_grant(self.grant_id)]
        return list(dict.fromkeys(keys))

    def _row(self, session: Session, for_update: bool = False) -> Any:
        row = self._variable(session, self.key, for_update)
        if row is None:
            for key in self._legacy_keys(session):
                row = self._variable(session, key, for_update)
                if row is not None:
                    self._legacy_read = key
                    break
        return row

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

        value = json.dumps(new.to_dict())
        row = self._variable(session, self.key)
        if row is None:
            row = Variable(key=self.key, val=value, description=f"OAuth token state of Jira connection {self.conn_id}")
            session.add(row)
        else:
            row.set_val(value)
        # A legacy Variable (named after a connection id) now holds a retired token: remove it,
        # so nothing can ever send it again. Only the one this store read from (and the
        # connection's own) can hold this grant's state: no scan of every connection per write.
        stale = {self.legacy_key, self._legacy_read} - {None, self.key}
        for key in sorted(stale):  # type: ignore[type-var]
            legacy = self._variable(session, key)
            if legacy is not None:
                session.delete(legacy)
        session.flush()


def _env_connections_of_grant(grant_id: str) -> list[str]:
    """Ids of ``AIRFLOW_CONN_*`` connections of this process's environment that hold ``grant_id``."""
    import os

    from airflow.models.connection import Connection

    found = []
    for name, value in os.environ.items():
        if not name.startswith("AIRFLOW_CONN_") or "jira" not in value.lower():
            continue
        conn_id = name[len("AIRFLOW_CONN_"):].lower()
        try:
            if value.lstrip().startswith("{"):
                conn = Connection.from_json(value, conn_id=conn_id)
            else:
                conn = Connection(conn_id=conn_id, uri=value)
        except Exception:
            continue
        if conn.conn_type == "jira_cloud" and stored_grant_id(conn) == grant_id:
            found.append(conn_id)
    return found
