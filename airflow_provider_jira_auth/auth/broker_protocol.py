"""The token broker's wire format: how a task asks the api-server for an access token.

A task proves it may have a connection's access token by signing its request with a key
derived from that connection's client secret, which it read from the connection anyway:
possession of the connection is the credential, and no api-server user or password has to be
handed to workers. Timestamps bound replays to ``MAX_SKEW`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

SIGNATURE_HEADER = "X-Jira-Auth-Signature"
MAX_SKEW = 300.0
PATH = "/token"


def _key(client_secret: str) -> bytes:
    return hashlib.sha256(b"airflow-provider-jira-auth/broker\x00" + client_secret.encode()).digest()


def token_fingerprint(access_token: str) -> str:
    """Names an access token without revealing it (for "this one was rejected")."""
    return hashlib.sha256(access_token.encode()).hexdigest()


def signed_request(
    client_secret: str, conn_id: str, *, min_valid: float, rejected: str | None = None, force: bool = False
) -> tuple[bytes, str]:
    body = json.dumps(
        {
            "conn_id": conn_id,
            "min_valid": min_valid,
            "rejected": token_fingerprint(rejected) if rejected else None,
            "force": force,
            "ts": time.time(),
            "nonce": secrets.token_hex(8),
        },
        separators=(",", ":"),
    ).encode()
    return body, hmac.new(_key(client_secret), body, hashlib.sha256).hexdigest()


def parse_unverified(body: bytes) -> dict[str, Any]:
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("conn_id"), str):
        raise ValueError("a JSON object with conn_id is required")
    return data


def verify_signature(client_secret: str, body: bytes, signature: str) -> bool:
    expected = hmac.new(_key(client_secret), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature or "")


class ReplayGuard:
    """Accepts a signed request once, and only within ``MAX_SKEW`` of its timestamp.

    Nonces are remembered for ``MAX_SKEW`` per api-server process; a replay that reaches another
    process is answered with the access token the request's owner already has, never a refresh
    token.
    """

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def fresh(self, data: dict[str, Any], now: float | None = None) -> bool:
        now = time.time() if now is None else now
        ts, nonce = data.get("ts"), data.get("nonce")
        if not isinstance(ts, (int, float)) or not isinstance(nonce, str) or abs(now - ts) > MAX_SKEW:
            return False
        with self._lock:
            for old, seen_at in list(self._seen.items()):
                if now - seen_at > 2 * MAX_SKEW:
                    del self._seen[old]
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True
