"""Events: every vault operation, and every refusal, is two entries of the transparency log.

An operation appends an ``intent`` entry before it has any effect and an
``outcome`` entry (``ok``, ``failed`` or ``refused``, with a one-line reason)
after; both carry the operation id ``op`` that links them. An entry is the RFC
8785 canonical JSON of the event (type ``weightvault.event/v2``). Events never
hold secrets; identifiers that should stay private (local paths, host names)
are HMAC'd with the vault's audit key before they get here.

Every entry is signed by the acting principal's key (hybrid Ed25519 + ML-DSA-65):
``principal`` is ``{"name", "keyid", "sig"}``, where ``sig`` signs
``b"weightvault/v1/event\x00" || origin || b"\x00" || canonical_json(entry
without principal.sig)`` (:meth:`Event.signed_message`), so an entry cannot be
edited, moved to another log, or claimed by another key. ``name`` is the name
the trust root enrols that key under, or null for a key it does not enrol (such
an operation is refused before any effect).

Outcomes are then indexed in the catalog, logged with structlog, handed to
listeners and sent as Prefect events by :mod:`weightvault.telemetry`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from weightvault._json import canonical_json, parse_canonical
from weightvault.config import prefect_flow_run_id
from weightvault.crypto.signing import HybridSignature, HybridVerifyKey
from weightvault.errors import IntegrityError

EVENT_TYPE = "weightvault.event/v2"
PHASES = ("intent", "outcome")
_SIGNATURE_CONTEXT = b"weightvault/v1/event\x00"
OUTCOMES = ("ok", "failed", "refused")
Phase = Literal["intent", "outcome"]

_flow_run: ContextVar[str | None] = ContextVar("weightvault_flow_run", default=None)


@contextmanager
def flow_run(run_id: str | None) -> Iterator[None]:
    """Name the Prefect flow run that the events recorded inside belong to."""
    token = _flow_run.set(run_id)
    try:
        yield
    finally:
        _flow_run.reset(token)


FlowRunSource = Callable[[], "str | None"]
_flow_run_source: list[FlowRunSource] = []


def set_flow_run_source(source: FlowRunSource | None) -> None:
    """Have events ask ``source`` for the live Prefect flow run (the tasks' adapters set it).

    It is asked each time an event is made, so a finished run never labels
    later events, as a value set once would.
    """
    _flow_run_source.clear()
    if source is not None:
        _flow_run_source.append(source)


def _from_source() -> str | None:
    for source in _flow_run_source:
        try:
            return source() or None
        except Exception:
            return None
    return None


def current_flow_run() -> str | None:
    """The run named by :func:`flow_run`, else the adapters' source, else the environment."""
    return _flow_run.get() or _from_source() or prefect_flow_run_id()


def process_name() -> str:
    """The entry point of this process (``weightvault``, ``pytest``, a flow's script)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else sys.executable
    name = Path(argv0).name
    if name in {"__main__.py", "-c", "-m", ""}:
        name = Path(sys.executable).name
    return name[:100]


@dataclass(frozen=True)
class Event:
    """One log entry: the intent or the outcome of one operation."""

    id: str
    ts: str
    kind: str
    phase: str
    op: str
    principal: dict[str, Any]
    client: dict[str, Any]
    artifact_id: str | None = None
    tier: str | None = None
    key_ids: tuple[str, ...] = ()
    outcome: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        kind: str,
        *,
        phase: Phase,
        op: str,
        principal: dict[str, Any],
        client: dict[str, Any],
        artifact_id: str | None = None,
        tier: str | None = None,
        key_ids: tuple[str, ...] = (),
        outcome: str | None = None,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Event:
        """A fresh event with a time-ordered id."""
        moment = now or datetime.now(UTC)
        return cls(
            id=new_id(),
            ts=moment.isoformat(timespec="microseconds"),
            kind=kind,
            phase=phase,
            op=op,
            principal=dict(principal),
            client=dict(client),
            artifact_id=artifact_id,
            tier=tier,
            key_ids=tuple(sorted(set(key_ids))),
            outcome=outcome,
            reason=reason,
            details=dict(details or {}),
        )

    @property
    def actor(self) -> str:
        """The acting principal's name ("" for a key nobody enrolled)."""
        name = self.principal.get("name")
        return name if isinstance(name, str) else ""

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        doc: dict[str, Any] = {
            "type": EVENT_TYPE,
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "phase": self.phase,
            "op": self.op,
            "principal": self.principal,
            "client": self.client,
            "artifact_id": self.artifact_id,
            "tier": self.tier,
            "key_ids": list(self.key_ids),
            "details": self.details,
        }
        if self.phase == "outcome":
            doc["outcome"] = self.outcome
            doc["reason"] = self.reason
        return doc

    def to_bytes(self) -> bytes:
        """The log entry: RFC 8785 canonical JSON."""
        return canonical_json(self.to_dict())

    @property
    def keyid(self) -> str | None:
        """The keyid of the principal that signed the entry (None: an unsigned entry)."""
        keyid = self.principal.get("keyid")
        return keyid if isinstance(keyid, str) else None

    def signed_message(self, origin: str) -> bytes:
        """What the principal's key signs: the entry without ``principal.sig``, in ``origin``."""
        doc = self.to_dict()
        doc["principal"] = {k: v for k, v in self.principal.items() if k != "sig"}
        return _SIGNATURE_CONTEXT + origin.encode() + b"\x00" + canonical_json(doc)

    def with_signature(self, sig: bytes) -> Event:
        """This event with ``principal.sig`` set to ``sig`` (a hybrid signature's bytes)."""
        principal = {**self.principal, "sig": base64.b64encode(sig).decode("ascii")}
        return dataclasses.replace(self, principal=principal)

    def signature_valid(self, origin: str, key: HybridVerifyKey) -> bool:
        """Whether ``principal.sig`` is ``key``'s signature of :meth:`signed_message`."""
        sig, keyid = self.principal.get("sig"), self.keyid
        if not isinstance(sig, str) or keyid != key.keyid:
            return False
        try:
            signature = HybridSignature.from_bytes(keyid, base64.b64decode(sig, validate=True))
        except (binascii.Error, ValueError, IntegrityError):
            return False
        return key.is_valid(self.signed_message(origin), signature)

    @classmethod
    def parse(cls, data: bytes) -> Event:
        """Parse a log entry; IntegrityError if it is not a v2 event."""
        raw = parse_canonical(data, "event")
        if raw.get("type") != EVENT_TYPE:
            raise IntegrityError("event has an unknown type")
        try:
            phase = raw["phase"]
            if phase not in PHASES:
                raise IntegrityError(f"event has an unknown phase {phase!r}")
            outcome = raw.get("outcome") if phase == "outcome" else None
            if phase == "outcome" and outcome not in OUTCOMES:
                raise IntegrityError(f"event has an unknown outcome {outcome!r}")
            return cls(
                id=str(raw["id"]),
                ts=str(raw["ts"]),
                kind=str(raw["kind"]),
                phase=phase,
                op=str(raw["op"]),
                principal=dict(raw["principal"]),
                client=dict(raw["client"]),
                artifact_id=raw["artifact_id"],
                tier=raw["tier"],
                key_ids=tuple(str(k) for k in raw["key_ids"]),
                outcome=outcome,
                reason=raw.get("reason") if phase == "outcome" else None,
                details=dict(raw["details"]),
            )
        except (KeyError, TypeError, ValueError):
            raise IntegrityError("event is missing required fields") from None

    def catalog_row(self) -> dict[str, Any]:
        """Row for the catalog's events table (successful outcomes: what happened)."""
        return {
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "artifact_id": self.artifact_id,
            "actor": self.actor,
            "details": canonical_json(self.details).decode(),
        }

    def log_row(self, index: int) -> dict[str, Any]:
        """Row for the catalog's index of log entries."""
        return {
            "idx": index,
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "phase": self.phase,
            "op": self.op,
            "principal": self.actor,
            "artifact_id": self.artifact_id,
            "tier": self.tier,
            "outcome": self.outcome,
            "reason": self.reason,
            "entry": self.to_bytes().decode(),
        }


def new_id() -> str:
    """A time-ordered unique id (events and operations)."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"


def one_line(text: str, limit: int = 500) -> str:
    """``text`` as one line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


Listener = Callable[[Event], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Call ``listener`` with every outcome recorded in this process."""
    if listener not in _listeners:
        _listeners.append(listener)


def notify(event: Event) -> None:
    """Hand an event to the listeners; a failing listener never fails the operation."""
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # noqa: S112 - listeners are best-effort side channels
            continue
