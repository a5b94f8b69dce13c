"""Events v2: the log entry's fields, its canonical bytes, and the client's flow run."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from weightvault._json import canonical_json
from weightvault.artifacts import audit_hash
from weightvault.errors import IntegrityError
from weightvault.records import (
    Event,
    current_flow_run,
    flow_run,
    one_line,
    set_flow_run_source,
)

CLIENT = {"host": "hmac-sha256:ab", "pid": 7, "process": "weightvault", "flow_run": None}


def _event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "phase": "outcome",
        "op": "op-1",
        "principal": {"name": "alice"},
        "client": CLIENT,
        "artifact_id": "wv-20260101-0000000000000000",
        "tier": "hot",
        "key_ids": ("kek-hot@v1", "kek-hot@v1", "vault-signing@v1"),
        "outcome": "refused",
        "reason": "artifact is quarantined",
        "details": {"files": 2},
    }
    fields.update(changes)
    return Event.new("artifact.read", **fields)  # type: ignore[arg-type]


def test_an_entry_is_the_rfc8785_json_of_every_field() -> None:
    event = _event()
    data = event.to_bytes()
    assert data == canonical_json(json.loads(data))
    doc = json.loads(data)
    assert doc["type"] == "weightvault.event/v2"
    assert doc["phase"] == "outcome"
    assert doc["principal"] == {"name": "alice"}
    assert doc["client"] == CLIENT
    assert doc["key_ids"] == ["kek-hot@v1", "vault-signing@v1"]  # deduplicated, sorted
    assert (doc["outcome"], doc["reason"]) == ("refused", "artifact is quarantined")
    assert Event.parse(data) == event
    assert event.actor == "alice"


def test_an_intent_carries_no_outcome() -> None:
    intent = _event(phase="intent", outcome=None, reason=None)
    doc = json.loads(intent.to_bytes())
    assert "outcome" not in doc
    assert "reason" not in doc
    assert Event.parse(intent.to_bytes()).phase == "intent"


@pytest.mark.parametrize(
    ("field", "value"),
    [("phase", "maybe"), ("outcome", "great"), ("principal", None), ("key_ids", None)],
)
def test_a_malformed_entry_is_refused(field: str, value: object) -> None:
    doc = json.loads(_event().to_bytes())
    doc[field] = value
    with pytest.raises(IntegrityError):
        Event.parse(canonical_json(doc))


def test_a_missing_field_is_refused() -> None:
    doc = json.loads(_event().to_bytes())
    del doc["op"]
    with pytest.raises(IntegrityError, match="missing"):
        Event.parse(canonical_json(doc))


def test_the_flow_run_comes_from_the_adapters_else_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)
    assert current_flow_run() is None
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "from-env")
    assert current_flow_run() == "from-env"
    with flow_run("from-task"):
        assert current_flow_run() == "from-task"
    assert current_flow_run() == "from-env"


def test_the_adapters_source_is_asked_live_and_never_leaks_a_finished_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)
    live: list[str | None] = ["run-1"]
    set_flow_run_source(lambda: live[0])
    try:
        assert current_flow_run() == "run-1"
        live[0] = None  # the run ended: later events must not carry its id
        assert current_flow_run() is None
        live[0] = "run-2"
        with flow_run("explicit"):
            assert current_flow_run() == "explicit"
        assert current_flow_run() == "run-2"

        def broken() -> str | None:
            raise RuntimeError("no Prefect context")

        set_flow_run_source(broken)
        assert current_flow_run() is None  # a label, never a reason to fail
    finally:
        set_flow_run_source(None)
    assert current_flow_run() is None


def test_audit_hash_is_hmac_sha256_under_the_vault_key() -> None:
    key = bytes(range(32))
    expected = hmac.new(key, b"/home/alice/model", hashlib.sha256).hexdigest()
    assert audit_hash(key, "/home/alice/model") == f"hmac-sha256:{expected}"
    assert audit_hash(bytes(32), "/home/alice/model") != audit_hash(key, "/home/alice/model")


def test_reasons_are_one_bounded_line() -> None:
    assert one_line("a\nb\r\n  c") == "a b c"
    assert len(one_line("x" * 10_000)) == 500
