"""Time in JQL: Jira's timestamps, JQL dates to the minute in the user's zone, and the user's zone.

Jira writes ``updated``/``created`` to the millisecond (``2026-11-30T00:00:30.250+0000``), but a
JQL date (``updated >= "2026-11-30 01:00"``) has minute precision and is read in the time zone of
the user the query runs as (``GET /myself``, ``timeZone``), not in UTC. So code that selects
issues by time:

* writes each bound in the user's zone, rounded *outward* (a lower bound down to its minute, an
  upper bound up to the next one), so the query holds every issue of the exact range, and some
  more;
* then keeps only the issues whose parsed ``fields.updated`` is in the exact range.

A wall-clock time that a DST change makes ambiguous (it occurs twice) is written so that either
reading holds the range. When the zone is unknown (a 3LO grant without ``read:jira-user``), the
bounds are written in UTC and moved :data:`UNKNOWN_ZONE_MARGIN` outward, which is wide enough
whatever the user's zone; the exact filter then does all the work.

Used by :mod:`airflow_provider_jira_auth.triggers.issues_changed` (polling for changes) and
:mod:`airflow_provider_jira_auth.operators.export` (incremental export).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_jira_auth.client.errors import JiraError
from airflow_provider_jira_auth.client.jql import strip_order_by

__all__ = [
    "UNKNOWN_ZONE_MARGIN",
    "jql_date",
    "parse_jira_time",
    "strip_order_by",
    "changes_jql",
    "user_zone",
    "zone_from_myself",
]

log = logging.getLogger(__name__)

#: the widest UTC offsets: a date written in UTC is off by at most this in the user's zone
UNKNOWN_ZONE_MARGIN = timedelta(hours=14)

_FORMAT = "%Y-%m-%d %H:%M"


def parse_jira_time(value: str) -> int:
    """Jira's ``2026-01-05T10:00:00.000+0000`` as epoch milliseconds."""
    text = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return int(datetime.strptime(text, fmt).timestamp() * 1000)
        except ValueError:
            continue
    raise ValueError(f"not a Jira timestamp: {value!r}")


def jql_date(moment: datetime, zone: tzinfo | None, *, up: bool = False) -> str:
    """``moment`` as a JQL date (``yyyy-MM-dd HH:mm``) in ``zone``, rounded outward.

    Rounded down to the minute (``up=False``: a lower bound, ``updated >= ...``) or up to the
    next minute unless already on one (``up=True``: an upper bound, ``updated < ...``). Jira
    reads the result at or before ``moment`` (lower) or at or after it (upper), whichever of a
    DST-ambiguous time's two readings it takes. ``zone=None``: written in UTC and moved
    :data:`UNKNOWN_ZONE_MARGIN` outward.
    """
    if moment.tzinfo is None:
        raise ValueError(f"jql_date needs an aware datetime, got {moment!r}")
    if zone is None:
        zone, moment = timezone.utc, moment + (UNKNOWN_ZONE_MARGIN if up else -UNKNOWN_ZONE_MARGIN)
    for _ in range(3):  # a second pass only after a DST change moved the moment
        wall = _round(moment.astimezone(zone).replace(tzinfo=None), up)
        readings = [wall.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc) for fold in (0, 1)]
        if up and min(readings) < moment:
            moment += max(readings) - min(readings)
        elif not up and max(readings) > moment:
            moment -= max(readings) - min(readings)
        else:
            return wall.strftime(_FORMAT)
    return wall.strftime(_FORMAT)


def _round(wall: datetime, up: bool) -> datetime:
    floor = wall.replace(second=0, microsecond=0)
    return floor + timedelta(minutes=1) if up and floor != wall else floor


def changes_jql(jql: str, lower: str, upper: str | None = None) -> str:
    """``(<jql>) AND updated >= "<lower>" [AND updated < "<upper>"] ORDER BY updated ASC, id ASC``.

    The bounds are JQL dates (:func:`jql_date`); an empty ``jql`` leaves the bounds alone. The
    user's own ``ORDER BY`` is dropped by :func:`strip_order_by`, which reads string literals as
    JQL does, so a value quoted with ``jql_quote`` reaches Jira whole whatever it says.
    """
    bounds = f'updated >= "{lower}"' + (f' AND updated < "{upper}"' if upper is not None else "")
    base = strip_order_by(jql)
    where = f"({base}) AND {bounds}" if base else bounds
    return f"{where} ORDER BY updated ASC, id ASC"


def zone_from_myself(me: Any) -> tzinfo | None:
    """The ``timeZone`` of a ``GET /myself`` answer as a zone; ``None`` when absent or unknown."""
    name = me.get("timeZone") if isinstance(me, dict) else None
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("Jira user's time zone %r is not one this machine knows: JQL dates are widened by 14 h", name)
        return None


def user_zone(client: Any) -> tzinfo | None:
    """The zone Jira reads JQL dates in for ``client``'s user (``GET /myself``); ``None`` if unknown."""
    try:
        return zone_from_myself(client.request("GET", "myself"))
    except JiraError as exc:
        log.warning("The Jira user's time zone is unknown (%s): JQL dates are widened by 14 h", exc)
        return None
