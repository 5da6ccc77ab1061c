"""Token stores: where a connection's rotating token state lives, and how refreshes serialize.

A store answers two questions: what is the current :class:`TokenState` (``load``), and how to
replace it without losing an update when many processes on many hosts refresh at once
(``refreshing``). ``with store.refreshing() as refresh:`` holds the store's exclusive lock, hands
out the state read *after* the lock was taken, writes the marker before a refresh is sent
(``refresh.begin()``) and persists its answer before anyone uses it (``refresh.commit(new)``).
That block is what makes rotation safe (see docs/token-rotation.md).
"""

from __future__ import annotations

import logging
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import (
    JiraClientSecretError,
    JiraGrantRevokedError,
    JiraTokenStoreConflictError,
    JiraTokenStoreError,
    describe_error,
)

if TYPE_CHECKING:
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

log = logging.getLogger(__name__)

# The callback of the deprecated TokenStore.update: refresher(current, begin) -> the new state,
# or None for "no change"; it calls begin() right before it sends a refresh to Atlassian.
Refresher = Callable[[TokenState, Callable[[], None]], "TokenState | None"]

# Errors after which Atlassian certainly did not rotate the refresh token.
JiraOAuthDefiniteError = (JiraGrantRevokedError, JiraClientSecretError)


class TokenStore(ABC):
    """Where one connection's token state lives.

    Subclasses implement :meth:`load`, :meth:`save` and :meth:`lock`; :meth:`refreshing` composes
    them into a locked read-modify-write. A store that can do better (one database transaction
    holding a row lock) overrides :meth:`refreshing` itself.

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

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "update" in cls.__dict__ and cls.refreshing is TokenStore.refreshing:
            # Refreshes no longer call update(): whatever it held (a transaction, a row lock) would be
            # skipped, and two processes could then spend the same refresh token. Refuse the class.
            raise TypeError(
                f"{cls.__qualname__} overrides TokenStore.update, which refreshes no longer call: "
                "override refreshing() instead (its lock, load_locked and save are used as before)"
            )

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
        """The state as :meth:`refreshing` reads it, with the lock held; by default :meth:`load`."""
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

    @contextmanager
    def refreshing(self) -> Iterator[Refresh]:
        """Under the lock: the state to refresh from, and the steps that persist a refresh.

        ::

            with store.refreshing() as refresh:
                if needs_refresh(refresh.current):
                    refresh.begin()  # the write-ahead marker
                    state = refresh.commit(token_client.refresh(refresh.current))

        ``refresh.begin()`` saves the state with ``refresh_started_at`` set: if this process
        then dies after Atlassian rotated the token but before the new one was saved, the next
        process knows it must refresh at once, within the reuse leeway, instead of trusting an
        access token Atlassian will revoke along with its retired refresh token. A block left by
        a definite refusal (:data:`JiraOAuthDefiniteError`) clears the marker; any other
        failure (a timeout, a lost answer) may have rotated the token, and leaves it.
        """
        with self.lock():
            stored = self.load_locked()
            if stored is None:
                raise JiraTokenStoreError(
                    f"The {self.describe()} holds no refresh token: run the consent step "
                    f"(airflow-jira-auth authorize --conn-id {self.conn_id})"
                )
            refresh = Refresh(self, stored)
            try:
                yield refresh
            except JiraOAuthDefiniteError:
                # Atlassian refused outright (revoked grant, wrong secret): nothing was rotated.
                # ``current`` carries no marker: saving it clears the one begin() wrote.
                self.save_with_retries(refresh.current, stored)
                raise

    def update(self, refresher: Refresher) -> TokenState:
        """Deprecated: use :meth:`refreshing`. ``refresher(current, begin)`` returns the new state,
        or ``None`` for no change; its answer is persisted and returned."""
        warnings.warn(
            "TokenStore.update(refresher) is deprecated: use 'with store.refreshing() as refresh:' "
            "(refresh.current, refresh.begin(), refresh.commit(new))",
            DeprecationWarning,
            stacklevel=2,
        )
        with self.refreshing() as refresh:
            new = refresher(refresh.current, refresh.begin)
            return refresh.stored if new is None else refresh.commit(new)

    def save_with_retries(self, new: TokenState, previous: TokenState | None) -> None:
        """Atlassian already retired ``previous``: losing ``new`` now loses the grant, so insist."""
        delay = 0.2
        for attempt in range(1, self.save_attempts + 1):
            try:
                self.save(new, previous)
                return
            except JiraTokenStoreConflictError:
                # Not a failing store: a newer grant (a consent, an edit) replaced the one this
                # refresh read. Saving again would fail again, and must not win: it is kept.
                log.error(
                    "The %s no longer holds the refresh token this refresh of connection %r read "
                    "(a new consent or an edit replaced it): keeping the newer one, discarding this refresh",
                    self.describe(), self.conn_id,
                )
                raise
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


class Refresh:
    """One refresh under a store's lock, as :meth:`TokenStore.refreshing` hands it out.

    :ivar stored: the state read under the lock; what every write compares against.
    :ivar current: the state to refresh from: ``stored``, or, when a marker says an earlier
        refresh died midway, ``stored`` without its access token (which Atlassian revokes along
        with the refresh token it may already have retired).
    """

    def __init__(self, store: TokenStore, stored: TokenState) -> None:
        self.store = store
        self.stored = stored
        self.current = stored
        if stored.refresh_started_at is not None:
            log.warning(
                "A refresh of connection %r that started %.0f s ago never finished (its process died?): "
                "refreshing now, while Atlassian's reuse leeway still accepts the stored refresh token",
                store.conn_id, time.time() - stored.refresh_started_at,
            )
            self.current = stored.with_changes(access_token=None, expires_at=None, refresh_started_at=None)

    def begin(self) -> None:
        """Save the write-ahead marker; call it right before sending the refresh."""
        try:
            self.store.save(self.stored.with_changes(refresh_started_at=time.time()), self.stored)
        except JiraTokenStoreError:
            raise
        except Exception as exc:
            # Not chained: a database error's text carries the statement's parameters.
            raise JiraTokenStoreError(
                f"could not write to the {self.store.describe()} ({describe_error(exc)}); no refresh was sent"
            ) from None

    def commit(self, new: TokenState) -> TokenState:
        """Persist Atlassian's answer (compare-and-swap against :attr:`stored`: a consent written
        meanwhile must win) and return it; if it cannot be saved it raises, and is never used."""
        self.store.save_with_retries(new, self.stored)
        return new
