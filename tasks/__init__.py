"""Prefect tasks: thin adapters over the weightvault core (retries, results, events).

Importing this package routes the vault's own log lines (redacted JSON) to
Prefect's run-log handler, so each flow run's logs in the UI show them.
"""

from __future__ import annotations

import logging

import prefect.main  # noqa: F401 - Prefect sets up its logging handlers when this is imported
from prefect.context import FlowRunContext, TaskRunContext

from weightvault.config import environment
from weightvault.logs import route_to_handlers


class _RunLogHandler(logging.Handler):
    """Prefect's API log handlers, for records logged inside a flow or task run only.

    Outside a run (the CLI, a test, a library call in a worker) there is no run
    to attach a line to, and Prefect's handler would warn on every record.
    """

    def __init__(self, targets: list[logging.Handler]) -> None:
        super().__init__()
        self._targets = targets

    def emit(self, record: logging.LogRecord) -> None:
        """Hand the record to Prefect's handlers when a run is active."""
        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        for target in self._targets:
            target.handle(record)


route_to_handlers(
    [_RunLogHandler(list(logging.getLogger("prefect.extra").handlers))],
    environment().log_level or "INFO",
)
