"""The ``jira`` fixture (a Basic and a 3LO connection to a fresh emulator) and a task context."""

from tests.operators.conftest import context, jira  # noqa: F401
