"""Events: every vault operation is a structured record in the audit bucket.

An event is written to the store first (fail closed: if it cannot be written
the operation is refused with AuditError), then indexed in the catalog, logged
with structlog, and handed to listeners (the Prefect layer turns them into
Prefect events).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault.errors import IntegrityError
from weightvault.store.layout import event_key

EVENT_TYPE = "weightvault.event/v1"


@dataclass(frozen=True)
class Event:
    """One vault operation."""

    id: str
    ts: str
    kind: str
    actor: str
    artifact_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        kind: str,
        actor: str,
        artifact_id: str | None,
        details: dict[str, Any],
        now: datetime | None = None,
    ) -> Event:
        """A fresh event with a time-ordered id."""
        moment = now or datetime.now(UTC)
        return cls(
            id=f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}",
            ts=moment.isoformat(timespec="microseconds"),
            kind=kind,
            actor=actor,
            artifact_id=artifact_id,
            details=details,
        )

    def to_bytes(self) -> bytes:
        """Canonical stored form."""
        return canonical_json(
            {
                "type": EVENT_TYPE,
                "id": self.id,
                "ts": self.ts,
                "kind": self.kind,
                "actor": self.actor,
                "artifact_id": self.artifact_id,
                "details": self.details,
            }
        )

    @classmethod
    def parse(cls, data: bytes) -> Event:
        """Parse a stored event."""
        raw = parse_canonical(data, "event")
        if raw.get("type") != EVENT_TYPE:
            raise IntegrityError("event has an unknown type")
        try:
            return cls(
                id=raw["id"],
                ts=raw["ts"],
                kind=raw["kind"],
                actor=raw["actor"],
                artifact_id=raw["artifact_id"],
                details=dict(raw["details"]),
            )
        except (KeyError, TypeError):
            raise IntegrityError("event is missing required fields") from None

    @property
    def object_key(self) -> str:
        """Key in the audit bucket, partitioned by day."""
        return event_key(self.ts, self.id)

    def catalog_row(self) -> dict[str, Any]:
        """Row for the catalog's events table."""
        return {
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "artifact_id": self.artifact_id,
            "actor": self.actor,
            "details": canonical_json(self.details).decode(),
        }


Listener = Callable[[Event], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Call ``listener`` with every event recorded in this process."""
    if listener not in _listeners:
        _listeners.append(listener)


def notify(event: Event) -> None:
    """Hand an event to the listeners; a failing listener never fails the operation."""
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # noqa: S112 - listeners are best-effort side channels
            continue
