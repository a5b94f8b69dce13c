"""Validation of a stored artifact: formats, Great Expectations, evidence.

The validate flow runs these steps as tasks:

1. :func:`decrypt_to` writes the plaintext to a private temporary directory;
2. :func:`scan` decides each file's type by content (pickle is never loaded);
3. :func:`check_record` runs the provenance suite; :func:`check_model` the
   datasets and metrics checks the model repository configures
   (``weightvault.toml`` or ``[tool.weightvault.validation]``:
   ``gates.load_validation_config``). Each suite runs as a GX Checkpoint that
   renders its Data Docs (HTML) into the run's docs directory
   (:func:`docs_dir`);
4. :func:`record` stores the Data Docs pages (``data-docs/<id>/<sha256>.html``),
   signs the combined report, listing each page's key and sha256, as a
   statement bound to the ``artifact.validated`` log entry, indexes its hash
   in the catalog, and quarantines the artifact if any file is unsafe and it
   is not quarantined yet.

The status is ``failed`` if anything failed, else ``partial`` if a check was
skipped (no model repository, no configuration, a part of it left out: the
report names each under ``skipped``), else ``passed``. Partial never
satisfies a promotion gate (rule ``validation_complete``). A failed or partial
validation keeps its evidence.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightvault.artifacts import Vault
from weightvault.errors import IntegrityError, InvalidInputError, NotFoundError
from weightvault.gates import (
    ModelChecks,
    ScanResult,
    ValidationReport,
    provenance_record,
    run_model_checks,
    scan_artifact,
    validate_record,
)
from weightvault.lifecycle.evidence import VALIDATED, latest_report, sign_report
from weightvault.lifecycle.quarantine import quarantine
from weightvault.store.layout import data_docs_key

__all__ = [
    "ValidationOutcome",
    "check_model",
    "check_record",
    "cleanup",
    "decrypt_to",
    "docs_dir",
    "fetch_data_docs",
    "record",
    "scan",
    "validate_artifact",
]


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
    skipped: list[str] = field(default_factory=list)
    #: the stored Data Docs pages: key, sha256 and suite of each
    data_docs: list[dict[str, str]] = field(default_factory=list)


def decrypt_to(vault: Vault, artifact_id: str) -> Path:
    """Decrypt and verify an artifact into a new private temporary directory."""
    workdir = Path(tempfile.mkdtemp(prefix="weightvault-validate-"))
    vault.get(artifact_id, workdir / "artifact")
    return workdir / "artifact"


def docs_dir(root: Path) -> Path:
    """Where the GX Checkpoints of the run in ``root`` (:func:`decrypt_to`) render Data Docs."""
    path = root.parent / "data-docs"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def cleanup(path: Path) -> None:
    """Remove a directory made by :func:`decrypt_to` (its Data Docs too)."""
    shutil.rmtree(path.parent, ignore_errors=True)


def scan(root: Path) -> list[ScanResult]:
    """Format verdict of every file (content-based)."""
    return scan_artifact(root)


def check_record(vault: Vault, artifact_id: str, data_docs: Path | None = None) -> ValidationReport:
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
        data_docs=data_docs,
    )


def check_model(
    vault: Vault, model_repo: Path | None, artifact_root: Path, data_docs: Path | None = None
) -> ModelChecks:
    """The datasets and metrics checks the model repository configures (skipped without one)."""
    return run_model_checks(
        model_repo,
        artifact_root,
        expectations_dir=vault.settings.expectations_dir,
        data_docs=data_docs,
    )


def _pages(data_docs: Path | None) -> list[tuple[str, bytes]]:
    """(suite, HTML) of every validation page the Checkpoints rendered, in a stable order."""
    if data_docs is None or not (data_docs / "validations").is_dir():
        return []
    found = []
    for page in sorted((data_docs / "validations").rglob("*.html")):
        suite = page.relative_to(data_docs / "validations").parts[0]
        found.append((suite, page.read_bytes()))
    return found


def _store_pages(vault: Vault, artifact_id: str, data_docs: Path | None) -> list[dict[str, str]]:
    """Store the Data Docs pages (content-addressed, idempotent); their links for the report."""
    links = []
    for suite, html in _pages(data_docs):
        digest = hashlib.sha256(html).hexdigest()
        key = data_docs_key(artifact_id, digest)
        vault.store.put_bytes(vault.bucket("audit"), key, html)
        links.append({"suite": suite, "key": key, "sha256": digest})
    return links


def record(
    vault: Vault,
    artifact_id: str,
    scans: list[ScanResult],
    reports: list[ValidationReport | None],
    model: ModelChecks | None = None,
    data_docs: Path | None = None,
) -> ValidationOutcome:
    """Store the Data Docs, sign the report into the log's outcome, index its hash,
    quarantine if unsafe (once: an artifact already quarantined stays as it is)."""
    row = vault.resolve(artifact_id)
    model = model if model is not None else run_model_checks(None, Path())
    done = [r for r in reports if r is not None] + list(model.reports)
    unsafe = [s.path for s in scans if s.verdict != "clean"]
    failures = [f"{r.suite}: {name}" for r in done for name in r.failed]
    failures += [f"format: {s.path}: {'; '.join(s.reasons)}" for s in scans if s.verdict != "clean"]
    failures += list(model.failures)
    if not any(r.suite.startswith("provenance") for r in done):
        failures.append("provenance_record: not run")
    skipped = list(model.skipped)
    status = "failed" if failures else "partial" if skipped else "passed"
    details: dict[str, Any] = {"status": status, "failures": len(failures)}
    if skipped:
        details["skipped"] = skipped
    with vault.operation(VALIDATED, row.id, row.tier, details) as op:
        links = _store_pages(vault, row.id, data_docs)
        document: dict[str, Any] = {
            "status": status,
            "failures": failures,
            "skipped": skipped,
            "config": model.source or None,
            "files": [s.to_dict() for s in scans],
            "expectations": [r.to_dict() for r in done],
            "data_docs": links,
            "content_digest": row.content_digest,
        }
        ref = sign_report(
            vault,
            op,
            artifact_id=row.id,
            name=row.name,
            content_digest=row.content_digest,
            report=document,
        )
        key, digest = ref.key, ref.sha256
        op.details.update(report_sha256=digest, report=key, data_docs=len(links))
    vault.catalog.set_validation(row.id, status, digest)
    quarantined = False
    if unsafe and row.tier != "quarantine":
        quarantine(vault, row.id, reason=f"unsafe content: {', '.join(unsafe)}")
        quarantined = True
    return ValidationOutcome(
        row.id, status, key, digest, failures, unsafe, quarantined, skipped, links
    )


def fetch_data_docs(vault: Vault, artifact_id: str, out: Path) -> list[Path]:
    """Write the Data Docs pages of the artifact's latest logged validation into ``out``.

    The report is the signed one the log records (never the catalog); each page
    must hash to the sha256 the report lists, else IntegrityError.
    """
    row = vault.resolve(artifact_id)
    logged = latest_report(vault, row.id, row.content_digest)
    if logged is None:
        raise NotFoundError(f"artifact {row.id} has no validation in the log")
    links = logged.report.get("data_docs") or []
    pages = []
    for link in links:
        html = vault.store.get_bytes(vault.bucket("audit"), str(link["key"]))
        if hashlib.sha256(html).hexdigest() != link["sha256"]:
            raise IntegrityError(
                f"Data Docs page {link['key']} does not match the signed report of {row.id}"
            )
        # The suite name comes from the model repo's suite file: keep it a plain file name.
        suite = re.sub(r"[^A-Za-z0-9_.]", "_", str(link["suite"])).lstrip(".") or "suite"
        pages.append((f"{suite}-{str(link['sha256'])[:12]}.html", html))
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, html in pages:
            (out / name).write_bytes(html)
            written.append(out / name)
    except OSError as exc:
        raise InvalidInputError(f"--out {out}: cannot write there ({exc.strerror})") from None
    return written


def validate_artifact(vault: Vault, artifact_id: str, model_repo: Path | None) -> ValidationOutcome:
    """Every validation step in this process."""
    root = decrypt_to(vault, artifact_id)
    try:
        scans = scan(root)
        docs = docs_dir(root)
        record_report = check_record(vault, artifact_id, docs)
        model = check_model(vault, model_repo, root, docs)
        return record(vault, artifact_id, scans, [record_report], model, docs)
    finally:
        cleanup(root)
