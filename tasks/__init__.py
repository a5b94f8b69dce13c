"""Prefect tasks: thin adapters over the weightvault core (retries, results, events).

Importing this package routes the vault's own log lines (redacted JSON) to
Prefect's run-log handler, so each flow run's logs in the UI show them.
"""

from __future__ import annotations

import logging

import prefect.main  # noqa: F401 - Prefect sets up its logging handlers when this is imported

from weightvault.config import environment
from weightvault.logs import route_to_handlers

route_to_handlers(
    list(logging.getLogger("prefect.extra").handlers), environment().log_level or "INFO"
)
