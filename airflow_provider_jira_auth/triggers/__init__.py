"""Triggers for Jira Cloud's deferrable sensors (see jira_cloud.py)."""
