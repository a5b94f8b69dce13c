"""Whether an artifact has a valid reproducibility certificate, as the signed log records it.

The promotion policy's ``request.certificate`` (Rego rule ``reproducible``) is
computed here, from the log only: the latest ok ``artifact.recovered`` outcome
that names a certificate (:meth:`Vault.history`, every entry proved in the
signed checkpoint), its statement read with
:func:`~weightvault.artifacts.trusted_statement` (the logged bytes, signed by a
trusted vault key at the logged time) and then checked against the artifact:
the subject and ``outputs.content_digest`` are the content digest the log
recorded at ingest (and the authenticated manifest's), and the per-file
digests are the manifest's model files. Neither a form nor the catalog is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weightvault.artifacts import LoggedEvent, Vault, trusted_statement
from weightvault.errors import IntegrityError, StatementError
from weightvault.lifecycle.recover import CERTIFICATE_KIND, KIND
from weightvault.provenance import predicate_type
from weightvault.records import Manifest

__all__ = ["CertificateCheck", "check_certificate", "required_for"]

INGESTED = "artifact.ingested"


@dataclass(frozen=True)
class CertificateCheck:
    """What the log backs about an artifact's reproducibility certificate."""

    required: bool
    present: bool = False
    valid: bool = False
    #: ``{kind, key, sha256}`` of the certificate the log names (None when none)
    statement: dict[str, str] | None = None
    content_digest: str | None = None
    issued_at: str | None = None
    index: int | None = None
    #: why it is absent or not valid (empty when valid)
    reason: str = ""

    def to_input(self) -> dict[str, Any]:
        """The ``request.certificate`` form of the Rego input."""
        return {
            "required": self.required,
            "present": self.present,
            "valid": self.valid,
            "statement": self.statement,
            "content_digest": self.content_digest,
            "issued_at": self.issued_at,
            "log_index": self.index,
            "reason": self.reason,
        }


def required_for(vault: Vault, target: str) -> bool:
    """Whether a promotion into ``target`` needs a certificate (``[policy]`` settings)."""
    return target in vault.settings.certificate_tiers


def _ingested_digest(vault: Vault, artifact_id: str) -> str | None:
    """The content digest the log recorded when the artifact was stored."""
    for logged in vault.history(artifact_id, {INGESTED}):
        digest = logged.event.details.get("content_digest")
        if isinstance(digest, str) and not logged.event.details.get("duplicate_of"):
            return digest
    return None


def _latest(vault: Vault, artifact_id: str) -> LoggedEvent | None:
    named = [e for e in vault.history(artifact_id, {KIND}) if "statement" in e.event.details]
    return named[-1] if named else None


def _problem(predicate: dict[str, Any], artifact_id: str, manifest: Manifest) -> str | None:
    """What in a trusted certificate does not match the artifact, if anything."""
    outputs = predicate.get("outputs")
    if predicate.get("artifact_id") != artifact_id or not isinstance(outputs, dict):
        return f"it certifies {predicate.get('artifact_id')!r}, not {artifact_id}"
    if outputs.get("content_digest") != manifest.content_digest:
        return (
            f"it certifies content {outputs.get('content_digest')}, "
            f"not the artifact's {manifest.content_digest}"
        )
    files = outputs.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        return "it lists no file digests"
    certified = {(f.get("path"), f.get("sha256"), f.get("size")) for f in files}
    stored = {(f.path, f.sha256, f.size) for f in manifest.model_files}
    if certified != stored or len(files) != len(stored):
        differ = sorted(str(p) for p, *_ in certified ^ stored)
        return "its file digests are not the manifest's (" + ", ".join(differ) + ")"
    return None


def check_certificate(
    vault: Vault, artifact_id: str, manifest: Manifest, *, required: bool
) -> CertificateCheck:
    """The artifact's certificate as the signed log backs it; never raises on a bad one.

    ``manifest`` is the authenticated manifest (``Vault.load_manifest``). A
    certificate the log names but that fails a check is ``present`` and not
    ``valid``, with the reason; a catalog index the log contradicts is named too.
    """
    try:
        logged = _latest(vault, artifact_id)
        ingested = _ingested_digest(vault, artifact_id)
    except IntegrityError as exc:
        return CertificateCheck(required, reason=f"the log cannot be read: {exc.message}")
    if logged is None:
        return CertificateCheck(
            required,
            reason=f"the log records no certificate (run `weightvault recover {artifact_id}`)",
        )
    base = CertificateCheck(
        required,
        present=True,
        statement=_ref(logged),
        issued_at=logged.event.ts,
        index=logged.index,
    )
    problem = _verify(vault, logged, ingested, artifact_id, manifest)
    if problem is not None:
        return _invalid(base, problem)
    return CertificateCheck(
        required,
        present=True,
        valid=True,
        statement=base.statement,
        content_digest=manifest.content_digest,
        issued_at=logged.event.ts,
        index=logged.index,
    )


def _verify(
    vault: Vault, logged: LoggedEvent, ingested: str | None, artifact_id: str, manifest: Manifest
) -> str | None:
    """Why the certificate ``logged`` names does not hold for the artifact, if it does not."""
    if ingested != manifest.content_digest:
        return f"the log recorded content {ingested} at ingest, not the manifest's"
    try:
        trusted = trusted_statement(
            vault,
            logged,
            kind=CERTIFICATE_KIND,
            what=f"certificate of {artifact_id}",
            subject_sha256=ingested,
        )
    except StatementError as exc:
        return exc.message
    if trusted.statement.get("predicateType") != predicate_type(CERTIFICATE_KIND):
        return "it is not a reproducibility statement"
    problem = _problem(trusted.predicate, artifact_id, manifest)
    if problem is not None:
        return f"certificate at log entry {logged.index}: {problem}"
    return None


def _ref(logged: LoggedEvent) -> dict[str, str] | None:
    doc = logged.event.details.get("statement")
    if not isinstance(doc, dict):
        return None
    return {k: str(doc.get(k, "")) for k in ("kind", "key", "sha256")}


def _invalid(base: CertificateCheck, reason: str) -> CertificateCheck:
    return CertificateCheck(
        base.required,
        present=True,
        statement=base.statement,
        issued_at=base.issued_at,
        index=base.index,
        reason=reason,
    )
