"""Tier moves: promotion hot -> warm -> cold, quarantine and release.

A promotion is a sequence of steps the promote flow runs as tasks:

1. :meth:`Promotion.load` verifies integrity and signature (a gate);
2. :meth:`Promotion.gates` runs the Rego policy with the validation result;
3. :meth:`Promotion.claim` takes the artifact (exactly one concurrent move wins);
4. :meth:`Promotion.copy` copies ciphertext and statement server-side;
5. :meth:`Promotion.rewrap` wraps the DEK for the target tier (no re-encryption);
6. :meth:`Promotion.commit` copies the manifest (the commit point), applies
   retention and legal hold for cold, appends the signed promotion
   attestation, updates the catalog, records the event and removes the source.

Any failure before the commit runs :meth:`Promotion.compensate`, which removes
what was copied and releases the claim, so the artifact stays in its source
tier with nothing half-promoted visible.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from weightvault._json import canonical_json
from weightvault.artifacts import Vault, iso_seconds
from weightvault.errors import (
    IntegrityError,
    NotFoundError,
    PolicyError,
    RetentionError,
    VaultError,
)
from weightvault.gates import evaluate
from weightvault.lifecycle.evidence import latest_report
from weightvault.provenance import append_attestation
from weightvault.store.layout import envelope_key, manifest_key, statement_key

PROMOTIONS = {("hot", "warm"), ("warm", "cold")}
PAYLOAD = "c2sp.org/chunked-encryption@v1 Cobblestone-256"


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
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "passed": self.passed, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class PromotionResult:
    """What a completed promotion did."""

    artifact_id: str
    source: str
    target: str
    attestation: str
    policy_digest: str
    gates: list[Gate]
    retain_until: str | None
    legal_hold: bool


class Promotion:
    """One promotion of one artifact, as resumable steps."""

    def __init__(
        self,
        vault: Vault,
        artifact_id: str,
        target: str,
        *,
        approver: str,
        justification: str,
        legal_hold: bool = False,
    ) -> None:
        self.vault = vault
        self.row = vault.resolve(artifact_id)
        self.artifact_id = self.row.id
        self.source = self.row.tier
        self.target = target
        self.approver = approver.strip()
        self.justification = justification.strip()
        self.legal_hold = legal_hold
        self.copied: list[str] = []
        self.claimed = False
        self.committed = False
        check_move(self.source, target)

    # -- gates ------------------------------------------------------------------

    def load(self) -> Gate:
        """Integrity and signature: decrypt and hash everything, verify the statement."""
        try:
            self.vault.verify(self.artifact_id)
        except IntegrityError as exc:
            return Gate("integrity", False, [f"integrity: {exc.message}"])
        return Gate("integrity", True, [])

    def policy_input(self, integrity: Gate) -> dict[str, Any]:
        """The Rego input document for this promotion."""
        vault = self.vault
        manifest, dek = vault.load_manifest(self.artifact_id, self.source)
        del dek
        statement = vault.verify_statement(self.artifact_id, self.source, manifest)
        build = statement["predicate"]["buildDefinition"]
        source = build["externalParameters"].get("source", {})
        extra = build["externalParameters"].get("extra", {})
        report = latest_report(vault, self.row)
        formats = {f["path"]: f["format"] for f in report.get("files", [])} if report else {}
        status = report["status"] if report else "missing"
        git: dict[str, Any] = {}
        if "commit" in source:
            git = {"commit": source["commit"], "dirty": source["dirty"]}
        missing = list(extra.get("missing", []))
        return {
            "artifact": {
                "id": self.artifact_id,
                "name": manifest.name,
                "tier": self.source,
                "target_tier": self.target,
                "creator": manifest.creator,
                "license": manifest.labels.get("license", ""),
                "files": [
                    {
                        "path": f.path,
                        "format": formats.get(f.path, "unknown"),
                        "size": f.size,
                        "sha256": f.sha256,
                    }
                    for f in manifest.files
                ],
                "encryption": {"payload": PAYLOAD, "dek_wrap": "A256GCM", "kek_bits": 256},
                "signature": {"valid": integrity.passed, "algorithms": ["Ed25519", "ML-DSA-65"]},
                "validation": {"status": status},
                "provenance": {
                    "complete": not missing and bool(git),
                    "missing": missing,
                    "git": git,
                },
            },
            "request": {"approver": self.approver, "justification": self.justification},
        }

    def gates(self, integrity: Gate) -> tuple[Gate, str]:
        """Run the policy; returns the policy gate and the policy bundle digest."""
        policy_dir = self.vault.settings.policy_dir
        decision = evaluate(self.policy_input(integrity), policy_dir)
        return Gate("policy", decision.allow, list(decision.reasons)), decision.policy_digest

    # -- moves --------------------------------------------------------------------

    def claim(self) -> None:
        """Take the artifact; ConflictError if another move holds it."""
        self.vault.catalog.claim(self.artifact_id, self.source, self.target)
        self.claimed = True

    def _object_keys(self) -> list[str]:
        files = [f["object_key"] for f in self.vault.catalog.files_of(self.artifact_id)]
        return [*files, statement_key(self.artifact_id)]

    def copy(self) -> int:
        """Server-side copy of ciphertext and statement to the target bucket."""
        src, dst = self.vault.bucket(self.source), self.vault.bucket(self.target)
        for key in self._object_keys():
            self.vault.store.copy(src, key, dst, key)
            self.copied.append(key)
        return len(self.copied)

    def rewrap(self) -> str:
        """Wrap the DEK under the target tier's KEK and store that envelope."""
        vault = self.vault
        dek = vault.keys.unwrap_dek(vault.load_envelope(self.artifact_id, self.source))
        wrapped = vault.keys.wrap_dek(self.target, self.artifact_id, dek)
        del dek
        vault.store.put_bytes(
            vault.bucket("envelopes"),
            envelope_key(self.artifact_id, self.target),
            canonical_json(wrapped.to_dict()),
        )
        return f"{wrapped.kek_id}@v{wrapped.kek_version}"

    def commit(self, gates: list[Gate], digest: str) -> PromotionResult:
        """Copy the manifest (commit point), lock, attest, index, announce, clean up."""
        vault = self.vault
        src, dst = vault.bucket(self.source), vault.bucket(self.target)
        mkey = manifest_key(self.artifact_id)
        vault.store.copy(src, mkey, dst, mkey)
        self.copied.append(mkey)
        # Past the commit point: from here on the move rolls forward, never back.
        self.committed = True
        retain = vault.retain_until(self.target)
        if retain is not None:
            for key in self.copied:
                vault.store.set_retention(dst, key, retain)
        if self.legal_hold:
            for key in self.copied:
                vault.store.set_legal_hold(dst, key, True)
        retain_text = iso_seconds(retain) if retain else None
        att = append_attestation(
            vault.store,
            vault.bucket("audit"),
            vault.keys,
            artifact_id=self.artifact_id,
            name=self.row.name,
            content_digest=self.row.content_digest,
            kind="promotion",
            predicate={
                "from": self.source,
                "to": self.target,
                "approver": self.approver,
                "justification": self.justification,
                "requested_by": vault.actor,
                "at": iso_seconds(vault.clock()),
                "gates": [g.to_dict() for g in gates],
                "policy_digest": digest,
                "retain_until": retain_text,
                "legal_hold": self.legal_hold,
            },
        )
        event = vault.record_event(
            "artifact.promoted",
            self.artifact_id,
            {
                "from": self.source,
                "tier": self.target,
                "approver": self.approver,
                "attestation": att.key,
                "attestation_sha256": att.sha256,
                "policy_digest": digest,
            },
        )
        wrapped = vault.load_envelope(self.artifact_id, self.target)
        with vault.catalog.transaction() as conn:
            vault.catalog.move(
                conn,
                self.artifact_id,
                tier=self.target,
                bucket=dst,
                since=event.ts,
                retain_until=vault.retain_until_of(self.target, self.artifact_id),
                legal_hold=self.legal_hold,
            )
            vault.catalog.drop_envelope(conn, self.artifact_id, self.source)
            vault.catalog.set_envelope(
                conn,
                self.artifact_id,
                self.target,
                wrapped.kek_id,
                wrapped.kek_version,
                envelope_key(self.artifact_id, self.target),
            )
        self.claimed = False
        if self.target == "cold":
            from weightvault.lifecycle.escrow import escrow_on_publish, has_escrow_key

            if has_escrow_key(vault.keys):
                escrow_on_publish(vault, self.artifact_id)
        self._remove_source()
        return PromotionResult(
            self.artifact_id,
            self.source,
            self.target,
            att.key,
            digest,
            gates,
            retain_text,
            self.legal_hold,
        )

    def _remove_source(self) -> None:
        """Delete the source copy, manifest first so a crash leaves only orphans."""
        vault = self.vault
        src = vault.bucket(self.source)
        keys = [manifest_key(self.artifact_id), *self._object_keys()]
        for key in keys:
            with contextlib.suppress(NotFoundError, RetentionError):
                vault.store.remove(src, key)
        with contextlib.suppress(NotFoundError):
            vault.store.remove(
                vault.bucket("envelopes"), envelope_key(self.artifact_id, self.source)
            )

    def compensate(self) -> None:
        """Undo the steps done so far; the artifact stays in its source tier."""
        if self.committed:
            return
        vault = self.vault
        dst = vault.bucket(self.target)
        for key in reversed(self.copied):
            with contextlib.suppress(VaultError):
                vault.store.remove(dst, key)
        self.copied.clear()
        with contextlib.suppress(VaultError):
            vault.store.remove(
                vault.bucket("envelopes"), envelope_key(self.artifact_id, self.target)
            )
        if self.claimed:
            vault.catalog.release(self.artifact_id)
            self.claimed = False


def promote(
    vault: Vault,
    artifact_id: str,
    target: str,
    *,
    approver: str,
    justification: str,
    legal_hold: bool = False,
) -> PromotionResult:
    """Run every step of a promotion in this process; PolicyError lists every reason."""
    move = Promotion(
        vault,
        artifact_id,
        target,
        approver=approver,
        justification=justification,
        legal_hold=legal_hold,
    )
    integrity = move.load()
    policy, digest = move.gates(integrity)
    gates = [integrity, policy]
    failed = [r for g in gates if not g.passed for r in g.reasons]
    if failed:
        vault.record_event(
            "artifact.promotion_refused",
            move.artifact_id,
            {"tier": target, "reasons": failed, "approver": move.approver},
        )
        raise PolicyError(
            f"promotion of {move.artifact_id} to {target} refused: " + "; ".join(failed)
        )
    move.claim()
    try:
        move.copy()
        move.rewrap()
        return move.commit(gates, digest)
    except BaseException:
        if move.claimed:
            move.compensate()
        raise


def refuse(move: Promotion, gates: list[Gate]) -> None:
    """Record a refused promotion and raise PolicyError with every reason."""
    failed = [r for g in gates if not g.passed for r in g.reasons]
    move.vault.record_event(
        "artifact.promotion_refused",
        move.artifact_id,
        {"tier": move.target, "reasons": failed, "approver": move.approver},
    )
    raise PolicyError(
        f"promotion of {move.artifact_id} to {move.target} refused: " + "; ".join(failed)
    )


def delete_artifact(vault: Vault, artifact_id: str) -> int:
    """Delete an artifact's objects; refused while any is under retention."""
    row = vault.resolve(artifact_id)
    placement = vault.catalog.placement(row.id)
    if placement["retain_until"]:
        raise RetentionError(
            f"artifact {row.id} is retained until {placement['retain_until']}: delete refused"
        )
    if placement["legal_hold"]:
        raise RetentionError(f"artifact {row.id} is under legal hold: delete refused")
    # The manifest goes first: a crash then leaves orphans for gc, never a half artifact.
    vault.store.remove(vault.bucket(row.tier), manifest_key(row.id))
    removed = 1 + vault.discard(row.id, row.tier)
    vault.record_event("artifact.deleted", row.id, {"tier": row.tier, "objects": removed})
    with vault.catalog.transaction() as conn:
        vault.catalog.remove_artifact(conn, row.id)
    return removed
