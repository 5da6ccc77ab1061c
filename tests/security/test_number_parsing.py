"""Numbers in a correctly signed request are parsed strictly: finite numbers only, and no booleans.

``ts: NaN`` used to pass the replay window (every comparison with NaN is false, so it never
expired) and ``min_valid`` with 401 digits raised an uncaught OverflowError (HTTP 500).
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from tests.db_connections import put_connection, signing_secret
from tests.security.conftest import signed

CONN_ID = "jira_sec_numbers"


@pytest.fixture(scope="module")
def client_secret(module_emulator, airflow_db) -> str:
    put_connection(CONN_ID, module_emulator.connection_json("oauth2"))
    return signing_secret(CONN_ID)


def body(ts: str | None = None, min_valid: str = "0", force: str = "false") -> str:
    """A request as JSON text, with fields given as raw JSON (so that NaN and 1e400 can be written)."""
    ts = repr(time.time()) if ts is None else ts
    nonce = json.dumps(secrets.token_hex(8))
    return f'{{"conn_id":"{CONN_ID}","min_valid":{min_valid},"rejected":null,"force":{force},"ts":{ts},"nonce":{nonce}}}'


BAD = {
    "ts NaN": (dict(ts="NaN"), "ts", "finite", "NaN"),
    "ts Infinity": (dict(ts="Infinity"), "ts", "finite", "Infinity"),
    "ts -Infinity": (dict(ts="-Infinity"), "ts", "finite", "-Infinity"),
    "ts 1e400": (dict(ts="1e400"), "ts", "finite"),
    "ts true": (dict(ts="true"), "ts", "number"),
    "ts string": (dict(ts='"1795966390"'), "ts", "number"),
    "min_valid NaN": (dict(min_valid="NaN"), "min_valid", "finite", "NaN"),
    "min_valid 1e400": (dict(min_valid="1e400"), "min_valid", "finite"),
    "min_valid 401 digits": (dict(min_valid="1" + "0" * 400), "min_valid", "finite"),
    "min_valid -1e400": (dict(min_valid="-1e400"), "min_valid", "finite"),
    "min_valid true": (dict(min_valid="true"), "min_valid", "number"),
    "min_valid string": (dict(min_valid='"60"'), "min_valid", "number"),
    "force 1": (dict(force="1"), "force", "true or false"),
}


def test_a_well_formed_signed_request_is_served(broker, client_secret):
    answer = broker.post(*signed(client_secret, body(min_valid="60")))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_a_signed_request_with_a_bad_number_gets_400_naming_it(broker, client_secret, module_emulator, case):
    fields, *words = BAD[case]
    refreshes = module_emulator.stats.token_refreshes
    answer = broker.post(*signed(client_secret, body(**fields)))
    assert answer.status_code == 400, (answer.status_code, answer.text)
    payload = answer.json()
    assert payload["error"] == "bad_request" and "access_token" not in payload
    assert all(word in payload["message"] for word in words), payload["message"]
    assert module_emulator.stats.token_refreshes == refreshes
