"""The token broker's wire format: how a task asks the api-server for an access token.

A task proves it may have a connection's access token by signing its request with a key
derived from that connection's client secret and its own broker secret
(``JiraConnectionSettings.broker_signing_secret``), which it read from the connection anyway:
possession of the connection is the credential, and no api-server user or password has to be
handed to workers. Timestamps bound replays to ``MAX_SKEW`` seconds; within that window the broker
accepts each nonce once (it remembers them in the metadata database, for every api-server process).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from typing import Any

SIGNATURE_HEADER = "X-Jira-Auth-Signature"
MAX_SKEW = 300.0
PATH = "/token"
MAX_CONN_ID = 250  # Airflow's limit
MIN_NONCE, MAX_NONCE = 8, 128
#: The broker judges a request for a connection it looked up less than this long ago by what that
#: lookup found; a client refused with 403 asks once more after it (a connection just changed).
RECHECK_AFTER = 2.5


def _key(client_secret: str) -> bytes:
    return hashlib.sha256(b"airflow-provider-jira-auth/broker\x00" + client_secret.encode()).digest()


def token_fingerprint(access_token: str) -> str:
    """Names an access token without revealing it (for "this one was rejected")."""
    return hashlib.sha256(access_token.encode()).hexdigest()


def signing_key(client_secret: str) -> bytes:
    """The HMAC key a connection's requests are signed with (derived from its broker secret)."""
    return _key(client_secret)


def sign(client_secret: str, body: bytes) -> str:
    """The signature of ``body`` under the key derived from ``client_secret`` (hex)."""
    return hmac.new(_key(client_secret), body, hashlib.sha256).hexdigest()


def signed_request(
    client_secret: str, conn_id: str, *, min_valid: float, rejected: str | None = None, force: bool = False
) -> tuple[bytes, str]:
    body = json.dumps(
        {
            "conn_id": conn_id,
            "min_valid": float(min_valid),
            "rejected": token_fingerprint(rejected) if rejected else None,
            "force": force,
            "ts": time.time(),
            "nonce": secrets.token_hex(8),
        },
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    return body, sign(client_secret, body)


class BadRequest(ValueError):
    """The body is not a well-formed broker request; the message says which field is wrong."""


class _NonFinite(str):
    """What JSON's NaN, Infinity and -Infinity parse to here: never a number, named in the error."""


def _number(data: dict[str, Any], field: str, default: float | None = None) -> float:
    value = data.get(field, default)
    if isinstance(value, _NonFinite):
        raise BadRequest(f"{field} must be a finite number, not {value}")
    # bool is an int subclass in Python, but true is not a number of seconds.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{field} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        raise BadRequest(f"{field} must be a finite number, not one that overflows a float") from None
    if not math.isfinite(number):
        raise BadRequest(f"{field} must be a finite number, not {value!r}")
    return number


def parse_request(body: bytes) -> dict[str, Any]:
    """The request's fields, checked for shape and type only (the signature is checked later).

    Strict on purpose, since it runs before the signature check: NaN, Infinity and numbers that
    overflow a float (``1e400``) are refused, and so are booleans where a number is expected.
    Raises :class:`BadRequest`.
    """
    try:
        data = json.loads(body, parse_constant=_NonFinite)
    except (ValueError, RecursionError):
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    conn_id, nonce, rejected, force = data.get("conn_id"), data.get("nonce"), data.get("rejected"), data.get("force", False)
    if not isinstance(conn_id, str) or not 0 < len(conn_id) <= MAX_CONN_ID:
        raise BadRequest("conn_id must be a connection id")
    if not isinstance(nonce, str) or not MIN_NONCE <= len(nonce) <= MAX_NONCE:
        raise BadRequest(f"nonce must be a string of {MIN_NONCE} to {MAX_NONCE} characters")
    if rejected is not None and not (isinstance(rejected, str) and len(rejected) <= MAX_NONCE):
        raise BadRequest("rejected must be an access token's fingerprint or null")
    if not isinstance(force, bool):
        raise BadRequest("force must be true or false")
    return {
        "conn_id": conn_id,
        "ts": _number(data, "ts"),
        "nonce": nonce,
        "min_valid": _number(data, "min_valid", 0.0),
        "rejected": rejected,
        "force": force,
    }


def verify_signature(client_secret: str, body: bytes, signature: str) -> bool:
    return verify_with_key(_key(client_secret), body, signature)


def verify_with_key(key: bytes, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is ``body``'s under ``key`` (constant-time comparison)."""
    return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), signature or "")


def within_window(ts: float, now: float | None = None) -> bool:
    """Whether a request stamped ``ts`` is inside the replay window around ``now``."""
    now = time.time() if now is None else now
    return abs(now - ts) <= MAX_SKEW

