"""The contain playbook: one incident's containment, as named steps the CLI and the flow run.

Input is a :class:`ContainmentPlan` (the fields of a detected incident; an explicit plan,
or :func:`find_incidents`: a detection run, then the open incidents not yet contained).
The steps, in order:

1. :func:`revoke_grants`: every grant issued to or by the incident's principals is revoked
   (``grant.revoked`` each; a used grant marks its artifact for rekey);
2. :func:`quarantine_artifacts`: each named artifact is quarantined
   (:mod:`~weightvault.lifecycle.quarantine`), or, for a tier-wide incident of high or
   critical severity, :func:`isolate_tiers` isolates the named tiers
   (:mod:`~weightvault.lifecycle.isolation`);
3. :func:`compromise_keys`: each named key version is marked compromised
   (:mod:`~weightvault.lifecycle.compromise`), then :func:`rekey_keys` runs the rekey
   response inline (the flow runs the rekey deployment when it is served);
4. :func:`bundle_evidence`: the evidence entries and every step's outcome entry, with their
   c2sp tlog-proofs under one signed checkpoint, the trust root chain and a signed index,
   into an incident bundle (``incident.bundled``) that :func:`verify_incident_bundle`
   checks offline against a pinned root;
5. :func:`record_contained`: ``incident.contained`` with every step and the bundle digest;
6. :func:`render_report`: the markdown report with the timeline (step, log index, time).

Every step that changes anything is a logged operation of its own. The playbook is
idempotent: what the signed log shows done (a grant revoked, an artifact quarantined, a
tier isolated, a key compromised with nothing left on it) is skipped and reported so.
Fail closed: a step that fails stops the playbook (:class:`~weightvault.errors.ContainmentError`)
and the report says where. :func:`lift_containment` undoes it, only through the release
path's signed approvals. ``docs/containment.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from weightvault._fs import hash_file, staged_output, write_private
from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso, utcnow
from weightvault.artifacts import ISOLATABLE_TIERS, Vault
from weightvault.crypto import dsse
from weightvault.crypto.notes import verifier_from_vkey
from weightvault.errors import (
    ConflictError,
    ContainmentError,
    IncidentBundleError,
    IntegrityError,
    InvalidInputError,
    LiftRefusedError,
    NotFoundError,
    PolicyError,
    RebuildKitError,
    RetentionError,
    VaultError,
)
from weightvault.keys import KeyState
from weightvault.lifecycle import isolation, quarantine
from weightvault.lifecycle.audit import open_readonly_log
from weightvault.lifecycle.compromise import compromise_key, resolve_key
from weightvault.lifecycle.detection import INCIDENT_CONTAINED
from weightvault.lifecycle.export import bundle_roots
from weightvault.lifecycle.grants import ACCESSED, list_grants, revoke_grants_of
from weightvault.lifecycle.incidents import Incident, detect, list_incidents, resolve_incident
from weightvault.lifecycle.recover import recover
from weightvault.lifecycle.rekey import remaining_on, respond
from weightvault.lifecycle.trust import ensure_current_root, root_chain
from weightvault.provenance import Root, signing_key, walk_chain
from weightvault.records import Event, prove_entry, verify_entry_proof
from weightvault.tlog import parse_tlog_proof

__all__ = [
    "ACTIONS",
    "BUNDLE_TYPE",
    "SEVERITIES",
    "BundleReport",
    "ContainmentPlan",
    "ContainmentResult",
    "LiftResult",
    "StepResult",
    "bundle_evidence",
    "compromise_keys",
    "contain",
    "default_out",
    "find_incidents",
    "finish_playbook",
    "isolate_tiers",
    "lift_containment",
    "quarantine_artifacts",
    "raise_if_failed",
    "record_contained",
    "recover_artifacts",
    "rekey_keys",
    "render_report",
    "resolve",
    "revoke_grants",
    "run_step",
    "steps_for",
    "verify_incident_bundle",
]

ACTIONS = frozenset(
    {"quarantine", "revoke_grants", "isolate_tier", "compromise_keys", "recover", "rekey"}
)
SEVERITIES = ("low", "medium", "high", "critical")
#: severities at which the drastic actions (tier isolation, key compromise) run
_DRASTIC = frozenset({"high", "critical"})
BUNDLE_TYPE = "weightvault.incident-bundle/v1"
BUNDLE_PAYLOAD_TYPE = "application/vnd.weightvault.incident-bundle+json"
BUNDLED = "incident.bundled"
CONTAINED = INCIDENT_CONTAINED
LIFTED = "incident.lifted"
_ROOTS_DIR = "roots"
_PROOFS_DIR = "proofs"
_MAX_LIST = 1000


def _strings(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInputError(f"incident {what} must be a list of strings")
    out = tuple(str(v) for v in value)
    if len(out) > _MAX_LIST or any(not v or len(v) > 200 for v in out):
        raise InvalidInputError(f"incident {what}: at most {_MAX_LIST} names of 1-200 characters")
    return out


@dataclass(frozen=True)
class ContainmentPlan:
    """What to contain: the fields of a detected incident (lifecycle.incidents' Incident)."""

    incident_id: str
    rule: str
    severity: str
    artifacts: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    #: the ids of the log events that are the incident's evidence
    evidence: tuple[str, ...] = ()
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.incident_id or len(self.incident_id) > 100:
            raise InvalidInputError("an incident needs an id of at most 100 characters")
        if self.severity not in SEVERITIES:
            raise InvalidInputError(
                f"incident severity {self.severity!r} is not one of {', '.join(SEVERITIES)}"
            )
        unknown = set(self.actions) - ACTIONS
        if unknown:
            raise InvalidInputError(f"unknown containment action(s): {', '.join(sorted(unknown))}")
        bad = set(self.tiers) - set(ISOLATABLE_TIERS)
        if bad:
            raise InvalidInputError(f"cannot isolate tier(s) {', '.join(sorted(bad))}")

    @classmethod
    def from_incident(cls, obj: object) -> ContainmentPlan:
        """A plan from any object with an Incident's attributes (or a mapping of them)."""

        def get(*names: str) -> Any:
            for name in names:
                if isinstance(obj, Mapping):
                    if name in obj:
                        return obj[name]
                elif hasattr(obj, name):
                    return getattr(obj, name)
            return None

        return cls(
            incident_id=str(get("incident_id", "id") or ""),
            rule=str(get("rule") or ""),
            severity=str(get("severity") or "").lower(),
            artifacts=_strings(get("artifacts"), "artifacts"),
            principals=_strings(get("principals"), "principals"),
            keys=_strings(get("keys"), "keys"),
            tiers=_strings(get("tiers"), "tiers"),
            actions=_strings(get("actions"), "actions"),
            evidence=_strings(get("evidence", "evidence_event_ids", "evidence_events"), "evidence"),
            summary=str(get("summary") or "")[:500],
        )

    @classmethod
    def load(cls, path: Path) -> ContainmentPlan:
        """A plan from an incident JSON file."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read incident file {path} ({exc.strerror})") from None
        if len(data) > 1 << 20:
            raise InvalidInputError(f"incident file {path} is too large")
        try:
            doc = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise InvalidInputError(f"incident file {path} is not JSON") from None
        if not isinstance(doc, dict):
            raise InvalidInputError(f"incident file {path} is not a JSON object")
        return cls.from_incident(doc)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (lists for the tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class StepResult:
    """One step of the playbook: what it did, its log entries, when."""

    name: str
    #: done, skipped (the log shows it done already), deferred (not at this severity),
    #: not_needed (the incident names nothing for it) or failed
    status: str
    detail: str
    log_indexes: tuple[int, ...] = ()
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {**self.__dict__, "log_indexes": list(self.log_indexes)}


@dataclass(frozen=True)
class ContainmentResult:
    """The playbook's run: every step, the bundle, the report."""

    plan: ContainmentPlan
    steps: tuple[StepResult, ...]
    bundle: Path | None = None
    bundle_sha256: str | None = None
    contained_index: int | None = None
    report: str = ""
    failed_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "incident": self.plan.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "bundle": str(self.bundle) if self.bundle else None,
            "bundle_sha256": self.bundle_sha256,
            "contained_index": self.contained_index,
            "failed_at": self.failed_at,
        }


def _now(vault: Vault) -> str:
    return iso(vault.clock())


def _step(
    vault: Vault, name: str, status: str, detail: str, indexes: Iterable[int] = ()
) -> StepResult:
    return StepResult(name, status, detail, tuple(i for i in indexes if i >= 0), _now(vault))


# -- the seam -----------------------------------------------------------------------------


def find_incidents(
    vault: Vault, hint: Mapping[str, Any] | None, *, run_detector: bool = True
) -> list[ContainmentPlan]:
    """The open, not yet contained incidents the signed log supports, after a detection run.

    A Prefect event (an automation's trigger) is not trusted evidence, so ``hint`` (the
    trigger and resource an automation passes) only wakes the playbook: the detector
    (:func:`~weightvault.lifecycle.incidents.detect`) first reads the log's new entries and
    opens what its rules find; then every open incident without an ok
    ``incident.contained`` is returned, those naming the hint's resource first. A hint
    naming something the log does not support contains nothing. ``run_detector=False``
    when the caller has just run it (the detect flow).
    """
    if run_detector:
        detect(vault)
    resource = str((hint or {}).get("resource") or "")
    pending = [i for i in list_incidents(vault, "open") if i.contained_at is None]

    def names_hint(incident: Incident) -> bool:
        named = [f"weightvault.artifact.{a}" for a in incident.artifacts]
        named += [f"weightvault.principal.{p}" for p in incident.principals]
        named += [f"weightvault.tier.{t}" for t in incident.tiers]
        return bool(resource) and resource in named

    pending.sort(key=lambda i: not names_hint(i))
    return [ContainmentPlan.from_incident(i) for i in pending]


# -- the steps ----------------------------------------------------------------------------


def steps_for(plan: ContainmentPlan) -> list[str]:
    """The steps the plan's actions and severity call for, in playbook order."""
    steps = []
    if "revoke_grants" in plan.actions:
        steps.append("revoke_grants")
    tier_wide = "isolate_tier" in plan.actions and plan.tiers
    if "quarantine" in plan.actions or (tier_wide and plan.severity not in _DRASTIC):
        steps.append("quarantine_artifacts")
    if tier_wide:
        steps.append("isolate_tiers")
    if "compromise_keys" in plan.actions:
        steps.append("compromise_keys")
    if "compromise_keys" in plan.actions or "rekey" in plan.actions:
        steps.append("rekey_keys")
    if "recover" in plan.actions:
        steps.append("recover_artifacts")
    return steps


def _misused_grant_recipients(vault: Vault, plan: ContainmentPlan) -> list[str]:
    """The recipients of the grants the incident's ``grant.accessed`` evidence names (the
    collaborator who used a grant; the incident's principal is whoever synced the receipt).
    Each evidence entry is read from the log and must be the event its id names."""
    by_id: dict[str, str] | None = None
    names: list[str] = []
    for event_id in plan.evidence:
        index = _resolve_evidence(vault, event_id)
        (entry,) = vault.tlog.entries(index, index + 1)
        event = Event.parse(entry)
        if event.id != event_id:
            raise IntegrityError(f"log entry {index} is not the evidence event {event_id}")
        if event.kind != ACCESSED or not isinstance(event.details.get("grant_id"), str):
            continue
        if by_id is None:
            by_id = {g.grant_id: str(g.doc["recipient"]["name"]) for g in list_grants(vault)}
        name = by_id.get(str(event.details["grant_id"]))
        if name and name not in names:
            names.append(name)
    return names


def revoke_grants(vault: Vault, plan: ContainmentPlan) -> StepResult:
    """Revoke every grant issued to or by the incident's principals, and every grant issued
    to the recipient of a grant its evidence shows used (one op per grant)."""
    recipients = _misused_grant_recipients(vault, plan)
    if not plan.principals and not recipients:
        return _step(vault, "revoke_grants", "not_needed", "the incident names no principal")
    revoked: list[dict[str, Any]] = []
    skipped: list[str] = []
    per: list[str] = []
    # The misused grant's recipient first: its grants are what the incident is about.
    targets: list[tuple[str, str, str | None]] = [(f"recipient {r}", r, None) for r in recipients]
    targets += [(name, name, name) for name in plan.principals]
    for who, recipient, issuer in targets:
        done, already = revoke_grants_of(vault, recipient=recipient, issuer=issuer)
        revoked += done
        fresh = {str(d["grant_id"]) for d in revoked}
        skipped += [g for g in already if g not in skipped and g not in fresh]
        if done:
            ids = ", ".join(str(d["grant_id"]) for d in done[:10])
            per.append(f"{who}: {ids}" + (f" and {len(done) - 10} more" if len(done) > 10 else ""))
    if not revoked:
        who = ", ".join(t[0] for t in targets)
        detail = (
            f"{len(skipped)} grant(s) already revoked, skipped"
            if skipped
            else f"no grant issued to or by {who}"
        )
        return _step(vault, "revoke_grants", "skipped", detail)
    rekey = sum(1 for d in revoked if d.get("used"))
    detail = "; ".join([f"revoked {len(revoked)} grant(s) ({rekey} used, marked for rekey)", *per])
    if skipped:
        detail += f"; {len(skipped)} already revoked, skipped"
    return _step(vault, "revoke_grants", "done", detail)


def quarantine_artifacts(vault: Vault, plan: ContainmentPlan) -> StepResult:
    """Quarantine each artifact the incident names; one the log shows quarantined is skipped."""
    if not plan.artifacts:
        return _step(vault, "quarantine_artifacts", "not_needed", "the incident names no artifact")
    done, skipped = [], []
    reason = f"incident {plan.incident_id} ({plan.rule}, {plan.severity})"
    for artifact_id in plan.artifacts:
        row = vault.resolve(artifact_id)
        if vault.logged_quarantine(row.id) is not None:
            skipped.append(row.id)
            continue
        quarantine.quarantine(vault, row.id, reason=reason)
        done.append(row.id)
    if not done:
        return _step(
            vault, "quarantine_artifacts", "skipped", f"{len(skipped)} already quarantined"
        )
    detail = f"quarantined {', '.join(done)}"
    if skipped:
        detail += f"; {len(skipped)} already quarantined, skipped"
    return _step(vault, "quarantine_artifacts", "done", detail)


def isolate_tiers(vault: Vault, plan: ContainmentPlan) -> StepResult:
    """Isolate each tier a tier-wide incident names (high or critical severity only)."""
    if not plan.tiers:
        return _step(vault, "isolate_tiers", "not_needed", "the incident names no tier")
    if plan.severity not in _DRASTIC:
        return _step(
            vault,
            "isolate_tiers",
            "deferred",
            f"severity {plan.severity}: tiers are isolated only for high or critical incidents",
        )
    current = vault.isolated_tiers()
    done = []
    for tier in plan.tiers:
        if tier in current:
            continue
        isolation.isolate_tier(
            vault,
            tier,
            justification=f"incident {plan.incident_id}: {plan.rule}",
            incident=plan.incident_id,
        )
        done.append(tier)
    if not done:
        return _step(vault, "isolate_tiers", "skipped", f"{', '.join(plan.tiers)} already isolated")
    return _step(vault, "isolate_tiers", "done", f"isolated {', '.join(done)}")


def _key_done(vault: Vault, ref: str) -> bool:
    rec = resolve_key(vault, ref)
    if rec.state not in (KeyState.COMPROMISED, KeyState.DESTROYED):
        return False
    return rec.purpose != "kek" or remaining_on(vault, rec.ref) == 0


def compromise_keys(vault: Vault, plan: ContainmentPlan) -> StepResult:
    """Mark each key version the incident names compromised (high or critical severity)."""
    if not plan.keys:
        return _step(vault, "compromise_keys", "not_needed", "the incident names no key")
    if plan.severity not in _DRASTIC:
        return _step(
            vault,
            "compromise_keys",
            "deferred",
            f"severity {plan.severity}: keys are marked compromised only for high or critical",
        )
    done, skipped = [], []
    for ref in plan.keys:
        rec = resolve_key(vault, ref)
        if rec.state in (KeyState.COMPROMISED, KeyState.DESTROYED):
            skipped.append(rec.ref)
            continue
        done.append(compromise_key(vault, rec.ref).key)
    if not done:
        return _step(
            vault, "compromise_keys", "skipped", f"{', '.join(skipped)} already compromised"
        )
    return _step(vault, "compromise_keys", "done", f"marked {', '.join(done)} compromised")


def rekey_keys(vault: Vault, plan: ContainmentPlan) -> StepResult:
    """The rekey response (:func:`weightvault.lifecycle.rekey.respond`) for each named key
    that still protects envelopes; a key with nothing left on it is skipped."""
    if not plan.keys:
        return _step(vault, "rekey_keys", "not_needed", "the incident names no key")
    if plan.severity not in _DRASTIC:
        return _step(vault, "rekey_keys", "deferred", f"severity {plan.severity}: no rekey")
    done, skipped = [], []
    for ref in plan.keys:
        rec = resolve_key(vault, ref)
        if rec.state != KeyState.ACTIVE and _key_done(vault, rec.ref):
            skipped.append(rec.ref)
            continue
        report = respond(vault, rec.ref)
        done.append(
            f"{report.compromise.key} ({len(report.reencrypted)} re-encrypted, "
            f"{report.rewrap.rewrapped} rewrapped)"
        )
    if not done:
        return _step(vault, "rekey_keys", "skipped", f"nothing left on {', '.join(skipped)}")
    return _step(vault, "rekey_keys", "done", "rekeyed " + "; ".join(done))


def recover_artifacts(vault: Vault, plan: ContainmentPlan) -> StepResult:
    """Rebuild each artifact of the incident from its rebuild kit, restore it, verify it.

    :func:`weightvault.lifecycle.recover.recover` with restore: the stored objects are
    replaced only after the rebuild matched the manifest bit for bit (a quarantined
    artifact stays quarantined); then the restored objects are verified where they are.
    An artifact with no rebuild kit, or cold (object-locked), is reported as needing escrow
    or manual recovery and does not fail the step; a rebuild that does not match does.
    """
    if not plan.artifacts:
        return _step(vault, "recover_artifacts", "not_needed", "the incident names no artifact")
    done, manual, skipped = [], [], []
    for artifact_id in plan.artifacts:
        row = vault.resolve(artifact_id)
        held = vault.logged_quarantine(row.id)
        if held is not None and any(
            e.index > held.index and e.event.details.get("restored")
            for e in vault.history(row.id, {"artifact.recovered"})
        ):
            skipped.append(row.id)  # restored already since the quarantine in force
            continue
        try:
            report = recover(vault, row.id, restore_files=True)
        except (RebuildKitError, RetentionError) as exc:
            manual.append(f"{row.id}: needs escrow or manual recovery ({exc.message})")
            continue
        checked = vault.verify(row.id, in_quarantine=held is not None)
        cert = report.certificate or {}
        done.append(
            f"{row.id}: rebuilt bit for bit, restored and verified ({checked.files} files); "
            f"certificate {cert.get('key', '-')} (sha256 {cert.get('sha256', '-')})"
        )
    if skipped:
        manual.append(f"{', '.join(skipped)} already recovered since quarantined, skipped")
    if not done:
        return _step(vault, "recover_artifacts", "skipped", "; ".join(manual))
    return _step(vault, "recover_artifacts", "done", "; ".join(done + manual))


#: the kinds of the entries the steps log (for the timeline)
STEP_KINDS = (
    "grant.revoked",
    "artifact.rekey_needed",
    "artifact.quarantined",
    "tier.isolated",
    "key.compromised",
    "artifact.rekeyed",
    "envelopes.rewrapped",
    "artifact.recovered",
    "artifact.verified",
)

RUNNERS: dict[str, Callable[[Vault, ContainmentPlan], StepResult]] = {
    "revoke_grants": revoke_grants,
    "quarantine_artifacts": quarantine_artifacts,
    "isolate_tiers": isolate_tiers,
    "compromise_keys": compromise_keys,
    "rekey_keys": rekey_keys,
    "recover_artifacts": recover_artifacts,
}


# -- the incident bundle ------------------------------------------------------------------


def _resolve_evidence(vault: Vault, event_id: str) -> int:
    rows = vault.catalog.log_search(ref=event_id, limit=5)
    for row in rows:
        if row["id"] == event_id:
            return int(row["idx"])
    raise NotFoundError(f"evidence event {event_id} is not in the log's index")


def bundle_evidence(
    vault: Vault, plan: ContainmentPlan, steps: Iterable[StepResult], out: Path
) -> tuple[Path, str, int]:
    """Write the incident bundle into a new directory ``out``: (path, sha256 of its signed
    index, the ``incident.bundled`` log index).

    Every entry is read from the log itself (checked against its tile), must be the event
    the index names, and is proved under the one checkpoint current now.
    """
    out = out.absolute()
    wanted: dict[int, str] = {}
    for event_id in plan.evidence:
        wanted[_resolve_evidence(vault, event_id)] = "evidence"
    for step in steps:
        for index in step.log_indexes:
            wanted.setdefault(index, "step")
    details = {"incident": plan.incident_id, "output": vault.private(str(out))}
    with vault.operation(BUNDLED, None, None, details) as op:
        ensure_current_root(vault)
        log = open_readonly_log(vault)
        signed = log.checkpoint()
        size = signed.checkpoint.size
        entries = []
        with staged_output(out) as staging:
            (staging / _PROOFS_DIR).mkdir()
            for index, role in sorted(wanted.items()):
                if index >= size:
                    raise IntegrityError(f"log entry {index} is not in the signed checkpoint yet")
                entry = log.entries(index, index + 1)[0]
                event = Event.parse(entry)
                write_private(staging / _PROOFS_DIR / f"{index}.entry", entry)
                write_private(
                    staging / _PROOFS_DIR / f"{index}.tlog-proof", prove_entry(log, index, signed)
                )
                entries.append({"index": index, "id": event.id, "kind": event.kind, "role": role})
            if plan.evidence and not any(e["role"] == "evidence" for e in entries):
                raise IntegrityError("no evidence entry could be bundled")
            for e in entries:
                if e["role"] == "evidence" and e["id"] not in plan.evidence:
                    raise IntegrityError(
                        f"log entry {e['index']} is not the evidence event the index names: "
                        "the catalog's index was edited"
                    )
            (staging / _ROOTS_DIR).mkdir()
            for version in root_chain(vault):
                write_private(staging / _ROOTS_DIR / f"{version.version}.json", version.to_bytes())
            write_private(staging / "checkpoint", signed.note)
            listing = [
                {
                    "path": p.relative_to(staging).as_posix(),
                    "sha256": (h := hash_file(p)).sha256,
                    "size": h.size,
                }
                for p in sorted(staging.rglob("*"))
                if p.is_file()
            ]
            index_doc = {
                "type": BUNDLE_TYPE,
                "incident": plan.to_dict(),
                "created_at": _now(vault),
                "log": {"origin": signed.checkpoint.origin, "size": size},
                "entries": entries,
                "files": listing,
            }
            body = canonical_json(index_doc)
            write_private(staging / "incident.json", body)
            envelope = dsse.sign_envelope(body, BUNDLE_PAYLOAD_TYPE, signing_key(vault.keys))
            write_private(staging / "incident.dsse.json", canonical_json(envelope))
        digest = hashlib.sha256(body).hexdigest()
        op.details.update(bundle_sha256=digest, entries=len(entries), log_size=size)
    return out, digest, op.outcome_index


@dataclass(frozen=True)
class BundleReport:
    """What an offline check of an incident bundle established."""

    incident_id: str
    entries: int
    evidence: int
    log_size: int
    root_version: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dict(self.__dict__)


def _read(root: Path, rel: str) -> bytes:
    path = root / rel
    if not path.is_file() or path.is_symlink():
        raise IncidentBundleError(f"incident bundle is missing {rel}")
    return path.read_bytes()


def _check_files(root: Path, index: dict[str, Any]) -> None:
    """The bundle holds exactly the files its index lists, with their digests."""
    listed = {f["path"]: f for f in index["files"]}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}
    present -= {"incident.json", "incident.dsse.json"}
    if present != set(listed):
        raise IncidentBundleError(
            f"incident bundle file set differs from its index: {sorted(present ^ set(listed))[0]}"
        )
    for rel, item in listed.items():
        found = hash_file(root / rel)
        if found.sha256 != item["sha256"] or found.size != item["size"]:
            raise IncidentBundleError(f"incident bundle file {rel} does not match its digest")


def _check_entries(
    root: Path, index: dict[str, Any], verifiers: list[Any]
) -> tuple[int, bytes] | None:
    """Every listed entry proved at its index, all under the bundle's one checkpoint."""
    checkpoint_text = _read(root, "checkpoint")
    under: tuple[int, bytes] | None = None
    for item in index["entries"]:
        number = int(item["index"])
        where = f"incident bundle log entry {number}"
        entry = _read(root, f"{_PROOFS_DIR}/{number}.entry")
        proof = _read(root, f"{_PROOFS_DIR}/{number}.tlog-proof")
        try:
            checkpoint = verify_entry_proof(proof, entry, verifiers)
            proved = parse_tlog_proof(proof.decode()).index
            event = Event.parse(entry)
        except IntegrityError as exc:
            raise IncidentBundleError(f"{where}: {exc.message}") from None
        if proved != number:
            raise IncidentBundleError(f"{where}: its proof is of entry {proved}")
        if event.id != item["id"] or event.kind != item["kind"]:
            raise IncidentBundleError(f"{where} is not the event the index names")
        if under is None:
            under = (checkpoint.size, checkpoint.root)
        elif under != (checkpoint.size, checkpoint.root):
            raise IncidentBundleError(f"{where}: proved under another checkpoint")
        if not proof.decode().endswith(checkpoint_text.decode()):
            raise IncidentBundleError(f"{where}: not proved under the bundle's checkpoint")
    return under


def verify_incident_bundle(
    root: Path, pinned: Root, *, now: datetime | None = None
) -> BundleReport:
    """Check an incident bundle with nothing but its files and a trust root pinned beforehand.

    The root chain it carries must lead from ``pinned``; the index must be signed by that
    root's signing keys and list exactly the files, with their digests; every entry must be
    proved, at the index its file names, under the bundle's one checkpoint signed by the
    root's log keys; every evidence event the incident names must be among them.
    IncidentBundleError (exit 70) on any failure.
    """
    if not root.is_dir():
        raise InvalidInputError(f"{root} is not an incident bundle directory")
    try:
        trusted = walk_chain(pinned, bundle_roots(root), now if now is not None else utcnow())
        body = _read(root, "incident.json")
        envelope = parse_canonical(_read(root, "incident.dsse.json"), "incident bundle signature")
        if dsse.verify_envelope(envelope, trusted.trusted(), BUNDLE_PAYLOAD_TYPE) != body:
            raise IncidentBundleError("incident.json does not match its signature")
        index = parse_canonical(body, "incident bundle index")
    except IncidentBundleError:
        raise
    except (IntegrityError, InvalidInputError) as exc:
        raise IncidentBundleError(f"incident bundle: {exc.message}") from None
    if index.get("type") != BUNDLE_TYPE:
        raise IncidentBundleError("incident bundle index has an unknown type")
    try:
        return _check_index(root, trusted, body, index)
    except (KeyError, TypeError, ValueError):
        raise IncidentBundleError("incident bundle index is malformed") from None


def _check_index(root: Path, trusted: Root, body: bytes, index: dict[str, Any]) -> BundleReport:
    _check_files(root, index)
    if not trusted.log:
        raise IncidentBundleError(f"trust root v{trusted.version} lists no log keys")
    under = _check_entries(root, index, [verifier_from_vkey(v) for v in trusted.log])
    incident = index["incident"]
    proved_ids = {e["id"] for e in index["entries"]}
    missing = [e for e in incident.get("evidence", []) if e not in proved_ids]
    if missing:
        raise IncidentBundleError(f"incident evidence event {missing[0]} is not in the bundle")
    return BundleReport(
        str(incident["incident_id"]),
        len(index["entries"]),
        sum(1 for e in index["entries"] if e["role"] == "evidence"),
        under[0] if under else int(index["log"]["size"]),
        trusted.version,
        hashlib.sha256(body).hexdigest(),
    )


# -- summary and report -------------------------------------------------------------------


def record_contained(
    vault: Vault,
    plan: ContainmentPlan,
    steps: Iterable[StepResult],
    bundle_sha256: str | None,
    failed_at: str | None = None,
) -> int:
    """Log ``incident.contained``: every step's status and log indexes, the bundle digest.

    A playbook that stopped at a failed step records its outcome ``failed``, naming it.
    """
    listed = [
        {"step": s.name, "status": s.status, "log_indexes": list(s.log_indexes)} for s in steps
    ]
    details = {
        "incident": plan.incident_id,
        "rule": plan.rule,
        "severity": plan.severity,
        "steps": listed,
        "bundle_sha256": bundle_sha256,
    }
    op = vault.begin(CONTAINED, None, None, details)
    error = (
        ContainmentError(f"incident {plan.incident_id}: step {failed_at} failed")
        if failed_at
        else None
    )
    vault.finish(op, error)
    return op.outcome_index


def render_report(result: ContainmentResult) -> str:
    """The markdown report: the incident, then the timeline (step, status, log index, time)."""
    plan = result.plan
    lines = [
        f"# Containment of incident `{plan.incident_id}`",
        "",
        f"Rule `{plan.rule}`, severity **{plan.severity}**."
        + (f" {plan.summary}" if plan.summary else ""),
        "",
        f"- artifacts: {', '.join(plan.artifacts) or '-'}",
        f"- principals: {', '.join(plan.principals) or '-'}",
        f"- keys: {', '.join(plan.keys) or '-'}",
        f"- tiers: {', '.join(plan.tiers) or '-'}",
        f"- actions: {', '.join(plan.actions) or '-'}",
        f"- evidence events: {len(plan.evidence)}",
        "",
    ]
    if result.failed_at:
        lines += [f"**The playbook stopped at `{result.failed_at}`** (fail closed).", ""]
    lines += [
        "## Timeline",
        "",
        "| time | step | status | log index | detail |",
        "|---|---|---|---|---|",
    ]
    for s in result.steps:
        where = ", ".join(str(i) for i in s.log_indexes) or "-"
        detail = s.detail.replace("|", "\\|")
        lines.append(f"| {s.at} | {s.name} | {s.status} | {where} | {detail} |")
    lines.append("")
    if result.bundle_sha256:
        lines.append(
            f"Incident bundle: `{result.bundle}` (index sha256 `{result.bundle_sha256}`); "
            "check it offline with `weightvault verify-incident-bundle DIR --root ROOT`."
        )
    if result.contained_index is not None:
        lines.append(f"Summary entry `incident.contained`: log index {result.contained_index}.")
    recovered = next((s for s in result.steps if s.name == "recover_artifacts"), None)
    if recovered is not None and "manual recovery" in recovered.detail:
        lines.append(
            "Some artifacts could not be rebuilt from a rebuild kit: restore them from escrow "
            "(`weightvault escrow decrypt`) or by hand (see the recover_artifacts step)."
        )
    return "\n".join(lines) + "\n"


# -- the playbook in a row ----------------------------------------------------------------


def _logged_by_us(vault: Vault, after: int) -> list[int]:
    """The ok outcomes this process logged past index ``after`` (a step's entries)."""
    size = vault.tlog.checkpoint().checkpoint.size
    keyid = vault.identity.keyid
    out = []
    for index, text in vault.catalog.log_of_kinds(STEP_KINDS, after, size):
        event = Event.parse(text.encode())
        if (
            event.phase == "outcome"
            and event.outcome == "ok"
            and event.kind in STEP_KINDS
            and event.principal.get("keyid") == keyid
            and event.client.get("pid") == os.getpid()
        ):
            out.append(index)
    return out


def run_step(vault: Vault, plan: ContainmentPlan, name: str) -> StepResult:
    """Run one step; a failure becomes a ``failed`` result naming its one-line reason.

    The result carries the log indexes of the ok outcomes the step logged."""
    before = vault.tlog.checkpoint().checkpoint.size
    try:
        result = RUNNERS[name](vault, plan)
    except VaultError as exc:
        result = _step(vault, name, "failed", exc.message)
    return replace(result, log_indexes=tuple(_logged_by_us(vault, before - 1)))


def finish_playbook(
    vault: Vault, plan: ContainmentPlan, steps: list[StepResult], out: Path
) -> ContainmentResult:
    """The bundle, the summary entry and the report after the steps (or the failed one)."""
    failed = next((s.name for s in steps if s.status == "failed"), None)
    bundle: Path | None = None
    digest: str | None = None
    if failed is None:
        try:
            bundle, digest, index = bundle_evidence(vault, plan, steps, _next_dir(out, "bundle"))
            steps.append(
                _step(vault, "bundle_evidence", "done", f"bundle sha256 {digest}", [index])
            )
        except VaultError as exc:
            failed = "bundle_evidence"
            steps.append(_step(vault, "bundle_evidence", "failed", exc.message))
    contained = record_contained(vault, plan, steps, digest, failed)
    result = ContainmentResult(plan, tuple(steps), bundle, digest, contained, failed_at=failed)
    report = render_report(result)
    out.mkdir(parents=True, exist_ok=True)
    write_private(_next_file(out, "report", ".md"), report.encode())
    return replace(result, report=report)


def _next_dir(out: Path, stem: str) -> Path:
    n = 1
    while (out / f"{stem}-{n}").exists():
        n += 1
    return out / f"{stem}-{n}"


def _next_file(out: Path, stem: str, suffix: str) -> Path:
    n = 1
    while (out / f"{stem}-{n}{suffix}").exists():
        n += 1
    return out / f"{stem}-{n}{suffix}"


def default_out(vault: Vault, plan: ContainmentPlan) -> Path:
    """Where the bundle and report of an incident go by default: ``<home>/incidents/<id>``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in plan.incident_id)
    return vault.settings.home / "incidents" / safe


def contain(vault: Vault, plan: ContainmentPlan, out: Path | None = None) -> ContainmentResult:
    """Run the whole playbook in this process; a failed step stops it (the result's
    ``failed_at``; :func:`raise_if_failed`), after the summary entry and the report."""
    target = out or default_out(vault, plan)
    steps: list[StepResult] = []
    for name in steps_for(plan):
        step = run_step(vault, plan, name)
        steps.append(step)
        if step.status == "failed":
            break
    return finish_playbook(vault, plan, steps, target)


def raise_if_failed(result: ContainmentResult) -> ContainmentResult:
    """The result, or ContainmentError naming the step the playbook stopped at."""
    if result.failed_at:
        detail = next((s.detail for s in result.steps if s.name == result.failed_at), "")
        raise ContainmentError(
            f"incident {result.plan.incident_id}: containment stopped at {result.failed_at}: "
            + detail
        )
    return result


# -- lifting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiftResult:
    """What lifting a containment released, restored, and refused."""

    released: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)
    log_index: int = -1

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "released": list(self.released),
            "restored": list(self.restored),
            "refused": dict(self.refused),
            "log_index": self.log_index,
        }


def lift_containment(vault: Vault, plan: ContainmentPlan, justification: str) -> LiftResult:
    """Undo a containment: restore the isolated tiers, release each quarantined artifact.

    A release goes only through :func:`weightvault.lifecycle.quarantine.release`, which
    needs the signed ``release`` approvals the log records after the quarantine; one that
    lacks them is refused (logged, by the release itself) and named. One ``incident.lifted``
    sums it up; LiftRefusedError (exit 71) if anything was refused.
    """
    if not justification.strip():
        raise InvalidInputError("lifting a containment needs a justification")
    restored, released = [], []
    refused: dict[str, str] = {}
    isolated = vault.isolated_tiers()
    for tier in plan.tiers:
        if tier not in isolated:
            continue
        isolation.restore_tier(vault, tier, justification=justification, incident=plan.incident_id)
        restored.append(tier)
    for artifact_id in plan.artifacts:
        if vault.logged_quarantine(artifact_id) is None:
            continue
        try:
            quarantine.release(vault, artifact_id, justification=justification)
        except (PolicyError, ConflictError) as exc:
            refused[artifact_id] = exc.message
            continue
        released.append(artifact_id)
    details = {
        "incident": plan.incident_id,
        "justification": justification[:500],
        "released": released,
        "restored": restored,
        "refused": sorted(refused),
    }
    op = vault.begin(LIFTED, None, None, details)
    error = (
        LiftRefusedError(
            f"incident {plan.incident_id}: "
            + "; ".join(f"{a}: {why}" for a, why in sorted(refused.items()))
        )
        if refused
        else None
    )
    vault.finish(op, error)
    if error is not None:
        raise error
    return LiftResult(tuple(released), tuple(restored), refused, op.outcome_index)


def resolve(vault: Vault, incident_id: str, justification: str) -> Incident:
    """``weightvault incident resolve``: lift the incident's containment, then resolve it.

    One ``incident.resolved`` operation: inside it :func:`lift_containment` restores the
    isolated tiers and releases the quarantined artifacts (only with their signed release
    approvals). If lifting is refused (LiftRefusedError, exit 71) the resolution is
    recorded refused and the incident stays open, its artifacts quarantined.
    """

    def lift(incident: Incident, text: str) -> None:
        lift_containment(vault, ContainmentPlan.from_incident(incident), text)

    return resolve_incident(vault, incident_id, justification, before=lift)
