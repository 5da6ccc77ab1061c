"""The ``jira`` fixture (a Basic and a 3LO connection to a fresh emulator), a 3LO connection with
chosen scopes, and a task context."""

from tests.operators.conftest import context, jira, oauth_connect  # noqa: F401
