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
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from weightvault.artifacts import PutPlan, PutResult, Sealed, SourceFile, TransferProgress, Vault
from weightvault.errors import AuditError, IncompleteError, VaultError
from weightvault.lifecycle.escrow import escrow_on_publish, has_escrow_key
from weightvault.lifecycle.kit import build_kit, check_no_kit_paths
from weightvault.provenance import Provenance
from weightvault.records import REBUILD_KIT, FileEntry

__all__ = [
    "KekRef",
    "carry_kit",
    "commit",
    "discard",
    "drop_kit",
    "plan",
    "put",
    "rebuild_kit",
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


def rebuild_kit(
    vault: Vault, put_plan: PutPlan, repo: Path, provenance: Provenance, source: Path
) -> PutPlan:
    """Add the rebuild kit (``lifecycle.kit``) to the plan: its files join the upload.

    ``source`` is what the put stores; its place in ``repo`` is recorded. The
    kit's files are written to a private directory that :func:`drop_kit` removes.
    """
    del vault
    check_no_kit_paths([f.path for f in put_plan.files])
    _work, kit_files = build_kit(repo, provenance, source, source.is_file())
    start = len(put_plan.files)
    extra = tuple(
        SourceFile(start + i, rel, path, path.stat().st_size, REBUILD_KIT)
        for i, (rel, path) in enumerate(kit_files)
    )
    return replace(put_plan, files=put_plan.files + extra)


def carry_kit(put_plan: PutPlan, kit_files: Sequence[tuple[str, Path]]) -> PutPlan:
    """Add rebuild-kit files another vault stored (``(manifest path, plaintext)``) to the plan.

    The DR drill's copy carries the live artifact's kit this way; the files
    stay the caller's (:func:`drop_kit` is not for them).
    """
    check_no_kit_paths([f.path for f in put_plan.files])
    start = len(put_plan.files)
    extra = tuple(
        SourceFile(start + i, rel, path, path.stat().st_size, REBUILD_KIT)
        for i, (rel, path) in enumerate(kit_files)
    )
    return replace(put_plan, files=put_plan.files + extra)


def drop_kit(put_plan: PutPlan) -> None:
    """Remove the private directory the plan's rebuild kit files were written to."""
    for src in put_plan.files:
        if src.role == REBUILD_KIT:
            shutil.rmtree(src.source.parent, ignore_errors=True)
            return


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
    model_repo: Path | None = None,
    kit_files: Sequence[tuple[str, Path]] = (),
    workers: int = 2,
    progress: TransferProgress | None = None,
) -> PutResult:
    """Ingest a file or directory: every step above, in a row.

    With ``model_repo`` (and its captured ``provenance``) the rebuild kit is stored too;
    ``kit_files`` are the files of a kit made elsewhere (:func:`carry_kit`).
    """
    put_plan = plan(vault, source, name, tier, labels)
    built = False
    try:
        try:
            if kit_files:
                put_plan = carry_kit(put_plan, kit_files)
            elif model_repo is not None and provenance is not None and provenance.git_commit:
                put_plan = rebuild_kit(vault, put_plan, model_repo, provenance, source)
                built = True
        except BaseException as exc:
            with contextlib.suppress(Exception):
                discard(vault, put_plan, exc)
            raise
        return _put(vault, put_plan, provenance, workers, progress)
    finally:
        if built:
            drop_kit(put_plan)


def _put(
    vault: Vault,
    put_plan: PutPlan,
    provenance: Provenance | None,
    workers: int,
    progress: TransferProgress | None,
) -> PutResult:
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
