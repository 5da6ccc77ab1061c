"""The emulator's rate limits as Jira Cloud sends them: headers on every answer, a spent quota."""

from __future__ import annotations

from datetime import datetime

import requests

from airflow_provider_jira_auth.testing import JiraCloudEmulator


def _myself(emu: JiraCloudEmulator, http: requests.Session) -> requests.Response:
    user = emu.default_user
    return http.get(emu.url + "/rest/api/3/myself", auth=(user.email, user.api_token), timeout=10)


def test_under_a_burst_limit_every_answer_carries_the_limit_and_what_is_left(
    emu: JiraCloudEmulator, http: requests.Session
) -> None:
    emu.limit_request_rate(5)

    answers = [_myself(emu, http) for _ in range(6)]

    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert [a.headers["X-RateLimit-Limit"] for a in answers[:5]] == ["5"] * 5
    assert [int(a.headers["X-RateLimit-Remaining"]) for a in answers[:2]] == [4, 3]
    assert answers[4].headers["X-RateLimit-NearLimit"] == "true"  # under 20 % left
    assert "X-RateLimit-NearLimit" not in answers[0].headers
    refused = answers[5]
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Reason"] == "jira-burst-based"
    assert int(refused.headers["Retry-After"]) >= 1


def test_a_spent_quota_refuses_every_call_until_the_reset(emu: JiraCloudEmulator, http: requests.Session) -> None:
    reset = emu.exhaust_quota(3.0, reason="jira-quota-tenant-based", limit=65000)

    refused = _myself(emu, http)

    assert refused.status_code == 429
    assert refused.headers["RateLimit-Reason"] == "jira-quota-tenant-based"
    assert refused.headers["X-RateLimit-Limit"] == "65000"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["Retry-After"] == "3"
    reset_at = datetime.fromisoformat(refused.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
    assert abs(reset_at.timestamp() - reset) <= 1.0

    emu.advance(3.5)
    assert _myself(emu, http).status_code == 200
