"""Prefect flows (DAGs), deployments, schedules and automations of weightvault."""
