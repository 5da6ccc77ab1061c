"""One connection's OAuth 2.0 token state: the part that rotates and must be shared."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# Refresh this long before the stored expiry: the gateway has been seen answering an expired
# access token with 403/404 rather than 401, so the clock, not a 401, must drive refreshes.
DEFAULT_EXPIRY_MARGIN = 300.0
# A margin never eats more than this share of the lifetime Atlassian granted: with short-lived
# tokens (a proxy, a test tenant) a 300 s margin would otherwise refresh on every call.
MAX_MARGIN_SHARE = 0.25


def effective_margin(margin: float, lifetime: float | None) -> float:
    """The refresh margin to apply to an access token that was granted ``lifetime`` seconds."""
    if lifetime is None or lifetime <= 0:
        return margin
    return min(margin, MAX_MARGIN_SHARE * lifetime)


@dataclass(frozen=True)
class TokenState:
    """The current refresh token, the access token issued with it, and their bookkeeping.

    :param refresh_token: the only refresh token Atlassian still accepts for this grant.
    :param access_token: the companion access token, or ``None`` before the first refresh.
    :param expires_at: when ``access_token`` expires (epoch seconds).
    :param scopes: the scopes granted, as the token endpoint last reported them.
    :param rotated_at: when ``refresh_token`` was issued (epoch seconds); drives the 90-day
        inactivity warning.
    :param lifetime: the access token's lifetime as Atlassian granted it (``expires_in``); it
        caps the refresh margin (:func:`effective_margin`).
    :param refresh_started_at: set (and persisted) just before a refresh is sent, cleared when
        its result is saved. Found set by the next process, it means a refresh died midway and
        Atlassian may already have retired ``refresh_token``: refresh again at once, while the
        reuse leeway still accepts it.
    """

    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    scopes: tuple[str, ...] = ()
    rotated_at: float | None = None
    refresh_started_at: float | None = None
    lifetime: float | None = None

    def access_token_valid_for(self, now: float | None = None) -> float:
        """Seconds the access token stays valid (<= 0 when there is none or it expired)."""
        if not self.access_token or self.expires_at is None:
            return 0.0
        return self.expires_at - (time.time() if now is None else now)

    def is_fresh(self, margin: float = DEFAULT_EXPIRY_MARGIN, now: float | None = None) -> bool:
        """Whether the access token has more than ``margin`` left (capped by :func:`effective_margin`)."""
        return self.access_token_valid_for(now) > effective_margin(margin, self.lifetime)

    def with_changes(self, **changes: Any) -> TokenState:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scopes"] = " ".join(self.scopes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenState:
        scopes = data.get("scopes") or ()
        if isinstance(scopes, str):
            scopes = tuple(scopes.split())
        return cls(
            refresh_token=str(data["refresh_token"]),
            access_token=data.get("access_token") or None,
            expires_at=_seconds(data.get("expires_at")),
            scopes=tuple(scopes),
            rotated_at=_seconds(data.get("rotated_at")),
            refresh_started_at=_seconds(data.get("refresh_started_at")),
            lifetime=_seconds(data.get("lifetime")),
        )


def _seconds(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def iso_utc(epoch: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC, to the second (``None`` stays ``None``)."""
    from datetime import datetime, timezone

    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")


INACTIVITY_EXPIRY_DAYS = 90


def token_health(state: TokenState) -> dict[str, Any]:
    """Expiry and age figures of a token state, without the tokens.

    A refresh token the provider did not obtain itself (put into the connection by hand, with
    ``airflow connections add`` or the form) has no known issue time: its age and the days left
    before the inactivity expiry are ``None`` and ``refresh_origin`` says why, until the
    first refresh replaces it with one whose time is recorded.
    """
    now = time.time()
    age = (now - state.rotated_at) / 86400 if state.rotated_at else None
    return {
        "refresh_origin": "obtained by the provider"
        if state.rotated_at
        else "stored by hand: its age is unknown until the first refresh",
        "granted_scopes": list(state.scopes),
        "access_expires_at": iso_utc(state.expires_at),
        "access_valid_for_s": round(max(state.access_token_valid_for(now), 0.0)),
        "refresh_rotated_at": iso_utc(state.rotated_at),
        "refresh_age_days": None if age is None else round(age, 2),
        "days_until_inactivity_expiry": None if age is None else round(INACTIVITY_EXPIRY_DAYS - age, 2),
    }
