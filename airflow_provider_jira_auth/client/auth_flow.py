"""How credentials get onto a request: the one auth flow both clients drive.

Modelled on httpx's ``Auth.auth_flow``: a generator handed the request, which yields it with
credentials, receives the response, and may yield it once more (after a 401 it can cure). The
sync client (requests) drives it in :mod:`.http`, the async client (httpx) in :mod:`.async_http`;
neither knows what an auth does about a 401. A flow only sets headers, which a
``requests.PreparedRequest`` and an ``httpx.Request`` both have. No Airflow imports.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator, MutableMapping
from typing import Any, Protocol, TypeVar

from requests.auth import AuthBase


class Request(Protocol):
    headers: MutableMapping[str, Any]


class Response(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...


R = TypeVar("R", bound=Request)
AuthFlow = Generator[R, Response, None]


class JiraAuth(AuthBase):
    """Credentials for :class:`~.http.JiraClient` and :class:`~.async_http.AsyncJiraClient`.

    Subclasses override :meth:`auth_flow`. Calling the auth (the requests interface) runs the
    flow's first step only: the credentials, without the handling of a 401.
    """

    #: replaces the generic advice in a 401's :class:`JiraAuthenticationError`: the auth knows
    #: which credential it sent
    unauthorized_hint: str | None = None
    #: scrubbed from every error message, like the ``Authorization`` header itself
    secret_values: tuple[str, ...] = ()
    #: whether a step of the flow may block (a refresh: a lock, the network): the async client
    #: then runs each step in a worker thread. Only a flow that surely does not says ``False``,
    #: and has its steps run on the event loop.
    blocking = True

    def auth_flow(self, request: R) -> AuthFlow[R]:
        """Yield ``request`` with credentials; a request yielded after the response is sent too.

        The client sends each request the flow yields and hands back its response; the last
        response is the answer. This one sends the request as it is (anonymous calls).
        """
        yield request

    def __call__(self, request: R) -> R:
        return next(self.auth_flow(request))


def next_request(flow: AuthFlow[R], response: Response | None = None) -> R | None:
    """The flow's next request (its first one without ``response``), or ``None`` once it is done.

    ``None`` rather than ``StopIteration``, which cannot cross ``asyncio.to_thread``.
    """
    try:
        return next(flow) if response is None else flow.send(response)
    except StopIteration:
        return None


class RequestsAuth(JiraAuth):
    """Any requests-style auth (a callable that sets headers) as a flow: set, send once.

    Its ``unauthorized_hint`` and ``secret_values`` are used if it has them. A
    ``handle_unauthorized(response) -> bool`` (how earlier releases let an auth ask for one more
    send after a 401) is still honoured, with a deprecation warning: write an
    :meth:`~JiraAuth.auth_flow` instead.
    """

    def __init__(self, auth: Callable[[Any], Any]) -> None:
        self.auth = auth
        self._handle_unauthorized: Callable[[Any], bool] | None = getattr(auth, "handle_unauthorized", None)
        if self._handle_unauthorized is not None:
            warnings.warn(
                f"{type(auth).__name__}.handle_unauthorized is deprecated: subclass "
                "airflow_provider_jira_auth.client.auth_flow.JiraAuth and yield the request again "
                "from auth_flow after a 401",
                DeprecationWarning,
                stacklevel=4,
            )

    def __repr__(self) -> str:
        return repr(self.auth)

    @property  # type: ignore[override]
    def unauthorized_hint(self) -> str | None:
        return getattr(self.auth, "unauthorized_hint", None)

    @property  # type: ignore[override]
    def secret_values(self) -> tuple[str, ...]:
        return tuple(getattr(self.auth, "secret_values", None) or ())

    def auth_flow(self, request: R) -> AuthFlow[R]:
        request = self.auth(request)
        response = yield request
        if response.status_code == 401 and self._handle_unauthorized and self._handle_unauthorized(response):
            yield self.auth(request)


class Anonymous(JiraAuth):
    """No credentials: the request as it is."""

    blocking = False


ANONYMOUS = Anonymous()


def as_jira_auth(auth: JiraAuth | Callable[[Any], Any] | None) -> JiraAuth:
    """The flow a client drives for ``auth``: itself, a :class:`RequestsAuth` around it, or none."""
    if auth is None:
        return ANONYMOUS
    return auth if isinstance(auth, JiraAuth) else RequestsAuth(auth)
