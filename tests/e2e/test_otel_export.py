"""OpenTelemetry over OTLP/HTTP: a CLI put's spans (operation, file, store calls) and
metrics reach a real OTLP receiver; nothing of the content or the credentials does."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.durable_store import cli
from tests.support.otlp import attributes, otlp_receiver
from weightvault.config import Settings

WEIGHTS = b"otel-weights-" + bytes(range(60)) * 100


def test_a_put_exports_its_operation_span_with_file_and_store_children_and_metrics(
    vault_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_run = str(uuid.uuid4())
    src = make_tree(tmp_path / "model", {"model.bin": WEIGHTS})
    with otlp_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("PREFECT__FLOW_RUN_ID", flow_run)
        put = cli("put", str(src), "--name", "otel-model")
        assert put.returncode == 0, put.stderr
        artifact = json.loads(put.stdout)["artifact_id"]
        # The CLI has exited: its providers flushed at exit, so all of it has arrived.
        spans = received.spans()
        points = {
            name: received.metric_points(name)
            for name in (
                "weightvault.operations",
                "weightvault.bytes",
                "weightvault.operation.duration",
            )
        }

    by_id = {span.span_id: span for span in spans}
    (op,) = [
        s
        for s in spans
        if s.name == "artifact.ingested"
        and attributes(s.attributes).get("weightvault.artifact") == artifact
    ]
    op_attrs = attributes(op.attributes)
    assert op_attrs["weightvault.tier"] == "hot"
    assert op_attrs["weightvault.principal"] == "alice"
    assert op_attrs["weightvault.outcome"] == "ok"
    assert op_attrs["prefect.flow_run.id"] == flow_run
    (file_span,) = [s for s in spans if s.name == "file.put"]
    assert file_span.parent_span_id == op.span_id
    assert attributes(file_span.attributes)["weightvault.file"] == "model.bin"
    uploads = [s for s in spans if s.name == "store.put" and s.parent_span_id == file_span.span_id]
    assert uploads
    assert all(s.trace_id == op.trace_id for s in uploads)
    # The log's own appends are store calls of the operation too.
    assert any(by_id.get(s.parent_span_id) is op for s in spans if s.name.startswith("store."))

    ops = [
        (a, p.as_int)
        for a, p in points["weightvault.operations"]
        if a.get("kind") == "artifact.ingested"
    ]
    assert ops == [({"kind": "artifact.ingested", "tier": "hot", "outcome": "ok"}, 1)]
    stored = [
        p.as_int for a, p in points["weightvault.bytes"] if a == {"direction": "in", "tier": "hot"}
    ]
    assert stored == [len(WEIGHTS)]
    latency = [
        p
        for a, p in points["weightvault.operation.duration"]
        if a.get("kind") == "artifact.ingested"
    ]
    assert latency
    assert latency[0].count == 1
    assert latency[0].sum > 0

    exported = b"".join(r.SerializeToString() for r in received.traces + received.metrics)
    for secret in (WEIGHTS[:32], vault_settings.store.secret_key.encode()):
        assert secret not in exported
