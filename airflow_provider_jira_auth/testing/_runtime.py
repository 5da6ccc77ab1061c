"""Small runtime helpers shared by the emulator's parts: its clock, its counters, Jira's time format."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone


class Clock:
    """The emulator's "now": a base clock plus an offset that ``advance()`` moves forward.

    Expiry tests call ``advance(3600)`` instead of sleeping an hour.
    """

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self.base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self.base() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += float(seconds)


class Counters(dict):
    """A dict of named counters that also reads as attributes: ``stats.token_refreshes``."""

    def __getattr__(self, name: str) -> int:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def bump(self, name: str, by: int = 1) -> None:
        self[name] = self.get(name, 0) + by

    def copy(self) -> Counters:
        return Counters(self)


def jira_time(epoch: float) -> str:
    """Jira's timestamp format, e.g. ``2026-01-05T10:00:00.000+0000``."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def iso_utc(epoch: float) -> str:
    """ISO 8601 in UTC to the second, as in ``X-RateLimit-Reset``."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
