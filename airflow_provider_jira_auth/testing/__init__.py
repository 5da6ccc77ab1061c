"""Offline testing tools: a Jira Cloud emulator and pytest fixtures around it.

Nothing here imports Airflow or pytest (the fixtures live in ``testing.pytest_plugin``).
"""

from __future__ import annotations

from ._accounts import User
from ._dispatch import RecordedRequest
from ._oauth import OAuthApp, OAuthSettings
from ._runtime import Clock, Counters
from ._site import JiraSite, Project
from .emulator import JiraCloudEmulator, airflow_consent_callback

__all__ = [
    "Clock",
    "Counters",
    "JiraCloudEmulator",
    "JiraSite",
    "OAuthApp",
    "OAuthSettings",
    "Project",
    "RecordedRequest",
    "User",
    "airflow_consent_callback",
]
