"""The "Jira connections" page: every ``jira_cloud`` connection, its token health, Test, and 3LO consent.

It lists the metadata-DB ``jira_cloud`` connections the signed-in user may read, with auth type,
site, token store and token health. **Test** runs ``JiraCloudHook(conn_id).test_connection()`` in
the api-server on the real connection id (not on a copy, as Airflow's own Test does), for users
with the rights Airflow's Test needs. **Connect to Jira** / **Reconnect** runs the 3LO consent
round trip: after Atlassian's consent page the refresh token lands in that connection. Only users
allowed to edit the connection may start or finish it. The OAuth ``state`` travels in a
short-lived cookie signed with the api-server's secret and bound to the user and the connection,
so a redirect that another person's browser started (or a replayed one) is refused. Every form
carries a CSRF token bound to the session (its JWT) that expires, and a banner after a redirect is
shown only to the user it was made for, for a few minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from airflow_provider_jira_auth.client.errors import JiraError

log = logging.getLogger(__name__)

PAGE_PATH = "/connect"
CALLBACK_PATH = "/connect/callback"
STATE_COOKIE = "jira_auth_consent"
STATE_TTL = 600
#: A banner link is shown only to the user it was made for, and only this long.
FLASH_TTL = 300
#: A form's CSRF token is valid in the session it was made for, and only this long.
CSRF_TTL = 3600

router = APIRouter()


# -- who is asking -----------------------------------------------------------------------------


def _session_token(request: Request) -> str:
    """The credential of the signed-in session: Airflow's JWT (Bearer header, else its cookie)."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    authorization = request.headers.get("Authorization", "")
    return authorization[7:] if authorization.lower().startswith("bearer ") else request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")


async def _current_user(request: Request) -> Any | None:
    from fastapi import HTTPException

    from airflow_provider_jira_auth._compat import resolve_user_from_token

    token = _session_token(request)
    if not token:
        return None
    try:
        return await resolve_user_from_token(token)
    except HTTPException:
        return None


def _team_of(conn_id: str) -> str | None:
    """The connection's team, as Airflow's own connection endpoints look it up (multi-team only)."""
    from airflow.models.connection import Connection

    if not _multi_team() or not hasattr(Connection, "get_team_name"):  # Airflow 3.0 has no teams
        return None
    return Connection.get_team_name(conn_id)


def _multi_team() -> bool:
    from airflow.configuration import conf

    return conf.getboolean("core", "multi_team", fallback=False)


def _authorized(user: Any, conn_id: str | None, method: str, team_name: str | None) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    details = ConnectionDetails(conn_id=conn_id, team_name=team_name) if team_name else ConnectionDetails(conn_id=conn_id)
    return bool(get_auth_manager().is_authorized_connection(method=method, details=details, user=user))


def _may_edit(user: Any, conn_id: str) -> bool:
    """What ``PUT /api/v2/connections/{conn_id}`` would allow this user (team included). Does DB I/O."""
    return _authorized(user, conn_id, "PUT", _team_of(conn_id))


def _may_test(user: Any, conn_id: str) -> bool:
    """What Airflow's ``POST /api/v2/connections/test`` needs: POST on connections and GET on this one."""
    team = _team_of(conn_id)
    return _authorized(user, None, "POST", team) and _authorized(user, conn_id, "GET", team)


def _test_enabled() -> bool:
    from airflow.configuration import conf

    return conf.get("core", "test_connection", fallback="Disabled").lower().strip() == "enabled"


def _user_key(user: Any) -> str:
    return str(getattr(user, "get_id", lambda: None)() or getattr(user, "username", "") or user)


def _login_redirect(request: Request) -> Response:
    from airflow.api_fastapi.app import get_auth_manager

    login = get_auth_manager().get_url_login()
    return RedirectResponse(f"{login}?next={quote(str(request.url))}", status_code=303)


# -- the signed state cookie ---------------------------------------------------------------------


def _secret() -> bytes:
    from airflow.configuration import conf

    secret = conf.get("api", "secret_key", fallback="") or conf.get("api_auth", "jwt_secret", fallback="")
    if not secret:
        raise JiraError("the api-server has no [api] secret_key: set one to use the Jira connections page")
    return hashlib.sha256(b"airflow-provider-jira-auth/consent\x00" + secret.encode()).digest()


def _sign(payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return f"{body}.{hmac.new(_secret(), body.encode(), hashlib.sha256).hexdigest()}"


def _unsign(value: str | None) -> dict[str, Any] | None:
    if not value or "." not in value:
        return None
    body, signature = value.rsplit(".", 1)
    if not hmac.compare_digest(hmac.new(_secret(), body.encode(), hashlib.sha256).hexdigest(), signature):
        return None
    payload = json.loads(base64.urlsafe_b64decode(body.encode()))
    return payload if payload.get("exp", 0) > time.time() else None


def _callback_url(request: Request) -> str:
    return str(request.url_for("jira_consent_callback"))


# -- pages -------------------------------------------------------------------------------------


def _jira_connections() -> list[Any]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(Connection).where(Connection.conn_type == "jira_cloud").order_by(Connection.conn_id)).all()
        for row in rows:
            session.expunge(row)
    return list(rows)


def _is_oauth2(conn: Any) -> bool:
    return conn.conn_type == "jira_cloud" and str(conn.extra_dejson.get("auth_type") or "").lower() == "oauth2"


def _db_jira_connection(conn_id: str) -> Any | None:
    """The metadata-DB ``jira_cloud`` connection ``conn_id``, or None."""
    from airflow_provider_jira_auth.consent.storage import find_connection

    conn, where = find_connection(conn_id)
    return conn if conn is not None and where == "db" and conn.conn_type == "jira_cloud" else None


def _db_oauth_connection(conn_id: str) -> Any | None:
    """The metadata-DB ``jira_cloud`` oauth2 connection ``conn_id``, or None.

    Only those can take a consent here: a connection from an environment variable or a secrets
    backend cannot be written back (``airflow-jira-auth authorize`` prints what to store instead).
    """
    from airflow_provider_jira_auth.consent.storage import find_connection

    conn, where = find_connection(conn_id)
    return conn if conn is not None and where == "db" and _is_oauth2(conn) else None


def _listing(user: Any) -> list[dict[str, Any]]:
    """The rows of the page: the ``jira_cloud`` connections this user may see, with their token health."""
    from airflow_provider_jira_auth.client.errors import JiraConfigError
    from airflow_provider_jira_auth.consent.storage import connection_status

    rows = []
    may_post = {}
    for conn in _jira_connections():
        team = getattr(conn, "team_name", None) if _multi_team() else None
        # The page shows what Airflow's own Connections list would: nothing to users who may not read it.
        if not _authorized(user, conn.conn_id, "GET", team):
            continue
        try:
            health = connection_status(conn.conn_id)
        except JiraConfigError as exc:
            health = {"grant": "not connected yet"} if exc.field == "extra.refresh_token" else {"problem": str(exc)}
        except JiraError as exc:
            health = {"problem": str(exc)}
        if team not in may_post:
            may_post[team] = _authorized(user, None, "POST", team)
        rows.append(_row(conn, health, editable=_authorized(user, conn.conn_id, "PUT", team), testable=may_post[team]))
    return rows


@router.get(PAGE_PATH, response_class=HTMLResponse)
async def connect_page(request: Request, message: str = "", error: str = "", exp: str = "", sig: str = "") -> Response:
    user = await _current_user(request)
    if user is None:
        return _login_redirect(request)
    # Only banners this page wrote itself, for this user, minutes ago: a crafted link, or one a
    # user made the page sign with words of their own (a connection id), shows nothing to others.
    kind, text = ("message", message) if message else ("error", error)
    if not _flash_valid(sig, exp, _user_key(user), kind, text):
        message = error = ""
    rows = await run_in_threadpool(_listing, user)
    # Connections hidden from this user must not read as "there are none: create one".
    empty_note = None if rows or _authorized(user, None, "GET", None) else _NO_ACCESS_NOTE
    return HTMLResponse(
        _page(
            rows, _callback_url(request), message, error,
            csrf=_csrf_token(user, _session_token(request)), empty_note=empty_note, test_enabled=_test_enabled(),
        )
    )


async def _form_user(
    request: Request, conn_id: str, csrf: str, may: Callable[[Any, str], bool], verb: str
) -> tuple[Any, Response | None]:
    """The user posting a form about ``conn_id``, or the answer that refuses them: a login redirect,
    403 when ``may`` says no (for ``verb``: "test", "edit"), 403 for a stale form (CSRF)."""
    user = await _current_user(request)
    if user is None:
        return None, _login_redirect(request)
    if not await run_in_threadpool(may, user, conn_id):
        return user, _back(request, error=f"You may not {verb} connection {conn_id}.", status=403)
    if not _csrf_valid(csrf, user, _session_token(request)):
        return user, _back(request, error="The form is stale: reload the page and try again.", status=403)
    return user, None


@router.post(PAGE_PATH + "/{conn_id}/test")
async def run_test(request: Request, conn_id: str, csrf: str = Form("")) -> Response:
    """Test the stored connection ``conn_id`` itself (in a thread) and show the hook's answer."""
    user, refused = await _form_user(request, conn_id, csrf, _may_test, "test")
    if refused is not None:
        return refused
    if not _test_enabled():
        return _back(request, error=_TEST_DISABLED, status=403)
    if await run_in_threadpool(_db_jira_connection, conn_id) is None:
        return _back(request, user, error=f"{conn_id} is not a jira_cloud connection in the metadata database.")
    ok, summary = await run_in_threadpool(_run_test, conn_id)
    log.info("Jira connections page: %s tested connection %r: %s", _user_key(user), conn_id, "ok" if ok else "failed")
    if ok:
        return _back(request, user, message=f"Test of {conn_id} passed: {summary}")
    return _back(request, user, error=f"Test of {conn_id} failed: {summary}")


def _run_test(conn_id: str) -> tuple[bool, str]:
    from airflow_provider_jira_auth.hooks.jira_cloud import JiraCloudHook

    hook = JiraCloudHook(jira_conn_id=conn_id)
    try:
        return hook.test_connection()
    finally:
        hook.close()


@router.post(PAGE_PATH + "/{conn_id}/start")
async def start(request: Request, conn_id: str, csrf: str = Form("")) -> Response:
    user, refused = await _form_user(request, conn_id, csrf, _may_edit, "edit")
    if refused is not None:
        return refused
    from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient
    from airflow_provider_jira_auth.consent.flow import DEFAULT_SCOPES, new_state, with_offline_access
    from airflow_provider_jira_auth.settings import JiraConnectionSettings, extra_value

    conn = await run_in_threadpool(_db_oauth_connection, conn_id)
    if conn is None:
        return _back(
            request, user,
            error=f"{conn_id} is not a jira_cloud connection with auth_type oauth2 in the metadata database: "
            f"only those can be connected here (for others run: airflow-jira-auth authorize --conn-id {conn_id}).",
        )
    extra = conn.extra_dejson
    client_id, client_secret = extra_value(extra, "client_id"), extra_value(extra, "client_secret")
    if not client_id or not client_secret:
        return _back(request, user, error=f"Connection {conn_id} needs client_id and client_secret before it can connect.")
    try:
        settings = JiraConnectionSettings.of(conn_id, conn, refresh_token="pending")
    except JiraError as exc:
        return _back(request, user, error=str(exc))
    scopes = with_offline_access(settings.scopes or DEFAULT_SCOPES)
    state = new_state()
    link = OAuthTokenClient(settings.auth_url, client_id, client_secret, conn_id=conn_id).authorization_url(
        _callback_url(request), scopes, state
    )
    response = RedirectResponse(link, status_code=303)
    cookie = _sign({"state": state, "conn_id": conn_id, "user": _user_key(user), "exp": time.time() + STATE_TTL})
    response.set_cookie(
        STATE_COOKIE, cookie, max_age=STATE_TTL, httponly=True, samesite="lax",
        secure=request.url.scheme == "https", path=request.url_for("connect_page").path,
    )
    return response


@router.get(CALLBACK_PATH, name="jira_consent_callback")
async def callback(request: Request) -> Response:
    user = await _current_user(request)
    if user is None:
        return _login_redirect(request)
    pending = _unsign(request.cookies.get(STATE_COOKIE))
    params = request.query_params
    if pending is None or not hmac.compare_digest(params.get("state", ""), str(pending.get("state"))):
        return _back(request, user, error="This consent does not match one started from this browser (wrong or expired state). Nothing changed.", clear=True)
    if pending.get("user") != _user_key(user):
        return _back(request, user, error="This consent was started by another user. Nothing changed.", clear=True)
    conn_id = str(pending["conn_id"])
    if not await run_in_threadpool(_may_edit, user, conn_id):
        return _back(request, user, error=f"You may not edit connection {conn_id}. Nothing changed.", status=403, clear=True)
    if params.get("error"):
        reason = "was denied" if params["error"] == "access_denied" else f"failed ({params['error']})"
        return _back(request, user, error=f"The consent for {conn_id} {reason}. Nothing changed.", clear=True)
    if not params.get("code"):
        return _back(request, user, error="Atlassian sent no code back. Nothing changed.", clear=True)
    try:
        summary = await run_in_threadpool(_finish, conn_id, params["code"], _callback_url(request))
    except JiraError as exc:
        return _back(request, user, error=f"{conn_id}: {exc}. Nothing changed.", clear=True)
    log.info("Jira connections page: %s consented connection %r", _user_key(user), conn_id)
    return _back(request, user, message=summary, clear=True)


def _finish(conn_id: str, code: str, redirect_uri: str) -> str:
    from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient
    from airflow_provider_jira_auth.client.errors import JiraConfigError
    from airflow_provider_jira_auth.consent.flow import complete_consent
    from airflow_provider_jira_auth.consent.storage import save_consent
    from airflow_provider_jira_auth.settings import JiraConnectionSettings

    conn = _db_oauth_connection(conn_id)
    if conn is None:  # deleted, or changed, since the consent started
        raise JiraConfigError("conn_id", "no longer a jira_cloud oauth2 connection in the metadata database")
    settings = JiraConnectionSettings.of(conn_id, conn, refresh_token="pending")
    assert settings.client_id and settings.client_secret
    with OAuthTokenClient(settings.auth_url, settings.client_id, settings.client_secret, conn_id=conn_id) as client:
        consent = complete_consent(client, code=code, redirect_uri=redirect_uri, api_url=settings.api_url, site_url=settings.site_url)
    fields = {"host": str(consent.site["url"]), "extra": {"cloud_id": str(consent.site["id"])}}
    save_consent(conn_id, fields, consent.state, existing=conn, where="db")
    scopes = " ".join(consent.state.scopes)
    return f"Connected {conn_id} to {consent.site.get('name')} ({consent.site['url']}); scopes granted: {scopes}."


def _back(
    request: Request, user: Any = None, *, message: str = "", error: str = "", status: int = 303, clear: bool = False
) -> Response:
    """Back to the page with a banner: a link signed for ``user`` and :data:`FLASH_TTL` seconds, or,
    when ``status`` is not a redirect, the page itself with the error (nothing to sign)."""
    if status == 303:
        kind, text = ("message", message) if message else ("error", error)
        exp = str(int(time.time()) + FLASH_TTL)
        query = f"?{kind}={quote(text)}&exp={exp}&sig={_flash_signature(_user_key(user), exp, kind, text)}"
        response: Response = RedirectResponse(str(request.url_for("connect_page")) + query, status_code=303)
    else:
        response = HTMLResponse(_page([], "", "", error), status_code=status)
    if clear:
        response.delete_cookie(STATE_COOKIE, path=request.url_for("connect_page").path)
    return response


def _flash_signature(user: str, exp: str, kind: str, text: str) -> str:
    return hmac.new(_secret(), f"flash\x00{user}\x00{exp}\x00{kind}\x00{text}".encode(), hashlib.sha256).hexdigest()[:32]


def _flash_valid(sig: str, exp: str, user: str, kind: str, text: str) -> bool:
    """Whether a banner link was signed for ``user`` and has not expired (nor claims a far future)."""
    if not exp.isdigit() or not time.time() < int(exp) <= time.time() + FLASH_TTL:
        return False
    return hmac.compare_digest(sig, _flash_signature(user, exp, kind, text))


def _csrf_mac(user: Any, session: str, issued: str) -> str:
    # The session's credential enters only as a digest: a token's HMAC must not be computable
    # from a log line or a leaked form alone.
    bound = hashlib.sha256(session.encode()).hexdigest()
    return hmac.new(_secret(), f"csrf\x00{_user_key(user)}\x00{bound}\x00{issued}".encode(), hashlib.sha256).hexdigest()


def _csrf_token(user: Any, session: str) -> str:
    """A form's CSRF token: bound to the user and the session (its JWT), valid :data:`CSRF_TTL` seconds."""
    issued = str(int(time.time()))
    return f"{issued}.{_csrf_mac(user, session, issued)}"


def _csrf_valid(token: str, user: Any, session: str) -> bool:
    issued, _, mac = token.partition(".")
    if not session or not issued.isdigit() or not -60 <= time.time() - int(issued) <= CSRF_TTL:
        return False
    return hmac.compare_digest(mac, _csrf_mac(user, session, issued))


# -- HTML --------------------------------------------------------------------------------------


def _row(conn: Any, health: dict[str, Any], *, editable: bool, testable: bool) -> dict[str, Any]:
    return {"conn": conn, "health": health, "editable": editable, "testable": testable}


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


_NO_ACCESS_NOTE = (
    "Your Airflow role may not see connections, so none is listed here: connecting Airflow to Jira needs "
    "edit rights on connections. Ask an Airflow admin."
)
_TEST_DISABLED = (
    "Testing connections is disabled in Airflow's configuration ([core] test_connection): "
    "ask your deployment admin to enable it."
)
_AUTH_LABELS = {"basic": "API token", "oauth2": "OAuth 2.0 (3LO)"}


def _health_cells(conn: Any, health: dict[str, Any]) -> tuple[str, str, str, str]:
    """Auth type, token store, refresh token and "expires unused in", as the page shows them."""
    auth = str(health.get("auth_type") or conn.extra_dejson.get("auth_type") or "basic").lower()
    problem = health.get("problem")
    if auth != "oauth2":
        return _AUTH_LABELS.get(auth, auth), "-", str(problem or "not used (API token)"), "-"
    store = str(health.get("grant_store") or "-")
    if health.get("refresh_rotated_at"):
        token = f"obtained {_when(health['refresh_rotated_at'])}"
    elif health.get("refresh_origin"):  # a state without an issue time: put in by hand
        token = f"held, {health['refresh_origin']}"
    else:
        token = str(problem or health.get("grant") or "not connected yet")
    days = health.get("days_until_inactivity_expiry")
    if days is not None:
        expiry = f"{days:.0f} days"
    elif health.get("refresh_origin"):
        expiry = "unknown (at most 90 days)"
    else:
        expiry = "-"
    return _AUTH_LABELS["oauth2"], store, token, expiry


def _page(
    rows: list[dict[str, Any]],
    callback: str,
    message: str,
    error: str,
    *,
    csrf: str = "",
    empty_note: str | None = None,
    test_enabled: bool = True,
) -> str:
    esc = html.escape
    body = []
    if message:
        body.append(f'<p class="ok" role="status">{esc(message)}</p>')
    if error:
        body.append(f'<p class="err" role="alert">{esc(error)}</p>')

    def form(conn_id: str, action: str, label: str) -> str:
        return (
            f'<form method="post" action="connect/{quote(conn_id, safe="")}/{action}" target="_top">'
            f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
            f'<button type="submit">{esc(label)}</button></form>'
        )

    if rows:
        body.append(
            "<table><tr><th>Connection</th><th>Auth</th><th>Site</th><th>Token store</th><th>Refresh token</th>"
            "<th>Expires unused in</th><th>Actions</th></tr>"
        )
        for row in rows:
            conn, health = row["conn"], row["health"]
            auth, store, token, expiry = _health_cells(conn, health)
            actions = []
            if not row["testable"]:
                actions.append('<span class="muted">Test needs connection rights</span>')
            elif not test_enabled:
                actions.append('<span class="muted" title="[core] test_connection">Test is disabled</span>')
            else:
                actions.append(form(conn.conn_id, "test", "Test"))
            if auth == _AUTH_LABELS["oauth2"]:
                if row["editable"]:
                    held = bool(health.get("refresh_origin"))
                    actions.append(form(conn.conn_id, "start", "Reconnect" if held else "Connect to Jira"))
                else:
                    actions.append('<span class="muted">Connect needs edit rights</span>')
            body.append(
                f"<tr><td>{esc(conn.conn_id)}</td><td>{esc(auth)}</td><td>{esc(str(conn.host or '-'))}</td>"
                f"<td>{esc(store)}</td><td class=\"wrap\">{esc(token)}</td><td>{esc(expiry)}</td>"
                f'<td class="actions">{"".join(actions)}</td></tr>'
            )
        body.append("</table>")
    elif empty_note:
        body.append(f'<p class="muted" id="no-access">{esc(empty_note)}</p>')
    elif callback:
        body.append(
            "<p>No <code>jira_cloud</code> connection yet: create one under Admin &rarr; Connections (for OAuth 2.0, "
            "with <code>auth_type: oauth2</code> and the client id and secret of your app), then come back.</p>"
        )
    if callback:
        body.append(
            f'<p class="muted">For OAuth 2.0, register this callback URL in your app (developer console &rarr; '
            f"Authorization): <code>{esc(callback)}</code></p>"
        )
    return _TEMPLATE.replace("{body}", "\n".join(body))


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Jira connections</title>
<style>
 body{font-family:system-ui,sans-serif;margin:2rem;color:#172b4d}
 h1{font-size:1.4rem} table{border-collapse:collapse;margin:1rem 0}
 th,td{border-bottom:1px solid #dfe1e6;padding:.5rem .8rem;text-align:left;white-space:nowrap;vertical-align:top}
 td.wrap{white-space:normal;max-width:22rem} td.actions form{display:inline-block;margin-right:.4rem}
 button{background:#0052cc;color:#fff;border:0;border-radius:3px;padding:.4rem .9rem;cursor:pointer;white-space:nowrap}
 .ok{background:#e3fcef;padding:.6rem;border-radius:3px} .err{background:#ffebe6;padding:.6rem;border-radius:3px}
 .muted{color:#6b778c} code{background:#f4f5f7;padding:0 .2rem}
</style></head>
<body><h1>Jira Cloud connections</h1>
<p class="muted">Every <code>jira_cloud</code> connection you may see. <b>Test</b> calls Jira's <code>/myself</code>
with the stored connection, from the api-server. For OAuth 2.0, <b>Connect to Jira</b> asks you to consent as the
Jira user your DAGs should act as; the refresh token is stored and kept current by the provider.</p>
{body}
</body></html>"""
