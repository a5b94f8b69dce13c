"""Telemetry: every vault operation as a Prefect event and as OpenTelemetry spans and metrics.

Never blocks or fails an operation: events go through a bounded queue to a
daemon thread; OpenTelemetry is installed only when an OTLP endpoint is
configured. Names, resources and configuration: ``docs/events.md``.
"""

from weightvault.telemetry._events import (
    Emitter,
    EmitterStats,
    emit,
    event_name,
    event_stats,
    flush_events,
    prefect_api_url,
    prefect_event,
    set_api_url_source,
)
from weightvault.telemetry._otel import (
    configure_telemetry,
    count_bytes,
    end_operation,
    file_span,
    flush_telemetry,
    otlp_endpoint,
    start_operation,
    store_span,
)

__all__ = [
    "Emitter",
    "EmitterStats",
    "configure_telemetry",
    "count_bytes",
    "emit",
    "end_operation",
    "event_name",
    "event_stats",
    "file_span",
    "flush_events",
    "flush_telemetry",
    "otlp_endpoint",
    "prefect_api_url",
    "prefect_event",
    "set_api_url_source",
    "start_operation",
    "store_span",
]
