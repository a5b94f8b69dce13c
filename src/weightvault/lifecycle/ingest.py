"""Ingest (put): the one orchestration of storing an artifact.

The CLI runs these steps in a row (:func:`put`); the ingest flow runs each as
a Prefect task, adding only retries, a report and events:

1. :func:`plan` lists the source files, assigns an artifact id and records the
   put's intent in the audit log (nothing is stored if it cannot);
2. :func:`write_envelope` draws and wraps the DEK (the DEK never leaves the process);
3. :func:`upload` hashes, encrypts and uploads one file in one pass;
4. :func:`seal` signs the in-toto statement (a duplicate returns the original);
5. :func:`commit` writes the manifest (the commit point), the outcome and the
   catalog rows, then escrows a cold artifact's DEK.

Any failure before step 5 is undone by :func:`discard`, which records the
failed outcome; a crash leaves only orphans that ``gc`` removes (and an intent
without an outcome in the log).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from weightvault.artifacts import PutPlan, PutResult, Sealed, SourceFile, TransferProgress, Vault
from weightvault.errors import AuditError, IncompleteError, VaultError
from weightvault.lifecycle.escrow import escrow_on_publish, has_escrow_key
from weightvault.provenance import Provenance
from weightvault.records import FileEntry

__all__ = [
    "KekRef",
    "commit",
    "discard",
    "plan",
    "put",
    "seal",
    "upload",
    "write_envelope",
]


@dataclass(frozen=True)
class KekRef:
    """Which tier key wrapped a new artifact's DEK (no key material)."""

    kek_id: str
    kek_version: int


def plan(
    vault: Vault, source: Path, name: str, tier: str = "hot", labels: dict[str, str] | None = None
) -> PutPlan:
    """List what a put of ``source`` will store and record its intent, before anything is stored."""
    try:
        put_plan = vault.plan(source, name, tier, labels)
    except VaultError as exc:
        # Refused before anything was stored (bad input, no space): recorded all the same.
        with contextlib.suppress(AuditError):
            vault.finish(vault.begin("artifact.ingested", None, None, {"name": name[:200]}), exc)
        raise
    op = vault.begin(
        "artifact.ingested",
        put_plan.artifact_id,
        put_plan.tier,
        {
            "name": put_plan.name,
            "source": vault.private(str(source.absolute())),
            "files": len(put_plan.files),
            "bytes": put_plan.total_size,
        },
    )
    return replace(put_plan, op=op)


def write_envelope(vault: Vault, put_plan: PutPlan) -> KekRef:
    """Draw the DEK, wrap it for the plan's tier and store the envelope."""
    wrapped = vault.create_envelope(put_plan.artifact_id, put_plan.tier)
    return KekRef(wrapped.kek_id, wrapped.kek_version)


def upload(
    vault: Vault, put_plan: PutPlan, src: SourceFile, progress: TransferProgress | None = None
) -> FileEntry:
    """Hash, encrypt and upload one file; idempotent (a retry rewrites the same key)."""
    return vault.upload_file(put_plan.artifact_id, put_plan.tier, src, progress)


def seal(
    vault: Vault,
    put_plan: PutPlan,
    entries: list[FileEntry],
    provenance: Provenance | None = None,
) -> Sealed | PutResult:
    """Sign the statement; a duplicate of stored content returns the original artifact."""
    return vault.seal(put_plan, entries, provenance=provenance)


def commit(vault: Vault, sealed: Sealed | PutResult) -> PutResult:
    """Write the manifest (the commit point), the event and the catalog rows; escrow cold."""
    if isinstance(sealed, PutResult):
        return sealed
    result = vault.publish(sealed)
    if result.artifact.tier == "cold" and has_escrow_key(vault.keys):
        escrow_on_publish(vault, result.artifact_id)
    return result


def discard(vault: Vault, put_plan: PutPlan, error: BaseException | None = None) -> int:
    """Remove the objects of an uncommitted put and record it failed; returns how many."""
    removed = vault.discard(put_plan.artifact_id, put_plan.tier)
    if put_plan.op is not None and put_plan.op.outcome is None:
        put_plan.op.details["discarded"] = removed
        with contextlib.suppress(Exception):
            vault.finish(put_plan.op, error or IncompleteError("the put was discarded"))
    return removed


def put(
    vault: Vault,
    source: Path,
    name: str,
    tier: str = "hot",
    *,
    labels: dict[str, str] | None = None,
    provenance: Provenance | None = None,
    workers: int = 2,
    progress: TransferProgress | None = None,
) -> PutResult:
    """Ingest a file or directory: every step above, in a row."""
    put_plan = plan(vault, source, name, tier, labels)
    if progress is not None:
        progress.start(put_plan.total_size)
    try:
        write_envelope(vault, put_plan)
        if len(put_plan.files) == 1 or workers <= 1:
            entries = [upload(vault, put_plan, f, progress) for f in put_plan.files]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                entries = list(
                    pool.map(lambda f: upload(vault, put_plan, f, progress), put_plan.files)
                )
        sealed = seal(vault, put_plan, entries, provenance)
    except BaseException as exc:
        # Whatever stopped the put (an unreadable file, Ctrl-C, a bug), what it
        # stored so far goes; a failing cleanup never hides the first error.
        with contextlib.suppress(Exception):
            discard(vault, put_plan, exc)
        raise
    try:
        return commit(vault, sealed)
    except BaseException as exc:
        if put_plan.op is not None and put_plan.op.outcome is None:
            with contextlib.suppress(Exception):
                vault.finish(put_plan.op, exc)
        raise
