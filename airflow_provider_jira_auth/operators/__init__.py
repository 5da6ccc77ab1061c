"""Operators for Jira Cloud (see jira_cloud.py). Kept import-free: DAG parsing imports this package."""
