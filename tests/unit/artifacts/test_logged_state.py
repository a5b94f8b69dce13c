"""``LoggedState``: the latest state the log records wins; older and other objects are named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from weightvault.artifacts import LoggedState, object_state, sha256_hex
from weightvault.errors import RollbackError, UnloggedSignatureError
from weightvault.records import Event

ID = "wv-20260101-0000000000000001"


def _event(kind: str, state: dict[str, Any] | None, *, artifact_id: str = ID, **kw: Any) -> Event:
    details = {} if state is None else {"state": state}
    return Event.new(
        kind,
        phase=kw.get("phase", "outcome"),
        op="op",
        principal={"name": "alice"},
        client={},
        artifact_id=artifact_id,
        outcome=kw.get("outcome", "ok"),
        details=details,
        now=kw.get("now", datetime(2026, 1, 1, tzinfo=UTC)),
    )


def _state(tier: str, n: int) -> dict[str, Any]:
    return object_state(
        tier,
        manifest=b"manifest-%d" % n,
        statement=b"statement-1",
        envelope=b"envelope-%d" % n,
        kek=f"kek-{tier}@v{n}",
    )


def _history() -> LoggedState:
    events = [
        (3, _event("artifact.ingested", _state("warm", 1))),
        (5, _event("artifact.verified", None)),
        (7, _event("artifact.rekeyed", _state("warm", 2), outcome="failed")),  # not a state
        (8, _event("artifact.rekeyed", _state("warm", 3), artifact_id="wv-other")),
        (9, _event("artifact.rekeyed", _state("warm", 2), now=datetime(2026, 2, 1, tzinfo=UTC))),
    ]
    return LoggedState.from_events(ID, reversed(events))


def test_the_latest_ok_state_of_the_artifact_wins() -> None:
    state = _history()
    assert [s.index for s in state.states] == [3, 9]
    latest = state.require()
    assert (latest.index, latest.kind, latest.tier) == (9, "artifact.rekeyed", "warm")
    state.check("warm", manifest=b"manifest-2", envelope=b"envelope-2", statement=b"statement-1")


def test_an_older_object_is_named_with_both_entries() -> None:
    state = _history()
    with pytest.raises(RollbackError) as caught:
        state.check("warm", manifest=b"manifest-1")
    message = caught.value.message
    assert "its manifest" in message
    assert "recorded at entry 9 (artifact.rekeyed" in message
    assert "older manifest of entry 3 (artifact.ingested), restored: rollback refused" in message
    assert caught.value.exit_code == 34


def test_another_object_another_tier_or_no_state_is_refused() -> None:
    state = _history()
    with pytest.raises(RollbackError, match="another envelope was put in its place"):
        state.check("warm", envelope=b"someone else's")
    with pytest.raises(RollbackError, match=r"in tier warm \(entry 9, artifact.rekeyed\), not hot"):
        state.check("hot", manifest=b"manifest-2")
    with pytest.raises(RollbackError, match="the log records no state of its objects"):
        LoggedState.from_events(ID, []).check("hot", manifest=b"x")


def test_a_statement_is_dated_by_the_first_entry_that_recorded_it() -> None:
    state = _history()
    assert state.statement_logged_at(b"statement-1") == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(UnloggedSignatureError, match="no log entry records its signed statement"):
        state.statement_logged_at(b"backdated and re-signed")


def test_a_rotation_entry_moves_only_the_envelope_of_the_artifacts_it_names() -> None:
    rewrap = Event.new(
        "envelopes.rewrapped",
        phase="outcome",
        op="op",
        principal={"name": "alice"},
        client={},
        tier="warm",
        outcome="ok",
        details={"kek": "kek-warm@v3", "envelopes": {ID: sha256_hex(b"envelope-3")}},
    )
    other_tier = Event.new(
        "envelopes.rewrapped",
        phase="outcome",
        op="op",
        principal={"name": "alice"},
        client={},
        tier="hot",
        outcome="ok",
        details={"kek": "kek-hot@v9", "envelopes": {ID: sha256_hex(b"envelope-9")}},
    )
    events = [
        (3, _event("artifact.ingested", _state("warm", 1))),
        (10, rewrap),
        (11, other_tier),
    ]
    state = LoggedState.from_events(ID, events)
    latest = state.require()
    assert (latest.index, latest.kind) == (10, "envelopes.rewrapped")
    assert latest.state["envelope"]["kek"] == "kek-warm@v3"
    state.check("warm", manifest=b"manifest-1", envelope=b"envelope-3")
    with pytest.raises(RollbackError, match=r"older envelope of entry 3 \(artifact.ingested\)"):
        state.check("warm", envelope=b"envelope-1")
    assert LoggedState.from_events("wv-other", events).latest is None
