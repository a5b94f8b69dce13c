"""Validation of a stored artifact: formats, Great Expectations, evidence.

The validate flow runs these steps as tasks:

1. :func:`decrypt_to` writes the plaintext to a private temporary directory;
2. :func:`scan` decides each file's type by content (pickle is never loaded);
3. :func:`check_record`, :func:`check_dataset`, :func:`check_metrics` run the
   Great Expectations suites;
4. :func:`record` signs the combined report as a statement bound to the
   ``artifact.validated`` log entry, indexes its hash in the catalog, and
   quarantines the artifact if any file is unsafe. A failed validation keeps
   its evidence and blocks promotion.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightvault.artifacts import Vault
from weightvault.gates import (
    ScanResult,
    ValidationReport,
    provenance_record,
    scan_artifact,
    validate_dataset,
    validate_metrics,
    validate_record,
)
from weightvault.lifecycle.evidence import VALIDATED, sign_report
from weightvault.lifecycle.quarantine import quarantine


@dataclass(frozen=True)
class ValidationOutcome:
    """The verdict of one validation run (no plaintext, no keys)."""

    artifact_id: str
    status: str
    report_key: str
    report_sha256: str
    failures: list[str]
    unsafe_files: list[str]
    quarantined: bool


def decrypt_to(vault: Vault, artifact_id: str) -> Path:
    """Decrypt and verify an artifact into a new private temporary directory."""
    workdir = Path(tempfile.mkdtemp(prefix="weightvault-validate-"))
    vault.get(artifact_id, workdir / "artifact")
    return workdir / "artifact"


def cleanup(path: Path) -> None:
    """Remove a directory made by :func:`decrypt_to`."""
    shutil.rmtree(path.parent, ignore_errors=True)


def scan(root: Path) -> list[ScanResult]:
    """Format verdict of every file (content-based)."""
    return scan_artifact(root)


def check_record(vault: Vault, artifact_id: str) -> ValidationReport:
    """GX suite over the signed provenance and the manifest."""
    row = vault.resolve(artifact_id)
    manifest, dek = vault.load_manifest(row.id, row.tier)
    del dek
    statement = vault.verify_statement(row.id, row.tier, manifest)
    extra = statement["predicate"]["buildDefinition"]["externalParameters"].get("extra", {})
    provenance = dict(extra.get("provenance") or {})
    files = [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in manifest.model_files]
    return validate_record(
        provenance_record(provenance, files, row.id),
        expectations_dir=vault.settings.expectations_dir,
    )


def check_dataset(vault: Vault, model_repo: Path | None) -> ValidationReport | None:
    """GX suite over the DVC-tracked training dataset, when the model repo is given."""
    if model_repo is None:
        return None
    return validate_dataset(
        model_repo / "data" / "prepared" / "train.csv",
        expectations_dir=vault.settings.expectations_dir,
    )


def check_metrics(
    vault: Vault, model_repo: Path | None, artifact_root: Path
) -> ValidationReport | None:
    """GX suite over metrics.json (from the artifact, else the model repo)."""
    candidates = [artifact_root / "metrics.json"]
    if model_repo is not None:
        candidates.append(model_repo / "metrics.json")
    for path in candidates:
        if path.is_file():
            return validate_metrics(
                path, vault.settings.min_accuracy, expectations_dir=vault.settings.expectations_dir
            )
    return None


def record(
    vault: Vault,
    artifact_id: str,
    scans: list[ScanResult],
    reports: list[ValidationReport | None],
) -> ValidationOutcome:
    """Sign the report into the log's outcome, index its hash, quarantine if unsafe."""
    row = vault.resolve(artifact_id)
    done = [r for r in reports if r is not None]
    unsafe = [s.path for s in scans if s.verdict != "clean"]
    failures = [f"{r.suite}: {name}" for r in done for name in r.failed]
    failures += [f"format: {s.path}: {'; '.join(s.reasons)}" for s in scans if s.verdict != "clean"]
    if not any(r.suite.startswith("provenance") for r in done):
        failures.append("provenance_record: not run")
    status = "passed" if not failures else "failed"
    document: dict[str, Any] = {
        "status": status,
        "failures": failures,
        "files": [s.to_dict() for s in scans],
        "expectations": [r.to_dict() for r in done],
        "content_digest": row.content_digest,
    }
    details = {"status": status, "failures": len(failures)}
    with vault.operation(VALIDATED, row.id, row.tier, details) as op:
        ref = sign_report(
            vault,
            op,
            artifact_id=row.id,
            name=row.name,
            content_digest=row.content_digest,
            report=document,
        )
        key, digest = ref.key, ref.sha256
        op.details.update(report_sha256=digest, report=key)
    vault.catalog.set_validation(row.id, status, digest)
    quarantined = False
    if unsafe and row.tier != "quarantine":
        quarantine(vault, row.id, reason=f"unsafe content: {', '.join(unsafe)}")
        quarantined = True
    return ValidationOutcome(row.id, status, key, digest, failures, unsafe, quarantined)


def validate_artifact(vault: Vault, artifact_id: str, model_repo: Path | None) -> ValidationOutcome:
    """Every validation step in this process."""
    root = decrypt_to(vault, artifact_id)
    try:
        scans = scan(root)
        reports = [
            check_record(vault, artifact_id),
            check_dataset(vault, model_repo),
            check_metrics(vault, model_repo, root),
        ]
    finally:
        cleanup(root)
    return record(vault, artifact_id, scans, reports)
