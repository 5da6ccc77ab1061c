"""What docs/security.md says about ``dag.test()`` at DEBUG holds for the installed Airflow.

Airflow's in-process supervisor (``dag.test()``, ``airflow dags test``) logs each message a task
sends at DEBUG, the ``MaskSecret`` that registers a secret for masking included, value in clear.
That is Airflow's code, not the provider's; the page warns users. If Airflow stops logging the
value, the first test fails and the warning can be narrowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SECRET = "rt-secret-0123456789"
SECURITY_MD = Path(__file__).resolve().parents[2] / "docs" / "security.md"


class RecordingLog:
    """Stands in for the structlog logger Airflow's comms log through."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def debug(self, event: str, **kw: Any) -> None:
        self.lines.append(("debug", event, kw))

    def __getattr__(self, level: str):
        return lambda event, **kw: self.lines.append((level, event, kw))


class AnsweringSupervisor:
    """Answers every request with nothing, as Airflow's supervisor answers ``MaskSecret``."""

    def __init__(self) -> None:
        self.comms: Any = None

    def _handle_request(self, msg: Any, log: Any, req_id: int) -> None:
        self.comms.messages.append(None)


def _airflow_minor() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


@pytest.mark.skipif(_airflow_minor() < (3, 3), reason="the page speaks of Airflow 3.3's in-process supervisor")
def test_airflows_in_process_supervisor_logs_a_masked_secret_in_clear_at_debug() -> None:
    from airflow.sdk.execution_time.comms import MaskSecret
    from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms

    log, supervisor = RecordingLog(), AnsweringSupervisor()
    comms = InProcessSupervisorComms(supervisor=supervisor, log=log)
    supervisor.comms = comms

    comms.send(MaskSecret(value=SECRET, name="refresh_token"))

    [(level, event, fields)] = log.lines
    assert (level, event) == ("debug", "Sending request")
    assert SECRET in repr(fields["msg"])


def test_the_security_page_warns_users_of_dag_test_at_debug() -> None:
    text = SECURITY_MD.read_text(encoding="utf-8")
    section = text.split("### `dag.test()` and `airflow dags test` at DEBUG print masked values", 1)[1]

    assert "Sending request" in section and "MaskSecret(value=...)" in section
    assert "run at INFO" in section and "test_dag_test_debug_logging.py" in section
