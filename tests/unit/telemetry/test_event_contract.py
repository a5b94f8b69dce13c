"""The Prefect event contract (names, resources, payload) and an emitter that never blocks."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weightvault.telemetry import (
    Emitter,
    emit,
    event_name,
    prefect_api_url,
    prefect_event,
    set_api_url_source,
)


@pytest.mark.parametrize(
    ("kind", "outcome", "integrity", "name"),
    [
        ("artifact.read", "ok", False, "weightvault.artifact.read"),
        ("artifact.exported", "ok", False, "weightvault.artifact.exported"),
        ("key.compromised", "ok", False, "weightvault.key.compromised"),
        ("grant.accessed", "ok", False, "weightvault.grant.used"),
        ("artifact.promoted", "refused", False, "weightvault.artifact.denied"),
        ("grant.accessed", "refused", False, "weightvault.grant.denied"),
        ("artifact.verified", "failed", True, "weightvault.artifact.integrity_failed"),
        ("catalog.rebuilt", "failed", True, "weightvault.catalog.integrity_failed"),
        ("artifact.read", "failed", False, "weightvault.artifact.read.failed"),
    ],
)
def test_event_names(kind: str, outcome: str, integrity: bool, name: str) -> None:
    assert event_name(kind, outcome, integrity=integrity) == name


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "0001-abc",
        "ts": "2026-01-01T00:00:00.000000+00:00",
        "kind": "store.gc",
        "phase": "outcome",
        "op": "0000-op",
        "principal": {"name": "alice", "keyid": "k1", "sig": "c2ln"},
        "client": {"host": "hmac-sha256:ab", "pid": 7, "process": "weightvault", "flow_run": None},
        "artifact_id": None,
        "tier": None,
        "key_ids": ["kek@v1"],
        "outcome": "failed",
        "reason": "store unavailable",
        "details": {"error": "StoreUnavailableError", "removed": 3, "nested": {"a": 1}},
    }
    doc.update(over)
    return doc


def test_an_operation_without_artifact_is_about_the_vault_and_carries_the_payload() -> None:
    event = prefect_event(_doc(), index=12, vault="wv")
    assert event["event"] == "weightvault.store.gc.failed"
    assert event["resource"] == {
        "prefect.resource.id": "weightvault.vault.wv",
        "prefect.resource.name": "wv",
    }
    roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in event["related"]}
    assert roles == {
        "principal": "weightvault.principal.alice",
        "client": "weightvault.client.hmac-sha256:ab",
        "key": "weightvault.key.kek@v1",
    }
    payload = event["payload"]
    assert payload["log_index"] == 12
    assert payload["error"] == "StoreUnavailableError"
    assert (payload["op"], payload["event_id"], payload["operation"]) == (
        "0000-op",
        "0001-abc",
        "store.gc",
    )
    assert payload["details"] == {"error": "StoreUnavailableError", "removed": 3}
    assert "c2ln" not in str(event)  # the principal's signature is no business of the feed
    # The same log event always has the same Prefect id (a retried post is one event).
    assert prefect_event(_doc(), index=12, vault="wv")["id"] == event["id"]


def test_flow_run_and_training_run_are_related() -> None:
    doc = _doc(
        kind="artifact.ingested",
        artifact_id="a1",
        tier="hot",
        outcome="ok",
        client={"host": "hmac-sha256:ab", "pid": 1, "process": "p", "flow_run": "f-1"},
        details={"run_id": "run-9"},
    )
    event = prefect_event(doc, index=1, vault="wv", training_run="from-env")
    roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in event["related"]}
    assert roles["flow-run"] == "prefect.flow-run.f-1"
    assert roles["training-run"] == "weightvault.training-run.run-9"
    assert roles["tier"] == "weightvault.tier.hot"
    assert event["resource"]["weightvault.tier"] == "hot"
    plain = prefect_event({**doc, "details": {}}, index=1, vault="wv", training_run="from-env")
    assert {r["prefect.resource.id"] for r in plain["related"]} >= {
        "weightvault.training-run.from-env"
    }


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers (a hung Prefect server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    finally:
        sock.close()


def test_a_hung_server_never_blocks_a_submit_and_a_full_queue_drops_and_counts(
    silent_server: str,
) -> None:
    emitter = Emitter(silent_server, queue_size=2, timeout=30)
    started = time.monotonic()
    accepted = [emitter.submit({"n": n}) for n in range(50)]
    assert time.monotonic() - started < 5  # queued or dropped, never waited on
    assert accepted.count(True) <= 3  # the queue, plus at most the batch in flight
    assert emitter.stats.dropped == accepted.count(False)
    assert emitter.stats.dropped >= 47
    flush_started = time.monotonic()
    assert emitter.flush(0.2) is False
    assert time.monotonic() - flush_started < 5


def test_a_refused_connection_is_counted_never_raised() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emitter = Emitter(f"http://127.0.0.1:{port}/api", timeout=2)
    assert emitter.submit({"n": 1})
    assert emitter.flush(30)
    assert (emitter.stats.failed, emitter.stats.sent) == (1, 0)
    assert emit({"n": 1}, None) is False


def test_where_the_url_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://profile/api"\n'
    )
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(profiles))
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    set_api_url_source(None)
    assert prefect_api_url() == "http://profile/api"
    monkeypatch.setenv("PREFECT_API_URL", "http://env/api")
    assert prefect_api_url() == "http://env/api"
    set_api_url_source(lambda: "http://flow/api")
    try:
        assert prefect_api_url() == "http://flow/api"
        assert prefect_api_url("http://setting/api") == "http://setting/api"
    finally:
        set_api_url_source(None)
    monkeypatch.delenv("PREFECT_API_URL")
    profiles.write_text("")
    assert prefect_api_url() is None
