"""Ingest (put): the one orchestration of storing an artifact.

The CLI runs these steps in a row (:func:`put`); the ingest flow runs each as
a Prefect task, adding only retries, a report and events:

1. :func:`plan` lists the source files, assigns an artifact id and records the
   put's intent in the audit log (nothing is stored if it cannot);
2. :func:`screen` decides each model file's format by its content (prefixes and
   headers only: ``gates.scan_file``; a pickle is never loaded);
3. :func:`write_envelope` draws and wraps the DEK (the DEK never leaves the process);
4. :func:`upload` hashes, encrypts and uploads one file in one pass;
5. :func:`seal` signs the in-toto statement (a duplicate returns the original)
   and checks no scanned file changed since it was screened;
6. :func:`commit` writes the manifest (the commit point), the outcome and the
   catalog rows, then escrows a cold artifact's DEK. If the screen found unsafe
   content, the quarantine is recorded (log entry, signed statement, marker)
   *before* the manifest is written and the catalog indexes the artifact
   straight into quarantine: it is never readable (``get``/``verify`` exit 13).

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
from typing import Any

from weightvault._fs import source_read_error
from weightvault.artifacts import PutPlan, PutResult, Sealed, SourceFile, TransferProgress, Vault
from weightvault.errors import (
    AuditError,
    IncompleteError,
    InvalidInputError,
    VaultError,
)
from weightvault.gates import ScanResult, loader_hazard, scan_file
from weightvault.lifecycle.escrow import escrow_on_publish, has_escrow_key
from weightvault.lifecycle.kit import build_kit, check_no_kit_paths
from weightvault.lifecycle.quarantine import QUARANTINED, QuarantinePlan, write_marker
from weightvault.lifecycle.quarantine import sign as sign_quarantine
from weightvault.provenance import Provenance
from weightvault.records import REBUILD_KIT, FileEntry

__all__ = [
    "KekRef",
    "Screened",
    "Screening",
    "carry_kit",
    "commit",
    "discard",
    "drop_kit",
    "plan",
    "put",
    "rebuild_kit",
    "screen",
    "seal",
    "upload",
    "write_envelope",
]

#: how many reasons per unsafe file the put's outcome and output carry
_REASONS_SHOWN = 3


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


@dataclass(frozen=True)
class Screened:
    """One model file's scan verdict, and the stat it was taken at."""

    path: str
    format: str
    #: "clean", "unsafe" (validation fails it) or "hazard" (quarantined at once)
    verdict: str
    reasons: tuple[str, ...]
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Screening:
    """The put's format scan of its model files (plain data: a flow hands it on)."""

    files: tuple[Screened, ...]

    @property
    def unsafe(self) -> tuple[Screened, ...]:
        """The files that must never be readable: loading them can run code
        (``gates.loader_hazard``)."""
        return tuple(f for f in self.files if f.verdict == "hazard")

    def reason(self) -> str:
        """One line naming each unsafe file and its detected type ('' when clean)."""
        return "; ".join(
            f"{f.path} is {f.format}: {', '.join(f.reasons[:_REASONS_SHOWN])}" for f in self.unsafe
        )

    def summary(self) -> dict[str, Any]:
        """What the put's outcome records of the scan (unsafe files only, bounded)."""
        return {
            "scanned": len(self.files),
            "unsafe": [
                {"path": f.path, "format": f.format, "reasons": list(f.reasons[:_REASONS_SHOWN])}
                for f in self.unsafe
            ],
        }


def screen(vault: Vault, put_plan: PutPlan) -> Screening:
    """Scan every model file of the plan by content, before anything is uploaded.

    Only prefixes and headers are read (pickle-like content is walked by
    picklescan, never loaded). A file whose loading can run code is a hazard
    and quarantines the artifact at its commit; unrecognised binary content is
    stored as before and failed (and quarantined) by ``validate``, which scans
    the stored plaintext again. Rebuild kit files are the vault's own and are
    not screened.
    """
    del vault
    found = []
    for src in put_plan.files:
        if src.role is not None:
            continue
        try:
            info = src.source.lstat()
            result: ScanResult = scan_file(src.source, name=src.path)
        except OSError as exc:  # gone or unreadable since the plan: a source read error
            raise source_read_error(exc, src.source) from None
        found.append(
            Screened(
                src.path,
                result.format.value,
                "hazard" if loader_hazard(result) else result.verdict,
                result.reasons,
                info.st_size,
                info.st_mtime_ns,
            )
        )
    return Screening(tuple(found))


def _check_unchanged(put_plan: PutPlan, screening: Screening) -> None:
    """Refuse if a screened file was replaced or edited while the put ran."""
    sources = {src.path: src.source for src in put_plan.files}
    for f in screening.files:
        try:
            info = sources[f.path].lstat()
        except (KeyError, OSError):
            raise InvalidInputError(f"{f.path} disappeared while it was being stored") from None
        if (info.st_size, info.st_mtime_ns) != (f.size, f.mtime_ns):
            raise InvalidInputError(f"{f.path} changed after it was scanned; put it again")


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
    screening: Screening | None = None,
) -> Sealed | PutResult:
    """Sign the statement; a duplicate of stored content returns the original artifact.

    ``screening`` (:func:`screen`) is checked against the files as they are now
    and carried to :func:`commit` in the sealed details.
    """
    if screening is not None:
        _check_unchanged(put_plan, screening)
    sealed = vault.seal(put_plan, entries, provenance=provenance)
    if screening is None or isinstance(sealed, PutResult):
        return sealed
    details = {**sealed.details, "scan": screening.summary()}
    if screening.unsafe:
        details["unsafe"] = screening.reason()
    return replace(sealed, details=details)


def commit(vault: Vault, sealed: Sealed | PutResult) -> PutResult:
    """Write the manifest (the commit point), the event and the catalog rows; escrow cold.

    Unsafe content (the sealed details name it) is quarantined in the same commit:
    :func:`_commit_quarantined`.
    """
    if isinstance(sealed, PutResult):
        return sealed
    unsafe = sealed.details.get("unsafe")
    if unsafe:
        return _commit_quarantined(vault, sealed, f"unsafe content at ingest: {unsafe}")
    result = vault.publish(sealed)
    if result.artifact.tier == "cold" and has_escrow_key(vault.keys):
        escrow_on_publish(vault, result.artifact_id)
    return result


def _commit_quarantined(vault: Vault, sealed: Sealed, reason: str) -> PutResult:
    """Commit an artifact the screen found unsafe as quarantined, with no readable moment.

    The quarantine is one logged operation (the existing machinery: a signed
    ``quarantine`` statement and the store's marker) whose intent, statement and
    marker come before the manifest, the commit point; the catalog then indexes
    the artifact into quarantine. A crash after the manifest leaves the marker,
    which keeps reads refused and ``catalog rebuild`` quarantined (fail closed).
    Release and break-glass work on it as on any quarantined artifact.
    """
    manifest = sealed.manifest
    p = QuarantinePlan(
        manifest.artifact_id, manifest.tier, reason, manifest.name, manifest.content_digest
    )
    details = {"tier": "quarantine", "reason": reason, "origin": p.origin, "at_ingest": True}
    with vault.operation(QUARANTINED, p.artifact_id, p.origin, details) as op:
        sign_quarantine(vault, op, p)
        write_marker(vault, p)
        return vault.publish(sealed, quarantined=reason)


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
        screening = screen(vault, put_plan)
        write_envelope(vault, put_plan)
        if len(put_plan.files) == 1 or workers <= 1:
            entries = [upload(vault, put_plan, f, progress) for f in put_plan.files]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                entries = list(
                    pool.map(lambda f: upload(vault, put_plan, f, progress), put_plan.files)
                )
        sealed = seal(vault, put_plan, entries, provenance, screening)
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
