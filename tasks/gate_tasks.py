"""Prefect tasks for validation and promotion (adapters over the core)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.vault_tasks import RETRYING, vault
from weightvault.gates import ScanResult, ValidationReport
from weightvault.lifecycle import validate as admission
from weightvault.lifecycle.promote import Gate, Promotion, PromotionResult, refuse
from weightvault.lifecycle.validate import ValidationOutcome

ONCE = {"persist_result": False, "cache_policy": NO_CACHE}


@task(name="decrypt-for-validation", **RETRYING)
def decrypt(artifact_id: str) -> Path:
    """Decrypt and verify into a private temporary directory."""
    return admission.decrypt_to(vault(), artifact_id)


@task(name="scan-formats", **ONCE)
def scan(root: Path) -> list[ScanResult]:
    """Content-based format checks; pickle is never loaded."""
    return admission.scan(root)


@task(name="gx-provenance-record", **RETRYING)
def gx_record(artifact_id: str) -> ValidationReport:
    """Great Expectations over the signed provenance and manifest."""
    return admission.check_record(vault(), artifact_id)


@task(name="gx-dataset", **ONCE)
def gx_dataset(model_repo: str | None) -> ValidationReport | None:
    """Great Expectations over the DVC-tracked training dataset."""
    return admission.check_dataset(vault(), Path(model_repo) if model_repo else None)


@task(name="gx-metrics", **ONCE)
def gx_metrics(model_repo: str | None, root: Path) -> ValidationReport | None:
    """Great Expectations over the evaluation metrics."""
    return admission.check_metrics(vault(), Path(model_repo) if model_repo else None, root)


@task(name="record-validation", **RETRYING)
def record(
    artifact_id: str, scans: list[ScanResult], reports: list[ValidationReport | None]
) -> ValidationOutcome:
    """Keep the evidence, index its hash, quarantine unsafe content."""
    return admission.record(vault(), artifact_id, scans, reports)


@task(name="cleanup", **ONCE)
def cleanup(root: Path) -> None:
    """Remove the decrypted copy."""
    admission.cleanup(root)


@task(name="load-artifact", **RETRYING)
def prepare(
    artifact_id: str, target: str, approver: str, justification: str, legal_hold: bool
) -> Promotion:
    """Resolve the artifact and check the move is allowed."""
    return Promotion(
        vault(),
        artifact_id,
        target,
        approver=approver,
        justification=justification,
        legal_hold=legal_hold,
    )


@task(name="gate-integrity-signature", **RETRYING)
def integrity(move: Promotion) -> Gate:
    """Decrypt and hash every file, verify the signed statement."""
    return move.load()


@task(name="gate-policy", **RETRYING)
def policy(move: Promotion, integrity_gate: Gate) -> tuple[Gate, str]:
    """Rego policy with the validation result, for the target tier."""
    return move.gates(integrity_gate)


@task(name="refuse", **ONCE)
def refuse_move(move: Promotion, gates: list[Gate]) -> None:
    """Record the refusal and fail with every reason."""
    refuse(move, gates)


@task(name="claim", **ONCE)
def claim(move: Promotion) -> None:
    """Take the artifact; exactly one concurrent promotion wins."""
    move.claim()


@task(name="copy-ciphertext", **RETRYING)
def copy(move: Promotion) -> int:
    """Server-side copy to the target bucket."""
    return move.copy()


@task(name="rewrap-dek", **RETRYING)
def rewrap(move: Promotion) -> str:
    """Wrap the DEK for the target tier; no re-encryption."""
    return move.rewrap()


@task(name="commit-promotion", **ONCE)
def commit(move: Promotion, gates: list[Gate], digest: str) -> PromotionResult:
    """Manifest (commit point), retention, attestation, catalog, event."""
    return move.commit(gates, digest)


@task(name="compensate", **ONCE)
def compensate(move: Promotion) -> None:
    """Undo a failed promotion; the artifact stays in its source tier."""
    move.compensate()
