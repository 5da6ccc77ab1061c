"""The token broker: an api-server plugin that refreshes 3LO tokens for tasks and triggers.

Airflow 3 task and trigger processes cannot write a connection (their ORM access is blocked),
so they ask the api-server, which can: ``POST /jira-auth/token`` returns a valid access token
for a connection, refreshing it first under the store's database lock when needed, and writing
the rotated refresh token back before answering. The answer never carries the refresh token.
See docs/token-rotation.md for why this route was chosen, docs/security.md for what it refuses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from airflow_provider_jira_auth.auth import broker_protocol
from airflow_provider_jira_auth.plugins.broker_nonces import NonceStore
from airflow_provider_jira_auth.client.errors import (
    JiraClientSecretError,
    JiraConfigError,
    JiraError,
    JiraGrantRevokedError,
    JiraTokenStoreError,
    describe_error,
    scrub,
)

if TYPE_CHECKING:
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

log = logging.getLogger(__name__)

router = APIRouter()

# One answer for "no such connection", "not an oauth2 connection" and "bad signature", so the
# endpoint tells an unauthenticated caller nothing about which connections exist.
_FORBIDDEN = {"error": "forbidden", "message": "the request's signature does not match an oauth2 jira_cloud connection"}

_BUSY = {
    "error": "busy",
    "message": "the token broker is refusing unverified requests for a moment (too many recently); try again",
}
_STALE = {"error": "stale", "message": "the request is too old, replayed, or the clocks differ"}
_SIGNATURE = re.compile(r"[0-9a-f]{64}")

_ERROR_KINDS: list[tuple[type[Exception], str, int]] = [
    (JiraGrantRevokedError, "grant_revoked", 409),
    (JiraClientSecretError, "client_secret", 409),
    (JiraConfigError, "config", 409),
    (JiraTokenStoreError, "store", 409),
    (JiraError, "upstream", 424),  # not 5xx: the broker already retried Atlassian
]


# -- what an unauthenticated caller can cost ------------------------------------------------------
#: A signature no known key verifies costs a lookup of the connection it names (a remote call on
#: Vault or AWS), charged to the caller (its address): at most LOOKUP_BURST at once, then
#: LOOKUP_RATE a second, per caller and api-server process; all callers together at most
#: LOOKUP_BURST_ALL, then LOOKUP_RATE_ALL a second. Beyond that such requests get 429 and
#: Retry-After without a lookup. A flood from one address therefore cannot spend another's budget.
LOOKUP_BURST = 20
LOOKUP_RATE = 5.0
LOOKUP_BURST_ALL = 200
LOOKUP_RATE_ALL = 50.0
MAX_CALLERS = 4096
#: What a lookup found for a connection id (its key, or that it signs nothing) is remembered this
#: long: a request for that id in the meantime is judged against it without another lookup, so a
#: flood of forged requests naming one connection costs one lookup per LOOKUP_MEMORY and cannot
#: keep that connection's correctly signed first request from being served.
LOOKUP_MEMORY = broker_protocol.RECHECK_AFTER - 0.5
#: A connection's signing key, once it verified a request, verifies that connection's next
#: requests for this long without spending the lookup budget (each served request renews it).
KEY_TTL = 300.0
MAX_KNOWN_KEYS = 4096
#: A 403 for a bad signature is answered no sooner than this after the request arrived, so that
#: its timing does not tell an existing connection from a missing one.
REFUSAL_FLOOR = 0.05

MAX_BODY = 4096
# Longest freshness a task may ask for: more than an access token lives would force a refresh
# on every call (refreshes on purpose go through "force").
MAX_MIN_VALID = 1800.0
_nonces = NonceStore()


def _error_text(exc: BaseException) -> str:
    """The provider's own error text; a database error's text only through describe_error."""
    if hasattr(exc, "statement") or hasattr(exc, "orig"):
        return describe_error(exc)
    return str(exc)


class _Refusals:
    """Requests no oauth2 jira_cloud connection signed: each is logged at debug, and a warning sums
    them up at most every ``REFUSAL_LOG_EVERY`` seconds, so that a flood of them cannot flood the log.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._next_log = 0.0

    def refused(self, conn_id: str, reason: str) -> None:
        log.debug("Token broker: refused a request for connection id %r: %s", conn_id, reason)
        now = time.monotonic()
        with self._lock:
            self._count += 1
            if now < self._next_log:
                return
            count, self._count, self._next_log = self._count, 0, now + REFUSAL_LOG_EVERY
        log.warning(
            "Token broker: refused %d request(s) since the last such message that no oauth2 jira_cloud connection "
            "signed (unknown connection, another type, another client secret, or more unverified requests than the "
            "lookup budget allows), the latest for connection id %r; "
            "a worker whose copy of the connection differs from the api-server's gets these too",
            count, conn_id,
        )


REFUSAL_LOG_EVERY = 60.0
_refusals = _Refusals()


class _KnownKeys:
    """Signing keys of connections that recently signed a request, by connection id.

    Only keys are kept (never a secret or a setting), and only for :data:`KEY_TTL` seconds after
    the request that last proved them; the oldest go first beyond :data:`MAX_KNOWN_KEYS`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[bytes, float]] = {}

    def verifies(self, conn_id: str, body: bytes, signature: str) -> bool:
        with self._lock:
            known = self._keys.get(conn_id)
        if known is None or time.monotonic() - known[1] > KEY_TTL:
            return False
        return broker_protocol.verify_with_key(known[0], body, signature)

    def remember(self, conn_id: str, key: bytes) -> None:
        with self._lock:
            self._keys.pop(conn_id, None)
            self._keys[conn_id] = (key, time.monotonic())
            while len(self._keys) > MAX_KNOWN_KEYS:
                del self._keys[next(iter(self._keys))]

    def forget(self, conn_id: str) -> None:
        with self._lock:
            self._keys.pop(conn_id, None)


class _LookupBudget:
    """Token buckets: one per caller (:data:`LOOKUP_BURST`, :data:`LOOKUP_RATE`) under one for all
    callers (:data:`LOOKUP_BURST_ALL`, :data:`LOOKUP_RATE_ALL`); at most :data:`MAX_CALLERS`
    callers are tracked, the longest idle forgotten first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callers: dict[str, tuple[float, float]] = {}
        self._all = (float(LOOKUP_BURST_ALL), time.monotonic())

    @staticmethod
    def _refill(bucket: tuple[float, float], burst: int, rate: float, now: float) -> float:
        tokens, at = bucket
        return min(float(burst), tokens + (now - at) * rate)

    def take(self, caller: str) -> float:
        """0 when a lookup may run now for ``caller``, else how many seconds until one may."""
        with self._lock:
            now = time.monotonic()
            mine = self._refill(self._callers.pop(caller, (float(LOOKUP_BURST), now)), LOOKUP_BURST, LOOKUP_RATE, now)
            everyone = self._refill(self._all, LOOKUP_BURST_ALL, LOOKUP_RATE_ALL, now)
            wait = 0.0
            if mine < 1.0:
                wait = (1.0 - mine) / LOOKUP_RATE
            elif everyone < 1.0:
                wait = (1.0 - everyone) / LOOKUP_RATE_ALL
            else:
                mine, everyone = mine - 1.0, everyone - 1.0
            self._callers[caller] = (mine, now)
            self._all = (everyone, now)
            while len(self._callers) > MAX_CALLERS:
                del self._callers[next(iter(self._callers))]
            return wait


class _RecentLookups:
    """What the last lookup of each connection id found, for :data:`LOOKUP_MEMORY` seconds.

    The signing key of an oauth2 ``jira_cloud`` connection that has one, else ``None`` (missing,
    another type, invalid, no key of its own): only derived keys, never a secret or a setting.
    """

    _UNKNOWN = object()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, tuple[bytes | None, float]] = {}

    def judge(self, conn_id: str, body: bytes, signature: str) -> float | None:
        """``None`` when no recent lookup decides (one is needed); 0 when the connection as looked up
        moments ago signed ``body``; else the seconds until this id may be looked up again."""
        with self._lock:
            found = self._found.get(conn_id)
        age = time.monotonic() - found[1] if found is not None else LOOKUP_MEMORY + 1
        if found is None or age > LOOKUP_MEMORY:
            return None
        if found[0] is not None and broker_protocol.verify_with_key(found[0], body, signature):
            return 0.0
        return LOOKUP_MEMORY - age

    def record(self, conn_id: str, key: bytes | None) -> None:
        with self._lock:
            self._found.pop(conn_id, None)
            self._found[conn_id] = (key, time.monotonic())
            while len(self._found) > MAX_KNOWN_KEYS:
                del self._found[next(iter(self._found))]


_known_keys = _KnownKeys()
_lookup_budget = _LookupBudget()
_recent_lookups = _RecentLookups()


def _lookup(conn_id: str) -> tuple[Any, bool]:
    """The connection from the secrets backends, in Airflow's order, or ``None``; and whether it
    is the metadata database's (which the broker may write).

    ``Connection.get_connection_from_secrets`` does the same plus a ``SecretCache`` write whose
    ``get_uri()`` logs a warning about the ``_`` in ``jira_cloud`` on every call: a warning per
    request, which anyone could trigger by sending badly signed requests.
    """
    from airflow.configuration import ensure_secrets_loaded

    for backend in ensure_secrets_loaded():
        try:
            conn = backend.get_connection(conn_id=conn_id)
        except Exception as exc:
            if type(exc).__name__ == "AirflowSecretsBackendAccessDenied":
                return None, False  # an authoritative deny: no less restrictive backend may answer instead
            log.debug("Token broker: secrets backend %s failed for a connection lookup", type(backend).__name__)
            continue
        if conn:
            return conn, type(backend).__name__ == "MetastoreBackend"
    return None, False


def _signed_settings(conn_id: str, body: bytes, signature: str) -> tuple[JiraConnectionSettings | None, bool]:
    """The connection's settings if it is an oauth2 jira_cloud connection that signed ``body``, and
    whether it lives in the metadata database. What the lookup found is remembered (``_recent_lookups``)."""
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    conn, in_db = _lookup(conn_id)
    key: bytes | None = None
    settings: JiraConnectionSettings | None = None
    reason = ""
    if not conn:
        reason = "no such connection"
    elif conn.conn_type != "jira_cloud":
        reason = "not a jira_cloud connection"
    else:
        try:
            settings = JiraConnectionSettings.of(conn_id, conn)
        except JiraConfigError:
            reason = "its settings are invalid"
        else:
            if settings.auth_type != "oauth2" or not settings.client_secret:
                reason = "not an oauth2 connection"
            elif not settings.broker_signing_secret:
                # Without a key of its own only the app's client secret would be left, which every
                # connection of the app holds: such a connection is served to nobody.
                reason = "it has no broker_secret and no refresh_token to derive one from"
            else:
                key = broker_protocol.signing_key(settings.broker_signing_secret)
                if not broker_protocol.verify_with_key(key, body, signature):
                    reason = "the signature does not match"
    _recent_lookups.record(conn_id, key)
    if reason:
        _refusals.refused(conn_id, reason)
        return None, False
    return settings, in_db


def _pin_broker_secret(settings: JiraConnectionSettings) -> None:
    """Write the derived broker secret into a metadata-DB connection that has none (null or "").

    Only while the connection still holds the refresh token the request's key was derived from:
    after a rotation the store's write has pinned it already. A failure is logged and changes
    nothing for this request (its key stays derivable until the next write pins it).
    """
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_jira_auth.settings import extra_value, pin_broker_secret

    try:
        with create_session() as session:
            conn = session.scalar(select(Connection).where(Connection.conn_id == settings.conn_id).with_for_update())
            if conn is None:
                return
            extra = conn.extra_dejson
            if extra_value(extra, "broker_secret") or extra_value(extra, "refresh_token") != settings.refresh_token:
                return
            conn.set_extra(json.dumps(pin_broker_secret(extra, settings.conn_id)))
        log.info("Token broker: connection %r had no broker_secret: its derived one is now stored in its extra", settings.conn_id)
    except Exception as exc:
        log.warning("Token broker: could not store connection %r's broker_secret (%s)", settings.conn_id, type(exc).__name__)


def _serve(body: bytes, signature: str, caller: str = "") -> tuple[int, dict[str, Any]]:
    from airflow_provider_jira_auth.hooks.token_provider import direct_token_provider

    if not _SIGNATURE.fullmatch(signature):
        _refusals.refused("", "no signature")
        return 403, _FORBIDDEN
    # Refused before any lookup: what the body alone shows to be wrong or stale.
    try:
        request = broker_protocol.parse_request(body)
    except broker_protocol.BadRequest as exc:
        return 400, {"error": "bad_request", "message": str(exc)}
    if not broker_protocol.within_window(request["ts"]):
        return 403, _STALE
    conn_id = request["conn_id"]
    # A key that already proved itself for this connection authenticates the request before any
    # lookup; any other request spends the lookup budget, or is turned away without a lookup.
    known = _known_keys.verifies(conn_id, body, signature)
    if not known:
        # A lookup of this id moments ago decides without another: forged requests naming one
        # connection cost one lookup per LOOKUP_MEMORY, and its correctly signed first request
        # is served whatever the flood.
        # Refused as a lookup would refuse it (same answer, same delay, whether the id exists or
        # not); a connection created or changed within LOOKUP_MEMORY is served once it ends (the
        # broker client asks once more after a 403 for that reason).
        recent = _recent_lookups.judge(conn_id, body, signature)
        if recent:
            _refusals.refused(conn_id, "the signature does not match the connection as looked up moments ago")
            return 403, _FORBIDDEN
        if recent is None:
            wait = _lookup_budget.take(caller)
            if wait:
                _refusals.refused(conn_id, "over the lookup budget")
                return 429, {**_BUSY, "retry_after": max(1, math.ceil(wait))}
    # The connection as it is now: a changed secret or a deleted connection is refused here even
    # when a remembered key verified the request.
    settings, in_db = _signed_settings(conn_id, body, signature)
    if settings is None:
        if known:  # the remembered key is no longer the connection's (a badly signed request cannot evict it)
            _known_keys.forget(conn_id)
        return 403, _FORBIDDEN
    _known_keys.remember(conn_id, broker_protocol.signing_key(settings.broker_signing_secret))
    # Signed by someone holding the client secret: from here on, errors may say what is wrong.
    try:
        if not _nonces.accept(conn_id, request["nonce"]):
            return 403, _STALE
    except Exception as exc:
        log.error("Token broker: could not record a request's nonce in the metadata database (%s)", type(exc).__name__)
        return 503, {"error": "store", "message": "the token broker could not record the request in the metadata database; try again"}
    if in_db and not settings.broker_secret:
        _pin_broker_secret(settings)
    min_valid = min(max(request["min_valid"], 0.0), MAX_MIN_VALID)

    provider = None
    try:
        provider = direct_token_provider(settings, margin=settings.refresh_margin)
        rejected = request["rejected"]
        state = None
        if request["force"]:
            state = provider.refresh_now()
        elif rejected:
            current = provider.store.load()
            if current and current.access_token and broker_protocol.token_fingerprint(current.access_token) == rejected:
                state = provider.force_refresh(current.access_token)
        if state is None:
            state = provider.get_token(min_valid)
    except Exception as exc:
        # Whatever an error says, it leaves here without the connection's secrets, and a
        # database error without its statement's parameters (see describe_error).
        secrets = (
            settings.client_id, settings.client_secret, settings.refresh_token, settings.broker_key_material,
            *_stored_tokens(provider),
        )
        for kind, name, status in _ERROR_KINDS:
            if isinstance(exc, kind):
                message = scrub(_error_text(exc), secrets)
                log.warning("Token broker: connection %r: %s", conn_id, message)
                return status, {"error": name, "message": message}
        log.error(
            "Token broker: connection %r: unexpected failure: %s\n%s",
            conn_id, scrub(describe_error(exc), secrets), "".join(traceback.format_tb(exc.__traceback__)),
        )
        return 500, {"error": "internal", "message": f"{type(exc).__name__} in the token broker; see the api-server log"}
    finally:
        if provider is not None:
            provider.token_client.close()
    return 200, {
        "access_token": state.access_token,
        "expires_at": state.expires_at,
        "scopes": list(state.scopes),
        "rotated_at": state.rotated_at,
        "lifetime": state.lifetime,
        "store": provider.describe(),
    }


def _stored_tokens(provider: Any) -> tuple[str | None, ...]:
    """The refresh and access tokens the store holds now (others than the connection's after a
    rotation), for scrubbing an error's text; none when it cannot be read (the error may be the store's)."""
    try:
        state = provider.store.load() if provider is not None else None
    except Exception:
        return ()
    return (state.refresh_token, state.access_token) if state is not None else ()


_TOO_LARGE = {"error": "too_large", "message": f"the request body is larger than {MAX_BODY} bytes"}


async def _read_body(request: Request) -> bytes | None:
    """The request body, or ``None`` when it is larger than ``MAX_BODY``.

    A declared ``Content-Length`` over the cap is refused before a byte of the body is read; a
    body without one (chunked) or longer than declared is read only up to the cap.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > MAX_BODY:
                return None
        except ValueError:
            return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


@router.post(broker_protocol.PATH)
async def token(request: Request) -> JSONResponse:
    started = time.monotonic()
    body = await _read_body(request)
    if body is None:
        return JSONResponse(_TOO_LARGE, status_code=413, headers={"Cache-Control": "no-store", "Connection": "close"})
    signature = request.headers.get(broker_protocol.SIGNATURE_HEADER, "")
    # The refresh does blocking HTTP and database work: keep it off the event loop.
    caller = request.client.host if request.client else ""
    status, payload = await run_in_threadpool(_serve, body, signature, caller)
    headers = {"Cache-Control": "no-store"}
    if payload is _FORBIDDEN:
        await asyncio.sleep(max(0.0, REFUSAL_FLOOR - (time.monotonic() - started)))
    elif status == 429:
        headers["Retry-After"] = str(payload.pop("retry_after"))
    return JSONResponse(payload, status_code=status, headers=headers)


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
