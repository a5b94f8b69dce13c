"""The logged state of an artifact's objects, and the rollback check against it.

Every operation that changes an artifact's manifest, statement or envelope
records, in its ok outcome's ``details["state"]``, the state it leaves: the
tier whose bucket holds the objects, the sha256 of the exact manifest,
statement and envelope object bytes, and the envelope's KEK (``key@vN``).
The latest such entry of the signed log wins: its log index is the state's
version (the log orders entries, so no separate counter can disagree with it).

A read compares the objects it fetches with that state; an older version
restored in the bucket, another artifact's envelope or a statement that the
log never recorded is a :class:`~weightvault.errors.RollbackError` (exit 34)
naming the object, the log entry of the recorded state and, when the object
is one the log recorded earlier, that entry too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weightvault._time import parse_iso
from weightvault.errors import RollbackError, UnloggedSignatureError
from weightvault.records import Event

STATE_KINDS = frozenset(
    {"artifact.ingested", "artifact.promoted", "artifact.rekeyed", "artifact.recovered"}
)
"""Kinds whose ok outcome records the state of the artifact's objects."""

REWRAP_KIND = "envelopes.rewrapped"
"""A rotation's record of a batch of envelopes it moved: ``details["envelopes"]`` maps
artifact ids to the sha256 of their new envelope, ``details["kek"]`` names the KEK."""

_OBJECTS = ("manifest", "statement", "envelope")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def object_state(
    tier: str, *, manifest: bytes, statement: bytes, envelope: bytes, kek: str
) -> dict[str, Any]:
    """The state a log entry records: the tier and the digests of the exact object bytes."""
    return {
        "tier": tier,
        "manifest_sha256": sha256_hex(manifest),
        "statement_sha256": sha256_hex(statement),
        "envelope": {"kek": kek, "sha256": sha256_hex(envelope)},
    }


def _digest(state: dict[str, Any], what: str) -> str | None:
    if what == "envelope":
        envelope = state.get("envelope")
        return str(envelope.get("sha256")) if isinstance(envelope, dict) else None
    value = state.get(f"{what}_sha256")
    return str(value) if value is not None else None


@dataclass(frozen=True)
class RecordedState:
    """One log entry's record of the state of an artifact's objects."""

    index: int
    kind: str
    ts: str
    state: dict[str, Any]

    @property
    def tier(self) -> str:
        """The tier whose bucket holds the objects."""
        return str(self.state.get("tier"))

    def digest(self, what: str) -> str | None:
        """sha256 the entry records for ``manifest``, ``statement`` or ``envelope``."""
        return _digest(self.state, what)


def _rewrapped(
    artifact_id: str, index: int, event: Event, before: list[RecordedState]
) -> RecordedState | None:
    """The state a rotation entry leaves the artifact in: the one before, a new envelope."""
    envelopes = event.details.get("envelopes")
    digest = envelopes.get(artifact_id) if isinstance(envelopes, dict) else None
    if (
        not isinstance(digest, str)
        or not before
        or event.phase != "outcome"
        or event.outcome != "ok"
        or event.tier != before[-1].tier
    ):
        return None
    state = dict(before[-1].state)
    state["envelope"] = {"kek": str(event.details.get("kek")), "sha256": digest}
    return RecordedState(index, event.kind, event.ts, state)


@dataclass(frozen=True)
class LoggedState:
    """Every state of one artifact's objects the signed log records, oldest first."""

    artifact_id: str
    states: tuple[RecordedState, ...]

    @classmethod
    def from_events(cls, artifact_id: str, events: Iterable[tuple[int, Event]]) -> LoggedState:
        """The states among ``events`` (index, event), which the caller took from the log."""
        found: list[RecordedState] = []
        for index, event in sorted(events, key=lambda pair: pair[0]):
            if event.kind == REWRAP_KIND:
                rewrapped = _rewrapped(artifact_id, index, event, found)
                if rewrapped is not None:
                    found.append(rewrapped)
                continue
            state = event.details.get("state")
            if (
                event.artifact_id == artifact_id
                and event.kind in STATE_KINDS
                and event.phase == "outcome"
                and event.outcome == "ok"
                and isinstance(state, dict)
            ):
                found.append(RecordedState(index, event.kind, event.ts, state))
        return cls(artifact_id, tuple(found))

    @property
    def latest(self) -> RecordedState | None:
        """The state the objects must be in now (the latest entry wins)."""
        return self.states[-1] if self.states else None

    def require(self) -> RecordedState:
        """The latest state; RollbackError (fail closed) when the log records none."""
        if self.latest is None:
            raise RollbackError(
                f"artifact {self.artifact_id}: the log records no state of its objects "
                "(an artifact the log never recorded, or one stored before states were "
                "logged), so its objects cannot be checked: refused"
            )
        return self.latest

    def check(self, tier: str, **objects: bytes | None) -> None:
        """Refuse (RollbackError) objects read from ``tier`` that are not the latest state.

        ``objects`` are the exact bytes read, as ``manifest=``, ``statement=`` and
        ``envelope=`` (None: not read).
        """
        latest = self.require()
        if latest.tier != tier:
            raise RollbackError(
                f"artifact {self.artifact_id}: the log records its objects in tier "
                f"{latest.tier} (entry {latest.index}, {latest.kind}), not {tier}: refused"
            )
        for what in _OBJECTS:
            data = objects.get(what)
            if data is None:
                continue
            found = sha256_hex(data)
            if found == latest.digest(what):
                continue
            raise RollbackError(self._mismatch(what, found, latest))

    def _mismatch(self, what: str, found: str, latest: RecordedState) -> str:
        head = (
            f"artifact {self.artifact_id}: its {what} (sha256 {found[:16]}) is not "
            f"the one the log recorded at entry {latest.index} ({latest.kind}, "
            f"sha256 {str(latest.digest(what))[:16]})"
        )
        for earlier in reversed(self.states[:-1]):
            if earlier.digest(what) == found:
                return (
                    f"{head}: it is the older {what} of entry {earlier.index} "
                    f"({earlier.kind}), restored: rollback refused"
                )
        return f"{head}: another {what} was put in its place: refused"

    def statement_logged_at(self, statement: bytes) -> datetime:
        """When the log first recorded ``statement``: the time its signature is judged at.

        UnloggedSignatureError when no entry records it (its own claimed time is
        never trusted for a compromised key).
        """
        digest = sha256_hex(statement)
        for state in self.states:
            if state.digest("statement") == digest:
                return parse_iso(state.ts)
        raise UnloggedSignatureError(
            f"artifact {self.artifact_id}: no log entry records its signed statement "
            f"(sha256 {digest[:16]}): not trusted"
        )


__all__ = [
    "REWRAP_KIND",
    "STATE_KINDS",
    "LoggedState",
    "RecordedState",
    "object_state",
    "sha256_hex",
]
