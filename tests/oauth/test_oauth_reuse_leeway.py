"""A refresh's retries end inside Atlassian's 10-minute reuse leeway, whatever the token endpoint answers.

Past the leeway, resending a refresh token whose answer was lost revokes the whole grant. The
client's default retry policy is driven here on a simulated clock: each request takes the time
it would (up to the client's timeout), each wait advances the clock instead of sleeping, and the
worst case over the answers Atlassian (or a proxy) can give must stay below 600 s.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest
import requests
import tenacity

from airflow_provider_jira_auth.auth.oauth2 import OAuthTokenClient
from airflow_provider_jira_auth.auth.token_state import TokenState
from airflow_provider_jira_auth.client.errors import JiraOAuthError, JiraTransportError

REUSE_LEEWAY = 600.0  # Atlassian's, in seconds


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _answer(status: int, retry_after: str | None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = b'{"error": "temporarily_unavailable"}'
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def timed_out(clock: SimulatedClock, timeout: float) -> requests.Response:
    clock.advance(timeout)
    raise requests.exceptions.ReadTimeout("read timed out")


def answered(status: int, retry_after: str | None = None) -> Callable[[SimulatedClock, float], requests.Response]:
    def answer(clock: SimulatedClock, timeout: float) -> requests.Response:
        clock.advance(0.2)
        return _answer(status, retry_after)

    return answer


WORST_CASES = {
    "every attempt times out": timed_out,
    "503 without Retry-After": answered(503),
    "500": answered(500),
    **{f"429 Retry-After {s}": answered(429, str(s)) for s in (1, 10, 30, 60, 119, 300, 599, 3600)},
    **{f"503 Retry-After {s}": answered(503, str(s)) for s in (30, 60, 300)},
}


@pytest.mark.parametrize("answer", list(WORST_CASES.values()), ids=list(WORST_CASES))
def test_a_refresh_gives_up_before_the_reuse_leeway_ends(monkeypatch: pytest.MonkeyPatch, answer) -> None:
    clock = SimulatedClock()

    class Session(requests.Session):
        def post(self, url, **kwargs):  # type: ignore[override]
            return answer(clock, kwargs["timeout"])

    client = OAuthTokenClient("https://auth.atlassian.com", "client-id", "client-secret", session=Session())
    # The client's own (default) policy, on the simulated clock: its waits advance the clock.
    monkeypatch.setattr(tenacity, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(client.retry._retrying, "sleep", clock.advance)

    with pytest.raises((JiraOAuthError, JiraTransportError)):
        client.refresh(TokenState(refresh_token="rt-1"))

    assert clock.now < REUSE_LEEWAY
