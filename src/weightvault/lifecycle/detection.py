"""The detector: the signed log's new entries through the detection rules, a batch at a time.

Only the log is read: entries ``[cursor, size)`` of the current signed checkpoint,
from the tiles, each batch proved included in that checkpoint
(``TransparencyLog.check_included``); never the catalog's index rows, never
Prefect events. Each outcome entry is normalised (:func:`normalise`) and the
rules of ``config/policies/detect.rego`` (``gates.evaluate_detection``) run on
each batch with the state they need (:class:`DetectorState`: clients seen per
principal, compromised keys, grants, release approvals, the sliding counts of
the counting rules, when each rule last fired). Memory is bounded by the batch
and the window, not by the log.

The state and the cursor are the ``detect.run`` outcome's: its details name
the cursor and the state, a signed statement stored content-addressed, so a
run resumes from the last *completed* run and trusts its state only as the
log names it (:func:`last_run`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from weightvault._json import canonical_json
from weightvault._time import parse_iso
from weightvault.artifacts import LoggedEvent, Vault, trusted_statement
from weightvault.errors import IntegrityError, StatementError
from weightvault.gates import Finding, detection_tags, evaluate_detection
from weightvault.records import Event

__all__ = [
    "BATCH",
    "DETECT_RUN",
    "INCIDENT_OPENED",
    "INCIDENT_RESOLVED",
    "READ_KINDS",
    "STATE_KIND",
    "DetectorState",
    "Pending",
    "incident_id",
    "last_run",
    "normalise",
    "scan",
]

DETECT_RUN: Final = "detect.run"
INCIDENT_OPENED: Final = "incident.opened"
INCIDENT_RESOLVED: Final = "incident.resolved"
INCIDENT_CONTAINED: Final = "incident.contained"
STATE_KIND: Final = "detect-state"
STATE_TYPE: Final = "weightvault.detect-state/v1"
READ_KINDS: Final = frozenset({"artifact.read", "artifact.exported", "artifact.break_glass_read"})
"""The reads of the rules (``read_kinds`` in detect.rego): what makes a client familiar."""
BATCH: Final = 64
"""Outcome entries per evaluation of the rules."""
_READ: Final = 256
_DETAIL_TIMES: Final = {"since": "since_t", "accessed_at": "accessed_t", "expires_at": "expires_t"}
_DETAIL_FIELDS: Final = ("grant_id", "purpose", "key", "grant_state", "incident_id")


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_iso(text).timestamp()
    except (ValueError, IntegrityError):
        return None


def normalise(index: int, event: Event) -> dict[str, Any] | None:
    """The rules' view of one log entry: outcomes only (None for an intent).

    ``error`` is the error class a failed or refused outcome names
    (``details.error``), null when the entry names none. A grant receipt's principal
    is the grant's recipient (who used it), not the principal that synced it.
    """
    if event.phase != "outcome":
        return None
    ts = _epoch(event.ts)
    if ts is None:
        return None
    principal = event.principal or {}
    name = principal.get("name")
    if not isinstance(name, str):
        name = f"keyid:{str(principal.get('keyid', ''))[:16]}"
    client = event.client or {}
    details = event.details or {}
    recipient = details.get("recipient")
    if event.kind == "grant.accessed" and isinstance(recipient, str) and recipient:
        name = recipient  # the collaborator who used the grant, not who synced the receipt
    error = details.get("error")
    out: dict[str, Any] = {
        "index": index,
        "id": event.id,
        "ts": event.ts,
        "t": ts,
        "kind": event.kind,
        "phase": event.phase,
        "outcome": event.outcome,
        "reason": event.reason,
        "error": error if isinstance(error, str) else None,
        "principal": name,
        "client": {"host": client.get("host"), "process": client.get("process")},
        "artifact": event.artifact_id,
        "tier": event.tier,
        "key_ids": [k for k in event.key_ids if isinstance(k, str)],
    }
    for name_ in _DETAIL_FIELDS:
        value = details.get(name_)
        out[name_] = value if isinstance(value, str) else None
    for source, target in _DETAIL_TIMES.items():
        out[target] = _epoch(details.get(source))
    return out


def incident_id(rule: str, key: str, first_index: int) -> str:
    """The incident's id: the same finding always gets the same id."""
    digest = hashlib.sha256(canonical_json([rule, key, first_index])).hexdigest()
    return f"inc-{digest[:24]}"


@dataclass
class DetectorState:
    """What the rules need from before the batch; JSON, stored as a signed statement."""

    cursor: int = 0
    seen_clients: dict[str, list[str]] = field(default_factory=dict)
    compromised: dict[str, float] = field(default_factory=dict)
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)
    releases: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fired: dict[str, float] = field(default_factory=dict)
    # rule|group -> [[t, event id, index], ...] within the window
    counters: dict[str, list[list[Any]]] = field(default_factory=dict)
    # incident id -> the log index of its first evidence
    opened: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "type": STATE_TYPE,
            "cursor": self.cursor,
            "seen_clients": self.seen_clients,
            "compromised": self.compromised,
            "grants": self.grants,
            "releases": self.releases,
            "fired": self.fired,
            "counters": self.counters,
            "opened": self.opened,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DetectorState:
        """Parse :meth:`to_dict`; StatementError if it is not a detector state."""
        if doc.get("type") != STATE_TYPE or not isinstance(doc.get("cursor"), int):
            raise StatementError("the detector state is not a weightvault.detect-state/v1")
        try:
            return cls(
                cursor=int(doc["cursor"]),
                seen_clients={str(k): list(v) for k, v in doc["seen_clients"].items()},
                compromised={str(k): float(v) for k, v in doc["compromised"].items()},
                grants={str(k): dict(v) for k, v in doc["grants"].items()},
                releases={str(k): list(v) for k, v in doc["releases"].items()},
                fired={str(k): float(v) for k, v in doc["fired"].items()},
                counters={str(k): list(v) for k, v in doc["counters"].items()},
                opened={str(k): int(v) for k, v in doc["opened"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StatementError(f"the detector state is malformed: {exc!r}") from None

    def for_rules(self) -> dict[str, Any]:
        """The part of the state the rules read."""
        return {
            "seen_clients": self.seen_clients,
            "compromised": self.compromised,
            "grants": self.grants,
            "releases": self.releases,
            "fired": self.fired,
        }

    def learn(self, e: Mapping[str, Any], window: float, approval_window: float) -> None:
        """Fold one normalised event into the state (after the rules saw its batch)."""
        if e["outcome"] != "ok":
            return
        host = e["client"].get("host")
        if isinstance(host, str) and e["kind"] in READ_KINDS:
            hosts = self.seen_clients.setdefault(e["principal"], [])
            if host not in hosts:
                hosts.append(host)
        kind = e["kind"]
        if kind == "key.compromised" and e["key"]:
            since = e["since_t"] if e["since_t"] is not None else e["t"]
            self.compromised[e["key"]] = min(since, self.compromised.get(e["key"], since))
        elif kind == "grant.issued" and e["grant_id"]:
            self.grants[e["grant_id"]] = {
                "artifact": e["artifact"],
                "expires_t": e["expires_t"],
                "revoked_t": None,
            }
        elif kind == "grant.revoked" and e["grant_id"] in self.grants:
            self.grants[e["grant_id"]]["revoked_t"] = e["t"]
        elif kind == "artifact.approved" and e["purpose"] == "release" and e["artifact"]:
            kept = self.releases.setdefault(e["artifact"], [])
            kept.append({"t": e["t"], "principal": e["principal"]})
        elif kind == INCIDENT_OPENED and e["incident_id"]:
            self.opened.setdefault(e["incident_id"], e["index"])
        self.prune(e["t"], window, approval_window)

    def prune(self, now: float, window: float, approval_window: float) -> None:
        """Forget what no rule can use any more: memory bounded by the windows."""
        self.fired = {k: t for k, t in self.fired.items() if t > now - window}
        self.counters = {
            k: kept
            for k, v in self.counters.items()
            if (kept := [c for c in v if c[0] > now - window])
        }
        self.releases = {
            k: recent
            for k, v in self.releases.items()
            if (recent := [a for a in v if a["t"] > now - approval_window])
        }


@dataclass(frozen=True)
class Pending:
    """A finding of this run with its evidence located in the log: an incident to open."""

    id: str
    finding: Finding
    evidence: tuple[tuple[str, int], ...]
    """(event id, log index) of each piece of evidence, in log order."""


def last_run(vault: Vault) -> tuple[DetectorState, int | None]:
    """The state the last completed ``detect.run`` recorded, and its log index.

    The catalog's index only locates the run; the entry is proved included in
    the current signed checkpoint and the state is the signed statement whose
    sha256 it names (``trusted_statement``). No run yet: an empty state.
    """
    signed = vault.tlog.checkpoint()
    size = signed.checkpoint.size
    for index, text in vault.catalog.log_mentions(DETECT_RUN, '"cursor"', -1):
        if index >= size:
            continue
        entry = text.encode()
        event = Event.parse(entry)
        if event.kind != DETECT_RUN or event.phase != "outcome" or event.outcome != "ok":
            raise IntegrityError(f"the catalog's index names log entry {index} as a detect run")
        try:
            vault.tlog.check_included([(index, entry)], signed)
        except IntegrityError as exc:
            raise IntegrityError(
                f"the catalog's index of the log was tampered with: {exc.message}"
            ) from None
        found = trusted_statement(
            vault, LoggedEvent(index, event, entry), kind=STATE_KIND, what="detector state"
        )
        state = DetectorState.from_dict(found.predicate)
        if state.cursor != event.details.get("cursor"):
            raise StatementError(
                f"detector state of log entry {index} is not at the cursor the entry records"
            )
        return state, index
    return DetectorState(), None


def _outcomes(vault: Vault, start: int, end: int) -> Iterator[dict[str, Any]]:
    """Normalised outcome entries ``[start, end)``, each batch proved in the checkpoint."""
    signed = vault.tlog.checkpoint()
    if end > signed.checkpoint.size:
        raise IntegrityError(f"the log's checkpoint no longer covers entry {end - 1}")
    for first in range(start, end, _READ):
        last = min(end, first + _READ)
        entries = vault.tlog.reader(signed.checkpoint.size).entries(first, last)
        indexed = list(enumerate(entries, first))
        vault.tlog.check_included(indexed, signed)
        for index, entry in indexed:
            normal = normalise(index, Event.parse(entry))
            if normal is not None:
                yield normal


def _batches(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def scan(
    vault: Vault,
    state: DetectorState,
    end: int,
    *,
    thresholds: Mapping[str, float] | None = None,
) -> list[Pending]:
    """Run the rules over log entries ``[state.cursor, end)``, updating ``state``.

    Returns the findings as incidents to open, those whose id the state (or an
    ``incident.opened`` entry in the range: a killed run's) already names left out.
    """
    overrides = dict(thresholds or {})
    approval_window = float(vault.settings.approval_window_hours * 3600)
    pending: dict[str, Pending] = {}
    for batch in _batches(_outcomes(vault, state.cursor, end), BATCH):
        base = {
            "events": batch,
            "since": batch[0]["index"],
            "thresholds": overrides,
            "approval_window_seconds": approval_window,
            "approvals_required": vault.settings.approvals_required,
        }
        tags, limits = detection_tags(base, vault.settings.policy_dir)
        window = limits["window_seconds"]
        by_index = {e["index"]: e for e in batch}
        snapshots: dict[tuple[str, int], list[list[Any]]] = {}
        for rule, group, index in tags:
            e = by_index[index]
            key = f"{rule}|{group}"
            kept = [c for c in state.counters.get(key, []) if c[0] > e["t"] - window]
            kept.append([e["t"], e["id"], index])
            state.counters[key] = kept
            e.setdefault("counts", {})[rule] = len(kept)
            if len(kept) >= limits.get(rule, float("inf")):
                snapshots[rule, index] = list(kept)
        findings = evaluate_detection(
            {**base, "state": state.for_rules()}, vault.settings.policy_dir
        )
        by_id = {e["id"]: e for e in batch}
        for found in findings:
            trigger = by_id.get(found.evidence[0]) if len(found.evidence) == 1 else None
            located = [(i, by_id[i]["index"]) for i in found.evidence if i in by_id]
            if found.counted and trigger is not None:
                located = [(c[1], c[2]) for c in snapshots.get((found.rule, trigger["index"]), [])]
            if not located or len(located) != len(set(located)):
                raise IntegrityError(
                    f"detection rule {found.rule} named evidence outside the batch"
                )
            located.sort(key=lambda pair: pair[1])
            ident = incident_id(found.rule, found.key, located[0][1])
            fired_at = max(by_id[i]["t"] for i in found.evidence if i in by_id)
            state.fired[f"{found.rule}|{found.key}"] = fired_at
            if ident not in state.opened and ident not in pending:
                pending[ident] = Pending(ident, found, tuple(located))
        for e in batch:
            e.pop("counts", None)
            state.learn(e, window, approval_window)
    state.cursor = end
    return [p for p in pending.values() if p.id not in state.opened]


def pending_ids(items: Sequence[Pending]) -> list[str]:
    """The ids of ``items``, in order."""
    return [p.id for p in items]
