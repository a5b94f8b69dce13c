"""OpenTelemetry: one span per vault operation, children per file and per store call, metrics.

Nothing is installed unless an OTLP endpoint is configured (``[telemetry]
otlp_endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``): without one every helper
is a no-op tracer or meter and costs next to nothing. The providers are the
vault's own, never the process-global ones (Prefect has its own). Attributes
carry identifiers only: kinds, artifact ids, tiers, principal names, bucket
and object keys, never key material or credentials.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Counter, Histogram, Meter, NoOpMeter
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from weightvault.config import other_variable

_SCOPE = "weightvault"
_MAX_OPEN = 1000


@dataclass
class _Instruments:
    operations: Counter
    failures: Counter
    bytes: Counter
    latency: Histogram


@dataclass
class _Open:
    span: Span
    started: float
    kind: str
    tier: str
    flow_run: str | None
    attributes: dict[str, Any] = field(default_factory=dict)


class _State:
    def __init__(self) -> None:
        self.endpoint: str | None = None
        self.tracer: Tracer = trace.NoOpTracer()
        self.meter: Meter = NoOpMeter(_SCOPE)
        self.instruments = _instruments(self.meter)
        self.providers: list[Any] = []
        self.open: OrderedDict[str, _Open] = OrderedDict()
        self.by_artifact: dict[str, str] = {}
        self.lock = threading.Lock()
        self.local = threading.local()


def _instruments(meter: Meter) -> _Instruments:
    return _Instruments(
        operations=meter.create_counter(
            "weightvault.operations", unit="{operation}", description="vault operations recorded"
        ),
        failures=meter.create_counter(
            "weightvault.failures", unit="{operation}", description="failed or refused operations"
        ),
        bytes=meter.create_counter(
            "weightvault.bytes", unit="By", description="plaintext bytes stored or read"
        ),
        latency=meter.create_histogram(
            "weightvault.operation.duration", unit="s", description="operation latency"
        ),
    )


_state = _State()


def otlp_endpoint(configured: str | None = None) -> str | None:
    """The OTLP/HTTP base URL: the ``[telemetry]`` setting, else ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    return configured or other_variable("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def configure_telemetry(configured: str | None = None) -> bool:
    """Install the OTLP/HTTP exporters once, if an endpoint is configured; whether one is."""
    endpoint = otlp_endpoint(configured)
    if endpoint is None or endpoint == _state.endpoint:
        return endpoint is not None
    with _state.lock:
        if _state.endpoint is not None:
            return True  # one endpoint per process: the first one configured
        try:
            _install(endpoint)
        except Exception:
            return False
    return True


def _install(endpoint: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    base = endpoint.rstrip("/")
    resource = Resource.create({"service.name": "weightvault"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=5))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=5),
        export_interval_millis=30_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    _state.tracer = tracer_provider.get_tracer(_SCOPE)
    _state.meter = meter_provider.get_meter(_SCOPE)
    _state.instruments = _instruments(_state.meter)
    _state.providers = [tracer_provider, meter_provider]
    _state.endpoint = endpoint


def flush_telemetry(timeout_millis: int = 5000) -> None:
    """Export the spans and metrics held so far (tests, and before a process exits)."""
    for provider in list(_state.providers):
        with contextlib.suppress(Exception):
            provider.force_flush(timeout_millis)


def _stack() -> list[str]:
    stack: list[str] | None = getattr(_state.local, "ops", None)
    if stack is None:
        stack = _state.local.ops = []
    return stack


def start_operation(
    op_id: str,
    kind: str,
    *,
    artifact_id: str | None,
    tier: str | None,
    principal: str | None,
    flow_run: str | None,
) -> None:
    """Open the span of one operation (ended by :func:`end_operation`, on any thread)."""
    if _state.endpoint is None:
        return
    attributes: dict[str, Any] = {"weightvault.operation": kind, "weightvault.op": op_id}
    if artifact_id:
        attributes["weightvault.artifact"] = artifact_id
    if tier:
        attributes["weightvault.tier"] = tier
    if principal:
        attributes["weightvault.principal"] = principal
    if flow_run:
        attributes["prefect.flow_run.id"] = flow_run
    span = _state.tracer.start_span(kind, attributes=attributes, kind=trace.SpanKind.INTERNAL)
    with _state.lock:
        _state.open[op_id] = _Open(span, time.perf_counter(), kind, tier or "", flow_run)
        if artifact_id:
            _state.by_artifact[artifact_id] = op_id
        while len(_state.open) > _MAX_OPEN:
            _, dropped = _state.open.popitem(last=False)
            dropped.span.end()
    _stack().append(op_id)


def end_operation(
    op_id: str,
    kind: str,
    *,
    tier: str | None,
    outcome: str,
    error: str | None = None,
    log_index: int | None = None,
) -> None:
    """Close the operation's span and count it (operations, failures, latency)."""
    instruments = _state.instruments
    with _state.lock:
        opened = _state.open.pop(op_id, None)
        for artifact, known in list(_state.by_artifact.items()):
            if known == op_id:
                del _state.by_artifact[artifact]
    with contextlib.suppress(ValueError):
        _stack().remove(op_id)
    labels = {"kind": kind, "tier": tier or "", "outcome": outcome}
    instruments.operations.add(1, labels)
    if outcome != "ok":
        instruments.failures.add(1, {**labels, "error": error or ""})
    if opened is None:
        return
    instruments.latency.record(
        time.perf_counter() - opened.started, {"kind": kind, "tier": tier or ""}
    )
    span = opened.span
    span.set_attribute("weightvault.outcome", outcome)
    if log_index is not None:
        span.set_attribute("weightvault.log_index", log_index)
    if outcome != "ok":
        span.set_attribute("weightvault.error", error or "")
        span.set_status(Status(StatusCode.ERROR, f"{outcome}: {error or ''}"))
    span.end()


def _parent(artifact_id: str | None = None) -> Any:
    """The context a child span hangs from: the current span, else the operation's."""
    current = trace.get_current_span()
    if current.get_span_context().is_valid:
        return None
    with _state.lock:
        op_id = _state.by_artifact.get(artifact_id) if artifact_id else None
        if op_id is None:
            stack = getattr(_state.local, "ops", None)
            op_id = stack[-1] if stack else None
        opened = _state.open.get(op_id) if op_id else None
    return trace.set_span_in_context(opened.span) if opened is not None else None


@contextlib.contextmanager
def file_span(artifact_id: str, path: str, direction: str, tier: str) -> Iterator[None]:
    """A child span of the artifact's operation for one file (``direction`` put or get)."""
    if _state.endpoint is None:
        yield
        return
    attributes = {
        "weightvault.artifact": artifact_id,
        "weightvault.file": path[:500],
        "weightvault.direction": direction,
        "weightvault.tier": tier,
    }
    with _state.tracer.start_as_current_span(
        f"file.{direction}", context=_parent(artifact_id), attributes=attributes
    ):
        yield


@contextlib.contextmanager
def store_span(method: str, bucket: str, key: str = "") -> Iterator[None]:
    """A child span for one object store call."""
    if _state.endpoint is None:
        yield
        return
    attributes = {"weightvault.store.method": method, "weightvault.store.bucket": bucket}
    if key:
        attributes["weightvault.store.key"] = key[:500]
    with _state.tracer.start_as_current_span(
        f"store.{method}", context=_parent(), attributes=attributes, kind=trace.SpanKind.CLIENT
    ):
        yield


def count_bytes(direction: str, tier: str, amount: int) -> None:
    """Count ``amount`` plaintext bytes moved (``in``: stored, ``out``: read)."""
    _state.instruments.bytes.add(amount, {"direction": direction, "tier": tier})
