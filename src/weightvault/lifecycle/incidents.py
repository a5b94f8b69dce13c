"""Incidents: what the detection rules found in the signed log, opened as logged operations.

``weightvault detect`` (:func:`detect`, the ``detect`` flow) is one logged
operation, ``detect.run``: it resumes from the last completed run's cursor and
state (:func:`weightvault.lifecycle.detection.last_run`), runs the rules of
``config/policies/detect.rego`` over the new entries (``detection.scan``),
opens one incident per finding (:func:`open_incident`, ``incident.opened``),
then records its own outcome with the new cursor and its state (a signed
statement). A run killed half-way leaves incidents opened and no outcome; the
next run starts from the previous cursor, finds the killed run's
``incident.opened`` entries in the log and does not open them again (the id is
a digest of the rule, the dedup key and the first evidence's log index).

An incident document (``weightvault.incident/v1``) is a signed statement
stored content-addressed and named by the ``incident.opened`` outcome: id,
rule, severity, opened_at, summary, the evidence (event id, log index, the
sha256 of the entry and its c2sp tlog-proof under the checkpoint current at
opening), artifacts, principals, keys, tiers, actions (for containment) and
status. It verifies offline with the log's keys. ``incident.resolved`` marks
one resolved. ``docs/incidents.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from weightvault._json import canonical_json
from weightvault._time import iso
from weightvault.artifacts import LoggedEvent, Vault, trusted_statement, write_statement
from weightvault.errors import (
    IncidentError,
    IntegrityError,
    InvalidInputError,
    LogVerificationError,
    NotFoundError,
)
from weightvault.gates import detect_rules
from weightvault.lifecycle.detection import (
    DETECT_RUN,
    INCIDENT_CONTAINED,
    INCIDENT_OPENED,
    INCIDENT_RESOLVED,
    STATE_KIND,
    DetectorState,
    Pending,
    last_run,
    scan,
)
from weightvault.records import Event, prove_entry, verify_entry_proof

__all__ = [
    "INCIDENT_KIND",
    "DetectReport",
    "Incident",
    "IncidentDetail",
    "detect",
    "list_incidents",
    "load_incident",
    "open_incident",
    "resolve_incident",
]

INCIDENT_KIND: Final = "incident"
INCIDENT_TYPE: Final = "weightvault.incident/v1"
_MAX_JUSTIFICATION: Final = 500


@dataclass(frozen=True)
class Incident:
    """An incident as the signed log records it."""

    id: str
    rule: str
    severity: str
    opened_at: str
    summary: str
    evidence: tuple[str, ...]
    evidence_indexes: tuple[int, ...]
    artifacts: tuple[str, ...]
    principals: tuple[str, ...]
    keys: tuple[str, ...]
    tiers: tuple[str, ...]
    actions: tuple[str, ...]
    status: str = "open"
    log_index: int = -1
    resolved_at: str | None = None
    resolution: str | None = None
    #: when the log last recorded an ok ``incident.contained`` for it (None: not contained)
    contained_at: str | None = None
    #: who recorded that ``incident.contained``, from its log entry: ``log_index``,
    #: ``principal``, ``process`` and ``flow_run`` (the Prefect flow run, None by hand)
    contained_by: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity,
            "opened_at": self.opened_at,
            "summary": self.summary,
            "evidence": [
                {"id": i, "index": n}
                for i, n in zip(self.evidence, self.evidence_indexes, strict=True)
            ],
            "artifacts": list(self.artifacts),
            "principals": list(self.principals),
            "keys": list(self.keys),
            "tiers": list(self.tiers),
            "actions": list(self.actions),
            "status": self.status,
            "log_index": self.log_index,
            "resolved_at": self.resolved_at,
            "resolution": self.resolution,
            "contained_at": self.contained_at,
            "contained_by": self.contained_by,
        }

    @classmethod
    def from_event(cls, index: int, event: Event) -> Incident:
        """The incident an ``incident.opened`` outcome records."""
        d = event.details
        try:
            evidence = [(str(e["id"]), int(e["index"])) for e in d["evidence"]]
            return cls(
                id=str(d["incident_id"]),
                rule=str(d["rule"]),
                severity=str(d["severity"]),
                opened_at=str(d.get("opened_at") or event.ts),
                summary=str(d["summary"]),
                evidence=tuple(i for i, _ in evidence),
                evidence_indexes=tuple(n for _, n in evidence),
                artifacts=tuple(str(v) for v in d["artifacts"]),
                principals=tuple(str(v) for v in d["principals"]),
                keys=tuple(str(v) for v in d["keys"]),
                tiers=tuple(str(v) for v in d["tiers"]),
                actions=tuple(str(v) for v in d["actions"]),
                log_index=index,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(
                f"log entry {index} is an incident.opened without an incident: {exc!r}"
            ) from None


@dataclass(frozen=True)
class IncidentDetail:
    """An incident with its signed document checked and each evidence proof verified."""

    incident: Incident
    statement_sha256: str
    proofs: tuple[tuple[int, bool, str], ...]
    """(log index, verifies, why not) per piece of evidence."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            **self.incident.to_dict(),
            "statement_sha256": self.statement_sha256,
            "proofs": [{"index": i, "verifies": ok, "problem": why} for i, ok, why in self.proofs],
        }


@dataclass(frozen=True)
class DetectReport:
    """What one detect run did."""

    run_index: int
    start: int
    cursor: int
    opened: tuple[Incident, ...]
    skipped: tuple[str, ...]
    """Ids found again that the log already records as opened (a killed run's)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "start": self.start,
            "cursor": self.cursor,
            "opened": [i.to_dict() for i in self.opened],
            "skipped": list(self.skipped),
        }

    def markdown(self) -> str:
        """The run as a markdown report (the flow publishes it)."""
        lines = [
            "# weightvault detect",
            "",
            f"Log entries {self.start}..{self.cursor - 1} checked; "
            f"{len(self.opened)} incident(s) opened.",
            "",
        ]
        if self.opened:
            lines += [
                "| id | rule | severity | artifacts | principals | actions |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {i.id} | {i.rule} | {i.severity} | {', '.join(i.artifacts)} | "
                f"{', '.join(i.principals)} | {', '.join(i.actions)} |"
                for i in self.opened
            ]
        return "\n".join(lines) + "\n"


def _summary(pending: Pending, descriptions: Mapping[str, str]) -> str:
    found = pending.finding
    what = descriptions.get(found.rule, found.rule)
    count = len(pending.evidence)
    return f"{found.rule} ({found.severity}) {found.key}: {count} event(s) against: {what}"


def open_incident(vault: Vault, pending: Pending, summary: str) -> Incident:
    """Open one incident: a logged ``incident.opened`` naming its signed document.

    Each piece of evidence is read back from the log and proved under the
    current checkpoint; the proofs go into the document.
    """
    found = pending.finding
    evidence: list[dict[str, Any]] = [{"id": i, "index": n} for i, n in pending.evidence]
    opened_at = iso(vault.clock())
    details = {
        "incident_id": pending.id,
        "opened_at": opened_at,
        "rule": found.rule,
        "severity": found.severity,
        "summary": summary,
        "evidence": evidence,
        "artifacts": list(found.artifacts),
        "principals": list(found.principals),
        "keys": list(found.keys),
        "tiers": list(found.tiers),
        "actions": list(found.actions),
    }
    with vault.operation(INCIDENT_OPENED, None, None, details) as op:
        signed = vault.tlog.checkpoint()
        proved = []
        for item in evidence:
            index = int(item["index"])
            (entry,) = vault.tlog.entries(index, index + 1)
            if Event.parse(entry).id != item["id"]:
                raise IntegrityError(f"log entry {index} is not event {item['id']}")
            vault.tlog.check_included([(index, entry)], signed)
            proved.append(
                {
                    **item,
                    "entry_sha256": hashlib.sha256(entry).hexdigest(),
                    "proof": prove_entry(vault.tlog, index, signed).decode("utf-8"),
                }
            )
        document = {
            "type": INCIDENT_TYPE,
            "id": pending.id,
            "rule": found.rule,
            "severity": found.severity,
            "opened_at": opened_at,
            "summary": summary,
            "evidence": proved,
            "artifacts": list(found.artifacts),
            "principals": list(found.principals),
            "keys": list(found.keys),
            "tiers": list(found.tiers),
            "actions": list(found.actions),
            "status": "open",
        }
        write_statement(
            vault,
            op,
            INCIDENT_KIND,
            document,
            subject_name=pending.id,
            subject_sha256=hashlib.sha256(pending.id.encode()).hexdigest(),
        )
    event = vault.finish(op)
    return Incident.from_event(_outcome_index(vault, op.intent_index, event), event)


def _outcome_index(vault: Vault, after: int, event: Event) -> int:
    """The log index of ``event`` (an outcome integrated after entry ``after``), read
    from the log itself."""
    size = vault.tlog.checkpoint().checkpoint.size
    for start in range(after + 1, size, 64):
        entries = vault.tlog.entries(start, min(size, start + 64))
        for index, entry in enumerate(entries, start):
            if b'"incident.opened"' in entry and Event.parse(entry).id == event.id:
                return index
    raise IntegrityError(f"incident.opened outcome {event.id} is not in the signed log")


def detect(vault: Vault, *, thresholds: Mapping[str, float] | None = None) -> DetectReport:
    """Run the detection rules on the log's new entries and open an incident per finding.

    ``thresholds`` override the policy's and ``[detect]``'s. One logged
    operation, ``detect.run``; its outcome records the new cursor and the
    detector's state (a signed statement).
    """
    merged = {**vault.settings.detect_thresholds, **(thresholds or {})}
    with vault.operation(DETECT_RUN, None, None, {}) as op:
        # Inside the operation: a state that does not verify is a failed run in the log.
        state, _ = last_run(vault)
        start = state.cursor
        op.details["from"] = start
        end = vault.tlog.checkpoint().checkpoint.size
        if end < start:
            raise IntegrityError(f"the log has {end} entries, the last detect run saw {start}")
        pending = scan(vault, state, end, thresholds=merged)
        descriptions = detect_rules(vault.settings.policy_dir)
        opened = []
        for item in pending:
            incident = open_incident(vault, item, _summary(item, descriptions))
            state.opened[item.id] = item.evidence[0][1]
            opened.append(incident)
        skipped = sorted(set(state.opened) - {i.id for i in opened} - set(_before(state, start)))
        write_statement(
            vault,
            op,
            STATE_KIND,
            state.to_dict(),
            subject_name=f"detect-state@{state.cursor}",
            subject_sha256=hashlib.sha256(canonical_json(state.to_dict())).hexdigest(),
        )
        op.details.update(cursor=state.cursor, opened=[i.id for i in opened])
    event = vault.finish(op)
    del event
    return DetectReport(op.intent_index, start, state.cursor, tuple(opened), tuple(skipped))


def _before(state: DetectorState, start: int) -> list[str]:
    return [i for i, first in state.opened.items() if first < start]


def _logged(vault: Vault) -> tuple[dict[str, Incident], dict[str, tuple[str, str, int]]]:
    """Every incident the verified log records, its resolution if any and when it was last
    contained (whole log, each entry checked against the signed root as it is read)."""
    opened: dict[str, Incident] = {}
    resolved: dict[str, tuple[str, str, int]] = {}
    for index, entry in vault.tlog.verified_entries():
        if b'"incident.' not in entry:
            continue
        event = Event.parse(entry)
        if event.phase != "outcome" or event.outcome != "ok":
            continue
        if event.kind == INCIDENT_OPENED:
            incident = Incident.from_event(index, event)
            opened.setdefault(incident.id, incident)
        elif event.kind == INCIDENT_RESOLVED:
            ident = str(event.details.get("incident_id"))
            resolved.setdefault(ident, (event.ts, str(event.details.get("justification")), index))
        elif event.kind == INCIDENT_CONTAINED:
            ident = str(event.details.get("incident"))
            if ident in opened:
                by = {
                    "log_index": index,
                    "principal": event.principal.get("name"),
                    "process": event.client.get("process"),
                    "flow_run": event.client.get("flow_run"),
                }
                opened[ident] = replace(opened[ident], contained_at=event.ts, contained_by=by)
    return opened, resolved


def list_incidents(vault: Vault, status: str | None = None) -> list[Incident]:
    """Every incident the signed log records (``status``: open or resolved), oldest first."""
    if status not in (None, "open", "resolved"):
        raise InvalidInputError("status must be open or resolved")
    opened, resolved = _logged(vault)
    out = []
    for ident, logged in opened.items():
        incident = logged
        if ident in resolved:
            ts, why, _ = resolved[ident]
            incident = replace(logged, status="resolved", resolved_at=ts, resolution=why)
        if status is None or incident.status == status:
            out.append(incident)
    return out


def _find(vault: Vault, incident_id: str) -> Incident:
    if not isinstance(incident_id, str) or not incident_id.startswith("inc-"):
        raise InvalidInputError(f"{incident_id!r:.60} is not an incident id (inc-<hex>)")
    for incident in list_incidents(vault):
        if incident.id == incident_id:
            return incident
    raise NotFoundError(f"the log records no incident {incident_id}")


def load_incident(vault: Vault, incident_id: str) -> IncidentDetail:
    """One incident, its signed document checked against the log entry naming it, and
    each evidence proof verified against the log's keys."""
    incident = _find(vault, incident_id)
    (entry,) = vault.tlog.entries(incident.log_index, incident.log_index + 1)
    logged = LoggedEvent(incident.log_index, Event.parse(entry), entry)
    trusted = trusted_statement(vault, logged, kind=INCIDENT_KIND, what=f"incident {incident.id}")
    document = trusted.predicate
    if document.get("id") != incident.id or document.get("type") != INCIDENT_TYPE:
        raise IntegrityError(f"the document of incident {incident.id} is about another incident")
    proofs = []
    for item in document.get("evidence", []):
        index = int(item["index"])
        (evidence_entry,) = vault.tlog.entries(index, index + 1)
        try:
            if hashlib.sha256(evidence_entry).hexdigest() != item["entry_sha256"]:
                raise LogVerificationError(f"log entry {index} is not the one the incident names")
            verify_entry_proof(
                str(item["proof"]).encode(),
                evidence_entry,
                vault.tlog.verifiers,
                origin=vault.tlog.origin,
            )
            proofs.append((index, True, ""))
        except LogVerificationError as exc:
            proofs.append((index, False, exc.message))
    return IncidentDetail(incident, trusted.ref.sha256, tuple(proofs))


def resolve_incident(
    vault: Vault,
    incident_id: str,
    justification: str,
    before: Callable[[Incident, str], object] | None = None,
) -> Incident:
    """Mark an open incident resolved (logged ``incident.resolved``, with the
    justification). IncidentError if it is resolved already.

    ``before(incident, justification)`` runs inside the operation, before the outcome
    (the containment's lift, :func:`weightvault.lifecycle.contain.resolve`): if it
    raises, the resolution is recorded refused or failed and the incident stays open."""
    text = " ".join(str(justification or "").split())
    if not text:
        raise InvalidInputError("a resolution needs a justification")
    if len(text) > _MAX_JUSTIFICATION:
        raise InvalidInputError(f"the justification is longer than {_MAX_JUSTIFICATION} characters")
    incident = _find(vault, incident_id)
    if incident.status == "resolved":
        raise IncidentError(f"incident {incident.id} was resolved at {incident.resolved_at}")
    details = {"incident_id": incident.id, "rule": incident.rule, "justification": text}
    with vault.operation(INCIDENT_RESOLVED, None, None, details) as op:
        if before is not None:
            before(incident, text)
    event = vault.finish(op)
    return replace(incident, status="resolved", resolved_at=event.ts, resolution=text)


def opened_ids(incidents: Sequence[Incident]) -> list[str]:
    """The ids of ``incidents``."""
    return [i.id for i in incidents]
