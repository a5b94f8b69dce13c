"""Prefect tasks: thin adapters over the weightvault core (retries, results, events)."""
