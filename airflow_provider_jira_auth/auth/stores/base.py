"""Token stores: where a connection's rotating token state lives, and how refreshes serialize.

A store answers two questions: what is the current :class:`TokenState` (``load``), and how to
replace it without losing an update when many processes on many hosts refresh at once
(``update``). ``update`` runs the caller's function under the store's exclusive lock with the
state read *after* the lock was taken, and persists what it returns before returning it. That
one method is what makes rotation safe (see docs/token-rotation.md).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import (
    JiraClientSecretError,
    JiraGrantRevokedError,
    JiraTokenStoreError,
    describe_error,
)

if TYPE_CHECKING:
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

log = logging.getLogger(__name__)

# refresher(current, begin) -> the new state, or None for "no change"; it calls begin() right
# before it sends a refresh to Atlassian.
Refresher = Callable[[TokenState, Callable[[], None]], "TokenState | None"]

# Errors after which Atlassian certainly did not rotate the refresh token.
JiraOAuthDefiniteError = (JiraGrantRevokedError, JiraClientSecretError)


class TokenStore(ABC):
    """Where one connection's token state lives.

    Subclasses implement :meth:`load`, :meth:`save` and :meth:`lock`; :meth:`update` composes
    them into a locked read-modify-write. A store that can do better (one database transaction
    holding a row lock) overrides :meth:`update` itself.

    :param conn_id: the connection whose token state this store keeps.
    """

    #: short name shown in logs and by the status command
    kind = "custom"
    #: attempts to persist a rotated refresh token before giving up loudly
    save_attempts = 4
    #: whether task and trigger processes may use this store themselves; when False (stores in
    #: Airflow's metadata DB) they go through the api-server's token broker instead
    works_in_workers = False

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id

    @classmethod
    def from_settings(cls, settings: JiraConnectionSettings) -> TokenStore:
        """Build the store named by a connection's ``grant_store``; override to read more options."""
        return cls(settings.conn_id)

    def describe(self) -> str:
        return f"{self.kind} store of connection {self.conn_id!r}"

    @abstractmethod
    def load(self) -> TokenState | None:
        """The current state, or ``None`` when the store holds none yet."""

    def load_locked(self) -> TokenState | None:
        """The state as :meth:`update` reads it, with the lock held; by default :meth:`load`."""
        return self.load()

    @abstractmethod
    def save(self, new: TokenState, previous: TokenState | None) -> None:
        """Persist ``new``; called with the store's lock held.

        With ``previous`` given, replace only a state holding ``previous.refresh_token`` (or
        ``new``'s): anything else means someone outside the lock wrote, and must not be lost.
        """

    @abstractmethod
    @contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive lock for this connection across processes and hosts."""

    def update(self, refresher: Refresher) -> TokenState:
        """Under the lock: re-read, call ``refresher(current, begin)``, persist its answer, return it.

        ``refresher`` returns ``None`` when no change is needed (another process refreshed
        while this one waited for the lock). Right before it sends a refresh it calls
        ``begin()``, which saves the state with ``refresh_started_at`` set (write-ahead): if this
        process then dies after Atlassian rotated the token but before the new one was saved,
        the next process knows it must refresh at once, within the reuse leeway, instead of
        trusting an access token Atlassian will revoke along with its retired refresh token.
        """
        with self.lock():
            current = self.load_locked()
            if current is None:
                raise JiraTokenStoreError(
                    f"The {self.describe()} holds no refresh token: run the consent step "
                    f"(airflow-jira-auth authorize --conn-id {self.conn_id})"
                )
            view = current
            if current.refresh_started_at is not None:
                log.warning(
                    "A refresh of connection %r that started %.0f s ago never finished (its process died?): "
                    "refreshing now, while Atlassian's reuse leeway still accepts the stored refresh token",
                    self.conn_id, time.time() - current.refresh_started_at,
                )
                view = current.with_changes(access_token=None, expires_at=None, refresh_started_at=None)

            def begin() -> None:
                try:
                    self.save(current.with_changes(refresh_started_at=time.time()), current)
                except JiraTokenStoreError:
                    raise
                except Exception as exc:
                    # Not chained: a database error's text carries the statement's parameters.
                    raise JiraTokenStoreError(
                        f"could not write to the {self.describe()} ({describe_error(exc)}); no refresh was sent"
                    ) from None

            try:
                new = refresher(view, begin)
            except JiraOAuthDefiniteError:
                # Atlassian refused outright (revoked grant, wrong secret): nothing was rotated.
                self.save_with_retries(view.with_changes(refresh_started_at=None), current)
                raise
            # Any other failure (a timeout, a lost answer) may have rotated the token: the
            # marker stays, and the next caller refreshes at once.
            if new is None:
                return current
            # Compare-and-swap against what was read: a consent written meanwhile must win.
            self.save_with_retries(new, current)
            return new

    def save_with_retries(self, new: TokenState, previous: TokenState | None) -> None:
        """Atlassian already retired ``previous``: losing ``new`` now loses the grant, so insist."""
        delay = 0.2
        for attempt in range(1, self.save_attempts + 1):
            try:
                self.save(new, previous)
                return
            except Exception as exc:
                if attempt == self.save_attempts:
                    log.critical(
                        "Could not save the rotated refresh token of connection %r to the %s after %d "
                        "attempts (%s). The previous refresh token is still accepted for about 10 "
                        "minutes (Atlassian's reuse leeway): fix the store before then, or a person "
                        "will have to consent again.",
                        self.conn_id, self.describe(), attempt, type(exc).__name__,
                    )
                    raise JiraTokenStoreError(
                        f"could not save the rotated refresh token to the {self.describe()} after "
                        f"{attempt} attempts ({describe_error(exc)}); the previous one stays "
                        "usable for about 10 minutes"
                    ) from None
                log.warning(
                    "Saving the rotated refresh token to the %s failed (%s); retrying in %.1fs",
                    self.describe(), type(exc).__name__, delay,
                )
                time.sleep(delay)
                delay *= 2
