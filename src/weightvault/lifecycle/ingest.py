"""Ingest (put): the one orchestration of storing an artifact.

The CLI runs these steps in a row (:func:`put`); the ingest flow runs each as
a Prefect task, adding only retries, a report and events:

1. :func:`plan` lists the source files and assigns an artifact id;
2. :func:`write_envelope` draws and wraps the DEK (the DEK never leaves the process);
3. :func:`upload` hashes, encrypts and uploads one file in one pass;
4. :func:`seal` signs the in-toto statement (a duplicate returns the original);
5. :func:`commit` writes the manifest (the commit point), the event and the
   catalog rows, then escrows a cold artifact's DEK.

Any failure before step 5 is undone by :func:`discard`; a crash leaves only
orphans that ``gc`` removes.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from weightvault.artifacts import PutPlan, PutResult, Sealed, SourceFile, TransferProgress, Vault
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
    """List what a put of ``source`` will store, before anything is stored."""
    return vault.plan(source, name, tier, labels)


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


def discard(vault: Vault, put_plan: PutPlan) -> int:
    """Remove the objects of an uncommitted put; returns how many."""
    return vault.discard(put_plan.artifact_id, put_plan.tier)


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
    write_envelope(vault, put_plan)
    try:
        if len(put_plan.files) == 1 or workers <= 1:
            entries = [upload(vault, put_plan, f, progress) for f in put_plan.files]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                entries = list(
                    pool.map(lambda f: upload(vault, put_plan, f, progress), put_plan.files)
                )
        sealed = seal(vault, put_plan, entries, provenance)
    except BaseException:
        # Whatever stopped the put (an unreadable file, Ctrl-C, a bug), what it
        # stored so far goes; a failing cleanup never hides the first error.
        with contextlib.suppress(Exception):
            discard(vault, put_plan)
        raise
    return commit(vault, sealed)
