"""The token broker: an api-server plugin that refreshes 3LO tokens for tasks and triggers.

Airflow 3 task and trigger processes cannot write a connection (their ORM access is blocked),
so they ask the api-server, which can: ``POST /jira-auth/token`` returns a valid access token
for a connection, refreshing it first under the store's database lock when needed, and writing
the rotated refresh token back before answering. The answer never carries the refresh token.
See docs/token-rotation.md for why this route was chosen, docs/security.md for what it refuses.
"""

from __future__ import annotations

import asyncio
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
#: Vault or AWS): at most LOOKUP_BURST at once, then LOOKUP_RATE a second, per api-server process.
#: Beyond that such requests get 429 and Retry-After without a lookup.
LOOKUP_BURST = 20
LOOKUP_RATE = 5.0
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
    """A token bucket: :data:`LOOKUP_BURST` lookups at once, refilled at :data:`LOOKUP_RATE` a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = float(LOOKUP_BURST)
        self._at = time.monotonic()

    def take(self) -> float:
        """0 when a lookup may run now, else how many seconds until one may."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(LOOKUP_BURST), self._tokens + (now - self._at) * LOOKUP_RATE)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / LOOKUP_RATE


_known_keys = _KnownKeys()
_lookup_budget = _LookupBudget()


def _lookup(conn_id: str) -> Any:
    """The connection from the secrets backends, in Airflow's order, or ``None``.

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
                return None  # an authoritative deny: no less restrictive backend may answer instead
            log.debug("Token broker: secrets backend %s failed for a connection lookup", type(backend).__name__)
            continue
        if conn:
            return conn
    return None


def _signed_settings(conn_id: str, body: bytes, signature: str) -> JiraConnectionSettings | None:
    """The connection's settings if it is an oauth2 jira_cloud connection that signed ``body``."""
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    conn = _lookup(conn_id)
    if not conn:
        _refusals.refused(conn_id, "no such connection")
        return None
    if conn.conn_type != "jira_cloud":
        _refusals.refused(conn_id, "not a jira_cloud connection")
        return None
    try:
        settings = JiraConnectionSettings.of(conn_id, conn)
    except JiraConfigError:
        _refusals.refused(conn_id, "its settings are invalid")
        return None
    if settings.auth_type != "oauth2" or not settings.client_secret:
        _refusals.refused(conn_id, "not an oauth2 connection")
        return None
    if not broker_protocol.verify_signature(settings.broker_signing_secret, body, signature):
        _refusals.refused(conn_id, "the signature does not match")
        return None
    return settings


def _serve(body: bytes, signature: str) -> tuple[int, dict[str, Any]]:
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
        wait = _lookup_budget.take()
        if wait:
            _refusals.refused(conn_id, "over the lookup budget")
            return 429, {**_BUSY, "retry_after": max(1, math.ceil(wait))}
    # The connection as it is now: a changed secret or a deleted connection is refused here even
    # when a remembered key verified the request.
    settings = _signed_settings(conn_id, body, signature)
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
        secrets = (settings.client_id, settings.client_secret, settings.refresh_token, settings.broker_secret)
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
    status, payload = await run_in_threadpool(_serve, body, signature)
    headers = {"Cache-Control": "no-store"}
    if payload is _FORBIDDEN:
        await asyncio.sleep(max(0.0, REFUSAL_FLOOR - (time.monotonic() - started)))
    elif status == 429:
        headers["Retry-After"] = str(payload.pop("retry_after"))
    return JSONResponse(payload, status_code=status, headers=headers)


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
