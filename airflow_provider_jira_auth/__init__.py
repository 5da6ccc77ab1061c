"""Apache Airflow provider for Jira Cloud (API tokens and OAuth 2.0 3LO with rotating refresh tokens)."""

__version__ = "0.1.0"
