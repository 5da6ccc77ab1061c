"""The "Jira connections" page and the consent step against a real ``airflow api-server``, over HTTP.

* A 3LO connection saved the way Airflow's form saves it (every field present, ``broker_secret``
  null), then connected with "Connect to Jira", holds a broker key of its own, and the broker
  refuses its token to a holder of another connection of the same app.
* A banner link is shown only to the user it was made for, and only for a few minutes: an op who
  makes the page sign words of their own (a connection id in the URL) cannot show them to others.
* A form's CSRF token is bound to the session it was made for and expires.

Airflow runs with the simple auth manager and real users (``admin``, ``op``), Test enabled; the
page accepts the JWT of ``POST /auth/token`` as a Bearer header, as it accepts Airflow's cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from airflow_provider_jira_auth.auth import broker_protocol
from airflow_provider_jira_auth.connection_fields import CONN_FIELDS
from airflow_provider_jira_auth.testing import JiraCloudEmulator
from tests.airflow_harness import UsersAirflowEnvironment
from tests.db_connections import signing_secret

pytestmark = pytest.mark.airflow_executor

PAGE = "/jira-auth/connect"
USERS = ("admin", "op")  # each user's role is its name


@pytest.fixture(scope="module")
def emulator():
    with JiraCloudEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("airflow-page")
    (root / "dags").mkdir()
    env = UsersAirflowEnvironment(root, users=USERS, dags_folder=root / "dags", parallelism=2)
    env.start()
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="module")
def app(airflow, emulator):
    return emulator.add_oauth_app(redirect_uris=(f"{airflow.api_url}{PAGE}/callback",))


def as_user(airflow, user: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {airflow.session_token(user)}"
    return session


def csrf_of(session: requests.Session, airflow) -> str:
    page = session.get(airflow.api_url + PAGE, timeout=60)
    assert page.status_code == 200, page.text[:2000]
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def banner(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=60)
    assert page.status_code == 200
    found = re.search(r'<p class="(?:ok|err)" role="(?:status|alert)">(.*?)</p>', page.text, re.S)
    return found.group(1) if found else ""


def page_secret(airflow) -> bytes:
    """The key the page signs with (from the deployment's [api] secret_key), to forge what time makes."""
    return hashlib.sha256(b"airflow-provider-jira-auth/consent\x00" + airflow._api_secret_key.encode()).digest()


def add_as_the_form_saves(airflow, emulator, app, conn_id: str) -> None:
    """Every field of the form present, untouched ones null: so ``"broker_secret": null``."""
    extra = {name: None for name in CONN_FIELDS} | {
        "auth_type": "oauth2",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "auth_url": emulator.auth_url,
        "api_url": emulator.api_url,
        "scopes": "read:jira-work read:jira-user",
    }
    airflow.add_connection(conn_id, conn_type="jira_cloud", host=emulator.url, extra=extra)
    assert airflow.get_connection(conn_id)["extra_dejson"]["broker_secret"] is None


def connect_to_jira(airflow, session: requests.Session, conn_id: str) -> str:
    """Press "Connect to Jira": Atlassian's (the emulator's) consent approves, the callback stores it."""
    started = session.post(f"{airflow.api_url}{PAGE}/{conn_id}/start", data={"csrf": csrf_of(session, airflow)}, allow_redirects=False, timeout=60)
    assert started.status_code == 303, started.text
    consent = requests.get(started.headers["location"], allow_redirects=False, timeout=60)
    assert consent.status_code in (302, 303), consent.text
    back = session.get(consent.headers["location"], allow_redirects=False, timeout=120)
    assert back.status_code == 303, back.text
    return back.headers["location"]


def broker_post(airflow, secret: str, conn_id: str) -> requests.Response:
    body, signature = broker_protocol.signed_request(secret, conn_id, min_valid=0)
    return requests.post(
        f"{airflow.api_url}/jira-auth{broker_protocol.PATH}",
        data=body,
        headers={"Content-Type": "application/json", broker_protocol.SIGNATURE_HEADER: signature},
        timeout=60,
    )


def signing_secret_in(airflow, conn_id: str) -> str:
    stored = airflow.get_connection(conn_id)
    return signing_secret(conn_id, json.dumps({"host": stored["host"], "extra": stored["extra_dejson"]}))


def test_a_connection_made_with_the_form_then_connected_holds_its_own_broker_key(airflow, emulator, app):
    emulator.consent = "approve"
    admin = as_user(airflow, "admin")
    for conn_id in ("jira_page_a", "jira_page_b"):
        add_as_the_form_saves(airflow, emulator, app, conn_id)
        landed = connect_to_jira(airflow, admin, conn_id)
        assert "Connected" in banner(admin, airflow.api_url + landed if landed.startswith("/") else landed)
    a_extra = airflow.get_connection("jira_page_a")["extra_dejson"]
    b_extra = airflow.get_connection("jira_page_b")["extra_dejson"]
    assert a_extra["broker_secret"] and b_extra["broker_secret"] and a_extra["broker_secret"] != b_extra["broker_secret"]

    a_key = signing_secret_in(airflow, "jira_page_a")
    refused = [broker_post(airflow, secret, "jira_page_b").status_code for secret in (a_key, app.client_secret)]
    own = broker_post(airflow, signing_secret_in(airflow, "jira_page_b"), "jira_page_b")
    assert refused == [403, 403]
    assert own.status_code == 200, own.text


def test_a_banner_link_shows_only_to_its_user_and_only_for_minutes(airflow, emulator, app):
    op, admin = as_user(airflow, "op"), as_user(airflow, "admin")
    add_as_the_form_saves(airflow, emulator, app, "jira_page_listed")  # a row, so that the page has forms
    words = "Connected jira_prod to Jira. Your session expired: sign in again at evil.example"
    made = op.post(f"{airflow.api_url}{PAGE}/{quote(words, safe='')}/test", data={"csrf": csrf_of(op, airflow)}, allow_redirects=False, timeout=60)
    assert made.status_code == 303, made.text
    link = made.headers["location"]
    link = airflow.api_url + link if link.startswith("/") else link

    assert "evil.example" in banner(op, link)  # the op sees what the page said to them
    assert banner(admin, link) == ""  # nobody else does

    # The same words, signed for the admin but expired (as a link a few minutes old is).
    query = parse_qs(urlsplit(link).query)
    text, exp = query["error"][0], str(int(time.time()) - 1)
    sig = hmac.new(page_secret(airflow), f"flash\x00admin\x00{exp}\x00error\x00{text}".encode(), hashlib.sha256).hexdigest()[:32]
    expired = f"{airflow.api_url}{PAGE}?error={quote(text)}&exp={exp}&sig={sig}"
    assert banner(admin, expired) == ""


def test_a_csrf_token_is_bound_to_its_session_and_expires(airflow, emulator, app):
    add_as_the_form_saves(airflow, emulator, app, "jira_page_csrf")
    first = as_user(airflow, "op")
    second = as_user(airflow, "op")
    # A JWT issued for the same user in the same second is the same token: ask until another comes.
    deadline = time.monotonic() + 30
    while second.headers["Authorization"] == first.headers["Authorization"]:
        assert time.monotonic() < deadline, "the api-server issued one token for 30 s"
        time.sleep(0.1)
        second = as_user(airflow, "op")
    token = csrf_of(first, airflow)
    url = f"{airflow.api_url}{PAGE}/jira_page_csrf/test"

    elsewhere = second.post(url, data={"csrf": token}, allow_redirects=False, timeout=60)
    assert elsewhere.status_code == 403 and "The form is stale" in elsewhere.text

    issued = str(int(time.time()) - 7200)
    bound = hashlib.sha256(first.headers["Authorization"][7:].encode()).hexdigest()
    mac = hmac.new(page_secret(airflow), f"csrf\x00op\x00{bound}\x00{issued}".encode(), hashlib.sha256).hexdigest()
    old = first.post(url, data={"csrf": f"{issued}.{mac}"}, allow_redirects=False, timeout=60)
    assert old.status_code == 403 and "The form is stale" in old.text

    own = first.post(url, data={"csrf": token}, allow_redirects=False, timeout=120)
    assert own.status_code == 303, own.text  # the test ran, and its banner awaits on the page
