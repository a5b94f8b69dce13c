"""The detector's engine without a store: normalising entries, the state, incident ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from weightvault.errors import StatementError
from weightvault.lifecycle.detection import DetectorState, incident_id, normalise
from weightvault.records import Event

WHEN = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


def _event(phase: str = "outcome", **kw: object) -> Event:
    fields: dict[str, object] = {
        "principal": {"name": "bob", "keyid": "ab" * 32},
        "client": {"host": "hmac-sha256:11", "process": "weightvault", "pid": 7},
        "artifact_id": "wv-1",
        "tier": "hot",
        "outcome": "ok" if phase == "outcome" else None,
        "now": WHEN,
    }
    fields.update(kw)
    kind = str(fields.pop("kind", "artifact.read"))
    return Event.new(kind, phase=phase, op="op-1", **fields)  # type: ignore[arg-type]


def test_an_outcome_is_normalised_and_an_intent_is_left_out() -> None:
    assert normalise(3, _event("intent")) is None
    e = normalise(4, _event(key_ids=("kek-hot@v1",)))
    assert e is not None
    assert (e["index"], e["kind"], e["principal"], e["artifact"], e["tier"]) == (
        4,
        "artifact.read",
        "bob",
        "wv-1",
        "hot",
    )
    assert e["t"] == WHEN.timestamp()
    assert e["client"] == {"host": "hmac-sha256:11", "process": "weightvault"}
    assert e["key_ids"] == ["kek-hot@v1"]
    assert e["error"] is None


def test_the_error_class_and_the_details_the_rules_read() -> None:
    failed = _event(
        outcome="failed",
        reason="chunk 0 does not authenticate",
        details={"error": "IntegrityError", "output": "hmac-sha256:99"},
    )
    e = normalise(5, failed)
    assert e is not None
    assert (e["outcome"], e["error"]) == ("failed", "IntegrityError")
    assert "output" not in e  # only the subset the rules use
    grant = _event(
        kind="grant.accessed",
        details={
            "grant_id": "g-1",
            "accessed_at": "2026-12-02T05:00:01+00:00",
            "expires_at": "2026-12-02T04:00:00+00:00",
            "grant_state": "expired",
        },
    )
    g = normalise(6, grant)
    assert g is not None
    assert g["grant_id"] == "g-1"
    assert g["grant_state"] == "expired"
    assert g["accessed_t"] == WHEN.timestamp() + 1
    assert g["expires_t"] == WHEN.timestamp() - 3600


def test_an_unenrolled_key_is_named_by_its_keyid() -> None:
    e = normalise(1, _event(principal={"name": None, "keyid": "cd" * 32}, outcome="refused"))
    assert e is not None
    assert e["principal"] == "keyid:" + "cd" * 8


def test_incident_ids_are_deterministic() -> None:
    assert incident_id("denied_burst", "bob", 7) == incident_id("denied_burst", "bob", 7)
    assert incident_id("denied_burst", "bob", 7) != incident_id("denied_burst", "bob", 8)
    assert incident_id("denied_burst", "bob", 7).startswith("inc-")


def test_the_state_learns_forgets_and_round_trips() -> None:
    state = DetectorState(cursor=10)
    t = WHEN.timestamp()
    compromised = normalise(1, _event(kind="key.compromised", details={"key": "kek-hot@v1"}))
    approved = normalise(2, _event(kind="artifact.approved", details={"purpose": "release"}))
    assert compromised is not None
    assert approved is not None
    state.counters["denied_burst|bob"] = [[t - 400, "e0", 0], [t - 10, "e1", 1]]
    state.fired["denied_burst|bob"] = t - 400
    refused = normalise(3, _event(outcome="refused", client={"host": "hmac-sha256:22"}))
    read = normalise(4, _event())
    assert refused is not None
    assert read is not None
    state.learn(compromised, 300, 3600)
    state.learn(approved, 300, 3600)
    assert state.seen_clients == {}  # only reads make a client familiar
    state.learn(refused, 300, 3600)
    state.learn(read, 300, 3600)
    assert state.seen_clients == {"bob": ["hmac-sha256:11"]}
    assert state.compromised == {"kek-hot@v1": t}
    assert state.releases == {"wv-1": [{"t": t, "principal": "bob"}]}
    # Older than the window: forgotten (memory bounded by the window).
    assert state.counters == {"denied_burst|bob": [[t - 10, "e1", 1]]}
    assert state.fired == {}
    again = DetectorState.from_dict(state.to_dict())
    assert again == state
    with pytest.raises(StatementError, match=r"not a weightvault\.detect-state"):
        DetectorState.from_dict({"type": "other", "cursor": 1})
    with pytest.raises(StatementError, match="malformed"):
        DetectorState.from_dict({**state.to_dict(), "grants": []})
