"""Atlassian accounts and their API tokens (classic or scoped)."""

from __future__ import annotations

import hmac
import random
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class User:
    """An Atlassian account with one API token.

    A classic token (``scoped=False``) works against the site URL with the user's full
    permissions; a scoped token works only through the gateway and only within ``scopes``.
    """

    email: str
    api_token: str
    account_id: str
    display_name: str
    scoped: bool = False
    scopes: tuple[str, ...] = field(default_factory=tuple)
    #: the profile's time zone (IANA name): ``myself`` shows it, and JQL reads dates in it
    time_zone: str = "Etc/UTC"
    #: keys of the projects the account may browse; ``None``: every project. An issue of another
    #: project is invisible to it: missing from searches, 404 on reads, as Jira answers
    projects: frozenset[str] | None = None

    def may_browse(self, project_key: str) -> bool:
        return self.projects is None or project_key.upper() in self.projects

    def to_json(self) -> dict[str, Any]:
        """The user as Jira shows it in ``assignee``, ``author``, ``myself``..."""
        return {
            "accountId": self.account_id,
            "accountType": "atlassian",
            "emailAddress": self.email,
            "displayName": self.display_name,
            "active": True,
            "timeZone": self.time_zone,
        }


class Accounts:
    """Every account of the emulator, found by email (case-insensitive) or account id."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._by_email: dict[str, User] = {}
        self._by_account_id: dict[str, User] = {}

    def add(
        self,
        email: str,
        api_token: str | None = None,
        *,
        scoped: bool = False,
        scopes: tuple[str, ...] = (),
        display_name: str | None = None,
    ) -> User:
        if email.lower() in self._by_email:
            raise ValueError(f"an account with email {email!r} already exists")
        # Atlassian account ids of this era look like "712020:<uuid>".
        account_id = "712020:" + str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        user = User(
            email=email,
            api_token=api_token or "ATATT3xFfGF0" + secrets.token_urlsafe(48),
            account_id=account_id,
            display_name=display_name or email.split("@")[0].replace(".", " ").title(),
            scoped=scoped,
            scopes=tuple(scopes),
        )
        self._by_email[email.lower()] = user
        self._by_account_id[account_id] = user
        return user

    def check_token(self, email: str, api_token: str) -> User | None:
        user = self._by_email.get(email.lower())
        if user is None or not hmac.compare_digest(user.api_token.encode(), api_token.encode()):
            return None
        return user

    def by_account_id(self, account_id: str) -> User | None:
        return self._by_account_id.get(account_id)

    def find(self, value: str) -> User | None:
        """By account id, email or display name (as JQL user values may be written)."""
        lowered = value.lower()
        if value in self._by_account_id:
            return self._by_account_id[value]
        if lowered in self._by_email:
            return self._by_email[lowered]
        return next((u for u in self._by_account_id.values() if u.display_name.lower() == lowered), None)
