"""Tier moves: promotion hot -> warm -> cold, and delete.

A promotion is written once, here, as named steps: plain functions taking the
vault and immutable values (a frozen :class:`PromotionPlan`, a
:class:`~weightvault.lifecycle.claims.Claim`, gates, digests). The CLI runs
them in a row (:func:`promote`); the promote flow runs each as a Prefect task
and adds only retries, reports, events and the transaction whose rollback
hooks call the same compensation steps.

1. :func:`plan` resolves the artifact and checks the move is allowed (read-only);
2. :func:`check_integrity` decrypts and hashes everything, verifies the statement;
3. :func:`check_policy` runs the Rego policy with the validation result the
   signed log backs (:func:`weightvault.lifecycle.evidence.latest_report`; a
   catalog record that disagrees, or a report that does not verify, is named);
   :func:`refuse` records a refusal and raises PolicyError with every reason;
4. :func:`claim` takes the artifact (of two concurrent moves exactly one wins);
5. :func:`copy` copies ciphertext and statement server-side;
6. :func:`rewrap` wraps the DEK for the target tier (no re-encryption);
7. :func:`commit` copies the manifest (the commit point), applies retention and
   legal hold for cold, appends the signed promotion attestation, records the
   event, updates the catalog, escrows a cold DEK and removes the source.

Every step is idempotent: run again with the same values it converges to the
same state. Copies go to fixed keys (an identical object is not copied again),
the envelope has one key, and :func:`commit` looks for what an earlier attempt
already did (target manifest, promotion attestation, event) before doing it.

Compensation, for a failure before the commit point, undoes in reverse order:
:func:`discard_envelope` (rewrap), :func:`discard_copies` (copy) and
:func:`release` (claim); :func:`abandon` runs all three (it also covers the
failing step's own partial work). Each is idempotent and leaves the target
alone once the target manifest exists: past the commit point a move rolls
forward (run :func:`commit` again with the same claim), never back.

A delete is steps too: :func:`plan_delete` (retention checks),
:func:`remove_objects` (manifest first: the commit point), :func:`announce_delete`
(once) and :func:`unindex`; :func:`delete_artifact` runs them in a row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weightvault._time import iso_seconds
from weightvault.artifacts import StatementRef, Vault
from weightvault.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    PolicyError,
    RetentionError,
    StatementError,
    VaultError,
)
from weightvault.gates import evaluate
from weightvault.lifecycle import claims
from weightvault.lifecycle.approvals import check_approvals
from weightvault.lifecycle.certificate import check_certificate, required_for
from weightvault.lifecycle.claims import Claim
from weightvault.lifecycle.evidence import LoggedReport, catalog_disagrees, latest_report
from weightvault.provenance import Attestation, append_attestation, find_attestation, trust_root
from weightvault.store.layout import (
    envelope_key,
    manifest_key,
    oms_signature_key,
    statement_key,
)

__all__ = [
    "PROMOTIONS",
    "Claim",
    "DeletePlan",
    "Gate",
    "PromotionPlan",
    "PromotionResult",
    "abandon",
    "announce_delete",
    "certificate_line",
    "check_integrity",
    "check_move",
    "check_policy",
    "claim",
    "commit",
    "copy",
    "delete_artifact",
    "discard_copies",
    "discard_envelope",
    "plan",
    "plan_delete",
    "policy_input",
    "promote",
    "refuse",
    "release",
    "remove_objects",
    "rewrap",
    "unindex",
]

PROMOTIONS = {("hot", "warm"), ("warm", "cold")}
PAYLOAD = "c2sp.org/chunked-encryption@v1 Cobblestone-256"
PROMOTED = "artifact.promoted"


def check_move(source: str, target: str) -> None:
    """Refuse any move other than hot->warm and warm->cold."""
    if (source, target) not in PROMOTIONS:
        allowed = ", ".join(f"{a}->{b}" for a, b in sorted(PROMOTIONS))
        raise PolicyError(
            f"moving an artifact from {source} to {target} is not allowed (allowed: {allowed}; "
            "use quarantine/release for incidents)"
        )


@dataclass(frozen=True)
class Gate:
    """The outcome of one gate, with every reason."""

    name: str
    passed: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "passed": self.passed, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class PromotionPlan:
    """What one promotion will do, fixed before anything moves (no key material)."""

    artifact_id: str
    name: str
    content_digest: str
    source: str
    target: str
    justification: str
    legal_hold: bool
    #: ciphertext and statement keys (the manifest is copied last, by :func:`commit`)
    object_keys: tuple[str, ...]


@dataclass(frozen=True)
class PromotionResult:
    """What a completed promotion did."""

    artifact_id: str
    source: str
    target: str
    attestation: str
    policy_digest: str
    gates: tuple[Gate, ...]
    retain_until: str | None
    legal_hold: bool
    #: the attestation's ``certificate``: required, and which one satisfied it (cold, or required)
    certificate: dict[str, Any] | None = None

    def certificate_line(self) -> str | None:
        """One line on the reproducibility certificate, for reports (None: not checked)."""
        return certificate_line(self.certificate)


def certificate_line(doc: dict[str, Any] | None) -> str | None:
    """How a report names an attestation's ``certificate`` (None when it has none)."""
    if not doc:
        return None
    statement = doc.get("statement") or {}
    if doc.get("valid") and statement:
        return (
            f"reproducibility certificate {'required' if doc.get('required') else 'not required'}; "
            f"satisfied by {statement.get('key')} (log entry {doc.get('log_index')}, "
            f"issued {doc.get('issued_at')})"
        )
    if doc.get("required"):
        return "reproducibility certificate required; none valid"
    return "reproducibility certificate not required; none recorded"


# -- plan and gates -------------------------------------------------------------------


def plan(
    vault: Vault,
    artifact_id: str,
    target: str,
    *,
    justification: str,
    legal_hold: bool = False,
) -> PromotionPlan:
    """Resolve the artifact and check the move is allowed; nothing is written."""
    row = vault.resolve(artifact_id)
    check_move(row.tier, target)
    files = [f["object_key"] for f in vault.catalog.files_of(row.id)]
    # The OMS signature moves with the statement (puts before it have none).
    oms = oms_signature_key(row.id)
    signatures = (oms,) if vault.store.exists(vault.bucket(row.tier), oms) else ()
    return PromotionPlan(
        artifact_id=row.id,
        name=row.name,
        content_digest=row.content_digest,
        source=row.tier,
        target=target,
        justification=justification.strip(),
        legal_hold=legal_hold,
        object_keys=(*files, statement_key(row.id), *signatures),
    )


def check_integrity(vault: Vault, p: PromotionPlan) -> Gate:
    """Integrity and signature: decrypt and hash everything, verify the statement."""
    try:
        vault.verify(p.artifact_id)
    except IntegrityError as exc:
        return Gate("integrity", False, (f"integrity: {exc.message}",))
    return Gate("integrity", True)


def _validation(
    vault: Vault, p: PromotionPlan, content_digest: str
) -> tuple[LoggedReport | None, str, list[str]]:
    """The logged report, the status the gate sees, and what is wrong with the evidence.

    The catalog's validation record is never trusted: only compared, and a
    disagreement is named. A report that does not verify is ``untrusted``.
    """
    try:
        logged = latest_report(vault, p.artifact_id, content_digest)
    except StatementError as exc:
        return None, "untrusted", [f"evidence: {exc.message}"]
    problems = []
    try:
        catalog_sha256 = vault.resolve(p.artifact_id).validation_sha256
    except NotFoundError:
        catalog_sha256 = None
    disagree = catalog_disagrees(catalog_sha256, logged)
    if disagree is not None:
        problems.append(f"evidence: {disagree}")
    return logged, (str(logged.report.get("status")) if logged else "missing"), problems


def policy_input(vault: Vault, p: PromotionPlan, integrity: Gate) -> dict[str, Any]:
    """The Rego input document for this promotion."""
    return _policy_input(vault, p, integrity)[0]


def _policy_input(
    vault: Vault, p: PromotionPlan, integrity: Gate
) -> tuple[dict[str, Any], list[str]]:
    manifest, dek = vault.load_manifest(p.artifact_id, p.source)
    del dek
    statement = vault.verify_statement(p.artifact_id, p.source, manifest)
    build = statement["predicate"]["buildDefinition"]
    source = build["externalParameters"].get("source", {})
    extra = build["externalParameters"].get("extra", {})
    logged, status, problems = _validation(vault, p, manifest.content_digest)
    report = logged.report if logged else {}
    formats = {f["path"]: f["format"] for f in report.get("files", [])}
    git: dict[str, Any] = {}
    if "commit" in source:
        git = {"commit": source["commit"], "dirty": source["dirty"]}
    missing = list(extra.get("missing", []))
    # Adopted content (lifecycle.adopt): its signed provenance says it was recovered after the fact.
    backfilled = isinstance((extra.get("provenance") or {}).get("backfilled"), dict)
    approvals: dict[str, Any] | None = None
    if p.target == "cold" or (backfilled and p.target == "warm"):
        check = check_approvals(vault, p.artifact_id, p.target)
        approvals = {
            "required": check.required,
            "satisfied": check.satisfied,
            "approvers": list(check.approvers),
            "not_counted": [f"log entry {i}: {why}" for i, why in check.rejected],
            "creator_may_approve": vault.settings.creator_may_approve,
        }
    certificate: dict[str, Any] | None = None
    required = required_for(vault, p.target)
    if required or p.target == "cold":
        certificate = check_certificate(
            vault, p.artifact_id, manifest, required=required
        ).to_input()
    document = {
        "artifact": {
            "id": p.artifact_id,
            "name": manifest.name,
            "tier": p.source,
            "target_tier": p.target,
            "creator": manifest.creator,
            # The put's labels amended by the signed log's label entries (never a catalog row).
            "license": vault.effective_labels(p.artifact_id, dict(manifest.labels)).get(
                "license", ""
            ),
            "files": [
                {
                    "path": f.path,
                    "format": formats.get(f.path, "unknown"),
                    "size": f.size,
                    "sha256": f.sha256,
                }
                for f in manifest.model_files
            ],
            "encryption": {"payload": PAYLOAD, "dek_wrap": "A256GCM", "kek_bits": 256},
            "signature": {"valid": integrity.passed, "algorithms": ["Ed25519", "ML-DSA-65"]},
            "validation": {"status": status, "skipped": list(report.get("skipped") or [])},
            "provenance": {
                "complete": not missing and bool(git),
                "missing": missing,
                "git": git,
                "backfilled": backfilled,
            },
        },
        "request": {
            "justification": p.justification,
            "approvals": approvals,
            "certificate": certificate,
        },
    }
    return document, problems


def _approvers(vault: Vault, p: PromotionPlan) -> list[str]:
    """The approvers the log backs for a cold promotion, or a warm one of adopted content
    (none needed for other warm promotions)."""
    if p.target not in {"cold", "warm"}:
        return []
    return list(check_approvals(vault, p.artifact_id, p.target).approvers)


def _certificate(vault: Vault, p: PromotionPlan) -> dict[str, Any] | None:
    """What the attestation says of the reproducibility certificate (cold, or required).

    ``required``, and when a valid one satisfied the rule: which (its statement
    and the log entry naming it).
    """
    required = required_for(vault, p.target)
    if not required and p.target != "cold":
        return None
    # Called before the source is removed: its manifest is still the one the log names.
    manifest, dek = vault.load_manifest(p.artifact_id, p.source)
    del dek
    check = check_certificate(vault, p.artifact_id, manifest, required=required)
    return {
        "required": check.required,
        "valid": check.valid,
        "statement": check.statement if check.valid else None,
        "log_index": check.index if check.valid else None,
        "issued_at": check.issued_at if check.valid else None,
    }


def check_policy(vault: Vault, p: PromotionPlan, integrity: Gate) -> tuple[Gate, str]:
    """Run the policy; returns the policy gate and the policy bundle digest.

    Evidence the log does not back (a forged or edited report, a catalog
    record that disagrees with the log) fails the gate with its own reason.
    """
    document, problems = _policy_input(vault, p, integrity)
    decision = evaluate(document, vault.settings.policy_dir)
    reasons = (*decision.reasons, *problems)
    return Gate("policy", decision.allow and not problems, reasons), decision.policy_digest


def refuse(vault: Vault, p: PromotionPlan, gates: Sequence[Gate]) -> None:
    """Record a refused promotion and raise PolicyError with every reason."""
    failed = [r for g in gates if not g.passed for r in g.reasons]
    vault.record(
        "artifact.promotion_refused",
        p.artifact_id,
        p.source,
        {"tier": p.target, "reasons": failed},
    )
    raise PolicyError(f"promotion of {p.artifact_id} to {p.target} refused: " + "; ".join(failed))


# -- moves ----------------------------------------------------------------------------


def claim(vault: Vault, p: PromotionPlan) -> Claim:
    """Take the artifact; ConflictError if another move holds it."""
    return claims.take(vault, p.artifact_id, p.source, p.target)


def _same_object(vault: Vault, src: str, dst: str, key: str) -> bool:
    """True when ``dst/key`` already holds what ``src/key`` holds."""
    try:
        there = vault.store.stat(dst, key)
    except NotFoundError:
        return False
    here = vault.store.stat(src, key)
    return there.size == here.size and bool(here.etag) and there.etag == here.etag


def copy(vault: Vault, p: PromotionPlan, held: Claim) -> int:
    """Server-side copy of ciphertext and statement; returns how many objects were copied.

    Idempotent: every object goes to its fixed key, and one the target already
    holds (same size and ETag) is not copied again.
    """
    src, dst = vault.bucket(p.source), vault.bucket(p.target)
    copied = 0
    for key in p.object_keys:
        # Each object renews the claim, and stops a holder whose claim was taken over.
        if not claims.held(vault, held):
            return copied
        if not _same_object(vault, src, dst, key):
            vault.store.copy(src, key, dst, key)
            copied += 1
    return copied


def rewrap(vault: Vault, p: PromotionPlan, held: Claim) -> str:
    """Wrap the DEK under the target tier's KEK and store that envelope (one key)."""
    if not claims.held(vault, held):
        wrapped = vault.load_envelope(p.artifact_id, p.target)
        return f"{wrapped.kek_id}@v{wrapped.kek_version}"
    dek = vault.keys.unwrap_dek(vault.load_envelope(p.artifact_id, p.source))
    wrapped = vault.keys.wrap_dek(p.target, p.artifact_id, dek)
    del dek
    vault.put_envelope(
        p.artifact_id, p.target, envelope_key(p.artifact_id, p.target), wrapped.to_dict()
    )
    return f"{wrapped.kek_id}@v{wrapped.kek_version}"


def _committed(vault: Vault, p: PromotionPlan) -> bool:
    """Past the commit point: the target holds the manifest."""
    return vault.store.exists(vault.bucket(p.target), manifest_key(p.artifact_id))


def _lock(vault: Vault, p: PromotionPlan, retain: datetime | None) -> None:
    """Retention and legal hold on every target object.

    Safe to repeat: a retry computes a later date, and COMPLIANCE retention may
    be extended, never shortened. Once the attestation exists the locks it
    records were applied before it, so :func:`commit` does not lock again.
    """
    dst = vault.bucket(p.target)
    for key in (manifest_key(p.artifact_id), *p.object_keys):
        if retain is not None:
            vault.store.set_retention(dst, key, retain)
        if p.legal_hold:
            vault.store.set_legal_hold(dst, key, True)
    if retain is not None and vault.envelope_retain_until(p.artifact_id, p.target) is not None:
        # The envelope is as durable as the ciphertext it opens.
        envelopes = vault.bucket("envelopes")
        vault.store.set_retention(envelopes, envelope_key(p.artifact_id, p.target), retain)


def _attestation(vault: Vault, p: PromotionPlan) -> Attestation | None:
    """The promotion attestation of this move, if an earlier attempt appended it.

    An artifact moves from one tier to the next at most once (tiers only go
    forward), so (from, to) names the promotion.
    """
    return find_attestation(
        vault.store,
        vault.bucket("audit"),
        p.artifact_id,
        trust_root(vault.keys),
        p.content_digest,
        kind="promotion",
        match={"from": p.source, "to": p.target},
    )


def _promoted_ts(vault: Vault, p: PromotionPlan, att: Attestation) -> str | None:
    """When the signed log recorded the promotion naming ``att``, if it did."""
    for logged in vault.history(p.artifact_id, {PROMOTED}):
        details = logged.event.details
        # Entries recorded before promotions named their statement carry only the key.
        if details.get("statement", {"key": details.get("attestation")}) in (
            _bound(att).to_dict(),
            {"key": att.key},
        ):
            return logged.event.ts
    return None


def _bound(att: Attestation) -> StatementRef:
    """How the ``artifact.promoted`` outcome names its attestation."""
    return StatementRef("promotion", att.key, att.sha256)


def commit(
    vault: Vault, p: PromotionPlan, held: Claim, gates: Sequence[Gate], policy_digest: str
) -> PromotionResult:
    """Copy the manifest (commit point), lock, attest, announce, index, clean up.

    Idempotent: a retry skips what an earlier attempt did (the manifest copy,
    the attestation, the event) and redoes only what converges (locks, index,
    escrow, source removal).
    """
    claims.held(vault, held)  # raises ConflictError if the claim was lost
    src, dst = vault.bucket(p.source), vault.bucket(p.target)
    mkey = manifest_key(p.artifact_id)
    if not _committed(vault, p):
        vault.store.copy(src, mkey, dst, mkey)
    # Past the commit point: from here on the move rolls forward, never back.
    att = _attestation(vault, p)
    if att is None:
        retain = vault.retain_until(p.target)
        _lock(vault, p, retain)
        att = append_attestation(
            vault.store,
            vault.bucket("audit"),
            vault.keys,
            artifact_id=p.artifact_id,
            name=p.name,
            content_digest=p.content_digest,
            kind="promotion",
            predicate={
                "from": p.source,
                "to": p.target,
                "approvers": _approvers(vault, p),
                "certificate": _certificate(vault, p),
                "justification": p.justification,
                "requested_by": vault.actor,
                "at": iso_seconds(vault.clock()),
                "gates": [g.to_dict() for g in gates],
                "policy_digest": policy_digest,
                "retain_until": iso_seconds(retain) if retain else None,
                "legal_hold": p.legal_hold,
            },
        )
    retain_text: str | None = att.predicate.get("retain_until")
    since = _promoted_ts(vault, p, att)
    if since is None:
        since = vault.record(
            PROMOTED,
            p.artifact_id,
            p.target,
            {
                "from": p.source,
                "tier": p.target,
                "attestation": att.key,
                "attestation_sha256": att.sha256,
                "statement": _bound(att).to_dict(),
                "policy_digest": policy_digest,
                "state": vault.object_state(p.artifact_id, p.target),
            },
        ).ts
    wrapped = vault.load_envelope(p.artifact_id, p.target)
    with vault.catalog.transaction() as conn:
        vault.catalog.move(
            conn,
            p.artifact_id,
            tier=p.target,
            bucket=dst,
            since=since,
            retain_until=vault.retain_until_of(p.target, p.artifact_id),
            legal_hold=p.legal_hold,
        )
        vault.catalog.drop_envelope(conn, p.artifact_id, p.source)
        vault.catalog.set_envelope(
            conn,
            p.artifact_id,
            p.target,
            wrapped.kek_id,
            wrapped.kek_version,
            envelope_key(p.artifact_id, p.target),
        )
    if p.target == "cold":
        from weightvault.lifecycle.escrow import escrow_on_publish, has_escrow_key

        if has_escrow_key(vault.keys):
            escrow_on_publish(vault, p.artifact_id)
    _remove_source(vault, p)
    return PromotionResult(
        p.artifact_id,
        p.source,
        p.target,
        att.key,
        str(att.predicate.get("policy_digest", policy_digest)),
        tuple(gates),
        retain_text,
        p.legal_hold,
        att.predicate.get("certificate"),
    )


def _remove_source(vault: Vault, p: PromotionPlan) -> None:
    """Delete the source copy, manifest first so a crash leaves only orphans."""
    src = vault.bucket(p.source)
    for key in (manifest_key(p.artifact_id), *p.object_keys):
        with contextlib.suppress(NotFoundError, RetentionError):
            vault.store.remove(src, key)
    with contextlib.suppress(NotFoundError):
        vault.store.remove(vault.bucket("envelopes"), envelope_key(p.artifact_id, p.source))


# -- compensation (before the commit point only) ---------------------------------------


def _ours(vault: Vault, held: Claim | None) -> bool:
    """Whether compensation may touch the target: the claim is still ours (or not given)."""
    if held is None:
        return True
    try:
        return claims.held(vault, held)
    except ConflictError:
        return False  # taken over: the target's objects belong to the new holder


def discard_envelope(vault: Vault, p: PromotionPlan, held: Claim | None = None) -> bool:
    """Undo :func:`rewrap`: remove the target envelope; True if one was removed.

    With ``held``, nothing is removed once that claim was lost or the move indexed.
    """
    if _committed(vault, p) or not _ours(vault, held):
        return False
    try:
        vault.store.remove(vault.bucket("envelopes"), envelope_key(p.artifact_id, p.target))
    except NotFoundError:
        return False
    return True


def discard_copies(vault: Vault, p: PromotionPlan, held: Claim | None = None) -> int:
    """Undo :func:`copy`: remove the target's copies; returns how many were removed.

    With ``held``, nothing is removed once that claim was lost or the move indexed.
    """
    if _committed(vault, p) or not _ours(vault, held):
        return 0
    dst = vault.bucket(p.target)
    removed = 0
    for key in reversed(p.object_keys):
        with contextlib.suppress(NotFoundError):
            vault.store.remove(dst, key)
            removed += 1
    return removed


def release(vault: Vault, p: PromotionPlan, held: Claim) -> bool:
    """Undo :func:`claim` (before the commit point); True if the claim was dropped now.

    Past the commit point the claim stays: it marks the move as owed a roll
    forward, so no other move starts from a tier the artifact is leaving.
    """
    if _committed(vault, p):
        return False
    return claims.release(vault, held)


def abandon(vault: Vault, p: PromotionPlan, held: Claim) -> None:
    """Every compensation, in reverse order of the steps; the artifact stays in its source.

    The claim is released even when a discard fails (what is left is an orphan
    for ``gc``: without a target manifest it is never visible).
    """
    try:
        discard_envelope(vault, p, held)
        discard_copies(vault, p, held)
    finally:
        release(vault, p, held)


# -- the steps in a row ---------------------------------------------------------------


def promote(
    vault: Vault,
    artifact_id: str,
    target: str,
    *,
    justification: str,
    legal_hold: bool = False,
) -> PromotionResult:
    """Run every step of a promotion in this process; PolicyError lists every reason.

    The request is one logged operation (``artifact.promotion``): its intent is
    recorded before the gates run, its outcome (ok, refused with every reason,
    failed) after; the commit itself is the ``artifact.promoted`` record.
    """
    details = {"to": target, "justification": justification}
    with vault.artifact_operation("artifact.promotion", artifact_id, details) as op:
        p = plan(
            vault,
            artifact_id,
            target,
            justification=justification,
            legal_hold=legal_hold,
        )
        integrity = check_integrity(vault, p)
        policy, digest = check_policy(vault, p, integrity)
        gates = (integrity, policy)
        if not all(g.passed for g in gates):
            refuse(vault, p, gates)
        held = claim(vault, p)
        try:
            copy(vault, p, held)
            rewrap(vault, p, held)
            result = commit(vault, p, held, gates, digest)
        except BaseException:
            with contextlib.suppress(VaultError):
                abandon(vault, p, held)
            raise
        op.details["policy_digest"] = digest
    return result


# -- delete ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeletePlan:
    """Which artifact a delete removes, and from where (checked against retention)."""

    artifact_id: str
    tier: str


def plan_delete(vault: Vault, artifact_id: str) -> DeletePlan:
    """Check the artifact may be deleted; RetentionError while retained or on hold."""
    row = vault.resolve(artifact_id)
    placement = vault.catalog.placement(row.id)
    if placement["retain_until"]:
        raise RetentionError(
            f"artifact {row.id} is retained until {placement['retain_until']}: delete refused"
        )
    if placement["legal_hold"]:
        raise RetentionError(f"artifact {row.id} is under legal hold: delete refused")
    return DeletePlan(row.id, row.tier)


def remove_objects(vault: Vault, d: DeletePlan) -> int:
    """Remove the manifest (the commit point), then the rest; idempotent. Returns how many."""
    # The manifest goes first: a crash then leaves orphans for gc, never a half artifact.
    removed = 0
    with contextlib.suppress(NotFoundError):
        vault.store.remove(vault.bucket(d.tier), manifest_key(d.artifact_id))
        removed = 1
    return removed + vault.discard(d.artifact_id, d.tier)


def announce_delete(vault: Vault, d: DeletePlan, removed: int) -> str:
    """Record the deletion once; returns the event's time."""
    for event in vault.catalog.events_of(d.artifact_id):
        if event["kind"] == "artifact.deleted":
            return str(event["ts"])
    details = {"tier": d.tier, "objects": removed}
    return vault.record("artifact.deleted", d.artifact_id, d.tier, details).ts


def unindex(vault: Vault, d: DeletePlan) -> None:
    """Drop the artifact's catalog rows (its events stay: they are evidence); idempotent."""
    with vault.catalog.transaction() as conn:
        vault.catalog.remove_artifact(conn, d.artifact_id)


def delete_artifact(vault: Vault, artifact_id: str) -> int:
    """Delete an artifact's objects: every delete step in a row; refused under retention.

    The intent is in the audit log before anything is removed; a refusal
    (retention, legal hold) is recorded as the outcome.
    """
    with vault.artifact_operation("artifact.deleted", artifact_id) as op:
        d = plan_delete(vault, artifact_id)
        op.details["tier"] = d.tier
        removed = remove_objects(vault, d)
        op.details["objects"] = removed
    unindex(vault, d)
    return removed
