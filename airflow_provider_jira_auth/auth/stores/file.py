"""A token store in a JSON file, locked with ``flock``: safe across processes on one host."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import stat
import time
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow_provider_jira_auth.auth.stores.base import TokenStore
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraTokenStoreConflictError, JiraTokenStoreError

if TYPE_CHECKING:
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
#: the directory the default token files live in, under ``$AIRFLOW_HOME``
TOKEN_DIR_NAME = "jira_auth_tokens"
# The longest "<name>.json" kept as it is: its temporary twin (".<name>.json.XXXXXXXX.tmp", 14
# bytes more) must still fit the 255 bytes a file name may have.
_MAX_FILE_NAME = 241


LOCK_TIMEOUT = 150.0


class FileTokenStore(TokenStore):
    """Keeps the token state in a JSON file only its owner can read (mode 0600).

    Refreshes serialize on an exclusive ``fcntl.flock`` of a sidecar ``<path>.lock`` file, so every
    process *on one host* (workers, the triggerer, the CLI) shares one current state. It is not
    safe across hosts: ``flock`` does not lock between machines, and on NFS it may not lock at
    all. For several hosts use a store backed by a shared database.

    Writes go to a temporary file in the same directory and replace the old file with
    ``os.replace``, so a reader sees the old state or the new one, never half a file; that is why
    :meth:`load` needs no lock.

    Chosen for a connection with extra ``grant_store`` = ``file`` (or the class path
    ``airflow_provider_jira_auth.auth.stores.file.FileTokenStore``) and ``grant_file`` = the path
    (default ``$AIRFLOW_HOME/jira_auth_tokens/grant-<grant_id>.json``, shared by every connection
    holding the same grant).

    The file records the grant it belongs to: a connection holding another grant that is pointed
    at it is refused, instead of silently calling Jira as the other grant's user.

    :param conn_id: the connection whose token state this store keeps.
    :param path: the JSON file; its directory is created (mode 0700) when missing.
    :param seed_refresh_token: the state to start from while the file does not exist yet (the
        connection's consented refresh token); from the first refresh on, the file is the truth.
        Do not delete the file to "reset" it: the seed is retired by then, and sending it after
        Atlassian's reuse leeway revokes the grant. Consent again instead.
    :param grant_id: the grant the state belongs to (``JiraConnectionSettings.grant_id``).
    :param legacy_path: a file written before 0.2 (named after the connection id), read while
        ``path`` does not exist yet, and deleted after the first save. Only a regular file in
        ``path``'s own directory that records this connection id counts as one: anything else (a
        link, another connection's file, a path elsewhere) is neither read nor deleted.
    """

    kind = "file"
    # Every process on the host takes the flock itself: no need to go through the token broker.
    works_in_workers = True

    def __init__(
        self,
        conn_id: str,
        path: str | os.PathLike[str],
        *,
        seed_refresh_token: str | None = None,
        grant_id: str | None = None,
        legacy_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(conn_id)
        self.path = Path(path).expanduser()
        self._seed = seed_refresh_token
        self.grant_id = grant_id
        self.legacy_path = Path(legacy_path).expanduser() if legacy_path else None
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        # flock alone would exclude threads too (each lock() opens its own descriptor); this lock
        # keeps a process's waiting threads from each holding an open descriptor meanwhile.
        self._thread_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: JiraConnectionSettings) -> FileTokenStore:
        from airflow_provider_jira_auth.settings import extra_value

        configured = extra_value(settings.extra, "grant_file")
        grant_id = settings.grant_id
        if configured or not grant_id:
            path, legacy = configured or default_path(settings.conn_id), None
        else:
            # Pre-0.2 files were "<conn_id>.json"; only an id that is a plain file name can have
            # one inside the token directory (see token_file_name).
            plain = _is_plain_name(settings.conn_id)
            path, legacy = default_path(f"grant-{grant_id}"), default_path(settings.conn_id) if plain else None
        return cls(settings.conn_id, path, seed_refresh_token=settings.refresh_token, grant_id=grant_id, legacy_path=legacy)

    def __repr__(self) -> str:
        return f"FileTokenStore({self.conn_id!r}, {str(self.path)!r})"

    def describe(self) -> str:
        return f"file store {str(self.path)!r} of connection {self.conn_id!r}"

    def seed(self, state: TokenState) -> None:
        """Create (or replace) the file with ``state``, e.g. after the consent step."""
        with self.lock():
            self.save(state, None)

    def load(self) -> TokenState | None:
        try:
            return self._parse(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise JiraTokenStoreError(f"cannot read the {self.describe()}: {exc}") from exc
        legacy = self._own_legacy_file()
        if legacy is not None:
            return self._parse(legacy)
        return TokenState(refresh_token=self._seed) if self._seed else None

    def _own_legacy_file(self) -> str | None:
        """The pre-0.2 file's text, if it is one this store wrote: else ``None``, and it is left alone.

        It must sit in the directory of :attr:`path` (the token directory), be a regular file (a
        link is not followed) and record this connection id, as every file this store ever wrote
        does. A file that fails any of these is not this connection's state, and deleting it
        after the first save would destroy something that is not ours.
        """
        legacy = self.legacy_path
        if legacy is None or legacy == self.path:
            return None
        try:
            same_directory = os.path.samefile(legacy.parent, self.path.parent)
        except OSError:  # either directory missing: no legacy file to speak of
            return None
        if not same_directory or legacy.name in ("", ".", ".."):
            return None
        try:
            fd = os.open(legacy, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symbolic link; anything else: not readable as ours
            log.warning("Jira token store: left %s alone, it is not a file this store wrote (%s)", legacy, exc.strerror)
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
                log.warning("Jira token store: left %s alone, it is not a file this store wrote", legacy)
                return None
            with os.fdopen(os.dup(fd), encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            return None
        finally:
            os.close(fd)
        try:
            recorded = json.loads(text).get("conn_id")
        except (ValueError, AttributeError):
            recorded = None
        if recorded != self.conn_id:
            log.warning(
                "Jira token store: left %s alone, it does not hold the state of connection %r", legacy, self.conn_id
            )
            return None
        return text

    def _parse(self, text: str) -> TokenState:
        try:
            data = json.loads(text)
            state = TokenState.from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise JiraTokenStoreError(
                f"the {self.describe()} is not a valid token state ({type(exc).__name__}); restore it, or "
                f"consent again to write a new one (airflow-jira-auth authorize --conn-id {self.conn_id})"
            ) from None
        owner = data.get("grant_id")
        if owner and self.grant_id and owner != self.grant_id:
            raise JiraTokenStoreError(
                f"the {self.describe()} holds the tokens of another OAuth grant (written for connection "
                f"{data.get('conn_id')!r}); connections with different grants cannot share a token file: give "
                f"connection {self.conn_id!r} its own grant_file, or leave grant_file empty"
            )
        return state

    def save(self, new: TokenState, previous: TokenState | None) -> None:
        if previous is not None:
            _check_unchanged(self, self.load(), previous, new)
        directory = self.path.parent
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        record = {"conn_id": self.conn_id, **({"grant_id": self.grant_id} if self.grant_id else {}), **new.to_dict()}
        payload = json.dumps(record, indent=2, sort_keys=True)
        # mkstemp creates the file with mode 0600 before anything secret is written to it.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        # The rename itself must survive a crash: Atlassian has already retired the old token.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        if self.legacy_path is not None and self._own_legacy_file() is not None:
            # The pre-0.2 file holds a retired token from now on: never leave it to be sent again.
            # Only that file, checked just above under the lock; never a link, a file elsewhere or
            # another connection's.
            self.legacy_path.unlink(missing_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._thread_lock:
            self.lock_path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            try:
                # O_NOFOLLOW: a link planted at the lock's name must not make this create or open
                # a file elsewhere.
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
            except OSError as exc:
                raise JiraTokenStoreError(
                    f"cannot open the lock file {str(self.lock_path)!r} of the {self.describe()} ({exc.strerror}): "
                    "it must be a regular file the workers' user may write (not a symbolic link); remove it"
                ) from None
            try:
                # Polled with a deadline, never an unbounded wait: a stopped holder (or a file system
                # that never answers) must fail this task loudly, not wedge every task on the host.
                # The kernel releases the lock if the holder dies.
                deadline = time.monotonic() + LOCK_TIMEOUT
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise JiraTokenStoreError(
                                f"timed out after {LOCK_TIMEOUT:.0f}s waiting for {self.lock_path}: another process holds it"
                            ) from None
                        time.sleep(0.02)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def token_directory() -> Path:
    """``$AIRFLOW_HOME/jira_auth_tokens`` (Airflow's default home is ``~/airflow``)."""
    home = Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser()
    return home / TOKEN_DIR_NAME


def default_path(name: str) -> Path:
    """``<token directory>/<name>.json``, always a file directly inside the token directory.

    ``name`` is a connection id or ``grant-<grant id>``. Airflow accepts ids such as
    ``../../victim/settings``; such an id is encoded (:func:`token_file_name`), never joined as a path.
    """
    return token_directory() / token_file_name(name)


def token_file_name(name: str) -> str:
    """The file name that holds ``name``'s state: one path component, whatever ``name`` is.

    A plain name (see :func:`_is_plain_name`: every ordinary connection id, and every grant)
    keeps ``<name>.json``, so the files written so far stay where they are. Any other name is
    percent-encoded behind a ``%``, which no plain name starts with, so two ids never share a
    file: ``../x`` becomes ``%..%2Fx.json``. A name too long for a file name becomes ``%#`` and
    its SHA-256.
    """
    if _is_plain_name(name):
        return f"{name}.json"
    encoded = "%" + quote(name, safe="", errors="surrogatepass")
    if len(encoded) + len(".json") > _MAX_FILE_NAME:
        encoded = "%#" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{encoded}.json"


def _is_plain_name(name: str) -> bool:
    """A name that is safe as a file name as it is: one component, not hidden, printable, short enough.

    No ``/`` (it would name a directory, or with ``..`` leave the token directory), no leading
    ``.`` (``.``, ``..``, hidden files, and this store's own temporary files), no leading ``%``
    (kept for encoded names), nothing unprintable, and short enough for its temporary twin.
    """
    return (
        bool(name)
        and "/" not in name
        and name[0] not in ".%"
        and name.isprintable()
        and len(name.encode("utf-8", "surrogatepass")) + len(".json") <= _MAX_FILE_NAME
    )


def _check_unchanged(store: TokenStore, stored: TokenState | None, previous: TokenState, new: TokenState) -> None:
    """The compare of compare-and-swap: the stored refresh token must be ``previous``'s (or ``new``'s)."""
    if stored is None or stored.refresh_token not in (previous.refresh_token, new.refresh_token):
        raise JiraTokenStoreConflictError(
            f"the {store.describe()} was changed outside its lock (it no longer holds the refresh token this "
            "process read); not overwriting it. Another tool may be writing it: use only this provider and "
            f"its consent step (airflow-jira-auth authorize --conn-id {store.conn_id})"
        )
