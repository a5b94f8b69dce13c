"""Compromise response: re-encrypt artifacts under a fresh DEK, rewrap the rest.

When a KEK version is compromised (:func:`weightvault.lifecycle.compromise.compromise_key`)
the artifacts it protects are split in two:

* those whose DEK may have been exposed are **re-encrypted**
  (:func:`reencrypt_artifact`): every file is decrypted with the old DEK to
  a private temporary directory, checked against its sha256, and encrypted
  under a fresh DEK to *new* object keys; a new manifest (MAC under the new
  DEK) and a re-signed statement are prepared; then the switch is made;
* the others are **rewrapped** (:func:`rewrap_compromised`): their envelope
  moves to the tier's fresh KEK version, ciphertext untouched.

Crash safety of a re-encryption. Nothing the artifact relies on is changed
until a *journal* object ``envelopes/<id>/rekey-<tier>.json`` is written: it
holds the new wrapped DEK (never a plaintext key), the new manifest and the
new statement. Writing the journal is the commit point; after it,
:func:`roll_forward` (idempotent) writes manifest, statement and envelope,
updates the catalog, escrows cold artifacts again, removes the old
ciphertext objects and finally the journal. A crash before the journal
leaves only unreferenced new objects, which the next attempt removes
(:func:`sweep_unreferenced`) before starting over; a crash after it is
rolled forward by the next attempt. The old data is deleted only after the
new manifest, statement and envelope are all in place. The artifact is
claimed in the catalog for the duration, so a promotion cannot move it
meanwhile. Between the manifest write and the envelope write (a few
milliseconds) a concurrent read fails closed with an integrity error.

On cold storage (object lock) the old ciphertext objects cannot be deleted
before their retention ends: they are left unreferenced, and their old
envelope is gone, so the old DEK protects nothing reachable.

The response is one orchestration. :func:`respond` (the CLI's ``keys
compromise --rekey``) runs these steps in a row; the ``rekey`` flow runs each
as a Prefect task, adding only retries, a progress artifact and a report:

1. :func:`resume_journals` rolls forward re-encryptions left half-way;
2. :func:`~weightvault.lifecycle.compromise.compromise_key` marks the version
   (once) and lists what it protects; :func:`plan_rekey` splits that list
   into artifacts to re-encrypt and batches to rewrap;
3. :func:`reencrypt` re-encrypts one artifact (a concurrent move makes it
   :class:`Busy`, left for the next run);
4. :func:`rewrap_compromised` rewraps one batch to the tier's fresh version;
5. :func:`remaining_on` counts the envelopes still on the version;
   :func:`rekey_report` sums it up and :func:`require_complete` raises
   :class:`~weightvault.errors.IncompleteError` while any remain, so the CLI
   and the flow both fail until a run leaves nothing on the key.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault.artifacts import Vault, file_row
from weightvault.crypto import chunked, dsse
from weightvault.crypto.binding import file_context, manifest_mac
from weightvault.errors import (
    ConflictError,
    IncompleteError,
    IntegrityError,
    InvalidInputError,
    KeyStateError,
    NotFoundError,
    RetentionError,
)
from weightvault.keys import KeyState, WrappedKey
from weightvault.lifecycle.compromise import CompromiseReport, compromise_key, resolve_key
from weightvault.lifecycle.escrow import escrow_envelope, has_escrow_key
from weightvault.lifecycle.rotation import (
    DEFAULT_BATCH,
    DEFAULT_WORKERS,
    EnvelopeRef,
    RewrapStats,
    TierRotation,
    batches,
    kek_id,
    rewrap_batch,
    rotating_keys,
)
from weightvault.logs import get_logger
from weightvault.provenance import parse_statement, signing_key, trust_root, trusted_keys
from weightvault.records import FileEntry, Manifest
from weightvault.store.layout import (
    ENVELOPES_PREFIX,
    envelope_key,
    files_prefix,
    manifest_key,
    parse_envelope_key,
    rekey_journal_key,
    statement_key,
)

log = get_logger("weightvault.lifecycle.rekey")

JOURNAL_TYPE = "weightvault.rekey-journal/v1"
CLAIM = "rekey"


@dataclass(frozen=True)
class ReencryptResult:
    """One re-encrypted artifact (no key material)."""

    artifact_id: str
    tier: str
    files: int
    bytes: int
    kek: str
    resumed: bool
    old_objects_removed: int
    old_objects_retained: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dict(self.__dict__)


def _claim(vault: Vault, artifact_id: str, tier: str) -> None:
    placement = vault.catalog.placement(artifact_id)
    if placement.get("pending") == CLAIM:
        return  # an interrupted re-encryption of ours: resume it
    vault.catalog.claim(artifact_id, tier, CLAIM)


def sweep_unreferenced(vault: Vault, artifact_id: str, tier: str, manifest: Manifest) -> int:
    """Remove file objects of the artifact that its manifest does not name.

    They are what a re-encryption interrupted before its journal left
    behind. Objects under retention are left alone. Returns how many went.
    """
    keep = {f.object_key for f in manifest.files}
    removed = 0
    bucket = vault.bucket(tier)
    for obj in list(vault.store.list(bucket, files_prefix(artifact_id))):
        if obj.key in keep:
            continue
        with contextlib.suppress(NotFoundError, RetentionError):
            vault.store.remove(bucket, obj.key)
            removed += 1
    return removed


def resign_statement(vault: Vault, tier: str, old: Manifest, new: Manifest) -> tuple[bytes, str]:
    """The artifact's statement with the new file list, signed with the active key.

    The old statement is verified first (signature against the trust root,
    subject and files against the old manifest): only a genuine statement is
    carried over; its subject digest and provenance are kept unchanged.
    """
    data = vault.store.get_bytes(vault.bucket(tier), statement_key(old.artifact_id))
    vault.verify_statement(old.artifact_id, tier, old)
    envelope = parse_canonical(data, "statement envelope")
    payload = dsse.verify_envelope(envelope, trusted_keys(trust_root(vault.keys)))
    statement = parse_statement(payload)
    try:
        artifact = statement["predicate"]["buildDefinition"]["externalParameters"]["artifact"]
    except (KeyError, TypeError):
        raise IntegrityError(f"statement of artifact {old.artifact_id} has no artifact") from None
    artifact["manifest"] = {
        "artifact_id": new.artifact_id,
        "files": [f.to_dict() for f in new.files],
    }
    key = signing_key(vault.keys)
    signed = dsse.sign_envelope(canonical_json(statement), dsse.IN_TOTO_PAYLOAD_TYPE, key)
    return canonical_json(signed), f"{key.key_id}@v{key.version}"


def _encrypt_files(
    vault: Vault,
    artifact_id: str,
    tier: str,
    manifest: Manifest,
    old_dek: bytes,
    new_dek: bytes,
    generation: str,
) -> list[FileEntry]:
    row = vault.resolve(artifact_id)
    bucket = vault.bucket(tier)
    entries = []
    with tempfile.TemporaryDirectory(prefix="wv-rekey-") as tmp:
        for idx, entry in enumerate(manifest.files):
            plain = Path(tmp) / f"{idx:06d}"
            try:
                with plain.open("wb") as fh:
                    vault.decrypt_file(row, entry, old_dek, fh)
                key = f"{files_prefix(artifact_id)}{generation}-{idx:06d}.c2sp"
                length = chunked.ciphertext_size(entry.size)
                with plain.open("rb") as fh:
                    reader = chunked.EncryptingReader(
                        fh, new_dek, file_context(artifact_id, entry.path)
                    )
                    vault.store.put_stream(
                        bucket, key, reader, length, retain_until=vault.retain_until(tier)
                    )
                if reader.plaintext_len != entry.size or reader.hexdigest != entry.sha256:
                    raise IntegrityError(
                        f"artifact {artifact_id} file {entry.path} changed while re-encrypting"
                    )
            finally:
                plain.unlink(missing_ok=True)
            entries.append(replace(entry, ciphertext_size=length, object_key=key))
    return entries


def _logged(vault: Vault, artifact_id: str, run: Callable[[], ReencryptResult]) -> ReencryptResult:
    """Run one re-encryption as the logged ``artifact.rekeyed`` operation."""
    with vault.artifact_operation("artifact.rekeyed", artifact_id) as op:
        result = run()
        op.uses(result.kek)
        op.details.update(
            tier=result.tier,
            kek=result.kek,
            files=result.files,
            resumed=result.resumed,
            state=vault.object_state(result.artifact_id, result.tier),
        )
    # Only once the log records the new state: a crash before this leaves the journal,
    # and the next run rolls forward and records the state again.
    with contextlib.suppress(NotFoundError):
        vault.store.remove(
            vault.bucket("envelopes"), rekey_journal_key(result.artifact_id, result.tier)
        )
    return result


def reencrypt_artifact(vault: Vault, artifact_id: str) -> ReencryptResult:
    """Re-encrypt one artifact under a fresh DEK and the tier's active KEK.

    Resumable: an existing journal is rolled forward; objects of an attempt
    that died before its journal are swept first. See the module docstring.
    The intent is in the audit log before anything is written.
    """
    return _logged(vault, artifact_id, lambda: _reencrypt_artifact(vault, artifact_id))


def _reencrypt_artifact(vault: Vault, artifact_id: str) -> ReencryptResult:
    row = vault.resolve(artifact_id)
    tier = row.tier
    journal = _load_journal(vault, row.id, tier)
    if journal is not None:
        return roll_forward(vault, journal, resumed=True)
    _claim(vault, row.id, tier)
    manifest, old_dek = vault.load_manifest(row.id, tier)
    try:
        sweep_unreferenced(vault, row.id, tier, manifest)
        keys = rotating_keys(vault)
        new_dek = secrets.token_bytes(32)
        try:
            wrapped = keys.wrap_dek(tier, row.id, new_dek)
            entries = _encrypt_files(
                vault, row.id, tier, manifest, old_dek, new_dek, secrets.token_hex(4)
            )
            new_manifest = replace(manifest, files=tuple(entries))
            body = new_manifest.to_bytes(manifest_mac(new_dek, new_manifest.body_bytes()))
        finally:
            del new_dek
    finally:
        del old_dek
    statement, signed_by = resign_statement(vault, tier, manifest, new_manifest)
    doc = {
        "type": JOURNAL_TYPE,
        "artifact_id": row.id,
        "tier": tier,
        "envelope": wrapped.to_dict(),
        "manifest": base64.b64encode(body).decode(),
        "statement": base64.b64encode(statement).decode(),
        "signed_by": signed_by,
        "old_objects": [f.object_key for f in manifest.files],
    }
    # The commit point: from here on the new version is rolled forward.
    vault.store.put_bytes(
        vault.bucket("envelopes"), rekey_journal_key(row.id, tier), canonical_json(doc)
    )
    return roll_forward(vault, doc, resumed=False)


def _load_journal(vault: Vault, artifact_id: str, tier: str) -> dict[str, Any] | None:
    try:
        data = vault.store.get_bytes(
            vault.bucket("envelopes"), rekey_journal_key(artifact_id, tier)
        )
    except NotFoundError:
        return None
    doc = parse_canonical(data, "re-encryption journal")
    if doc.get("type") != JOURNAL_TYPE or doc.get("artifact_id") != artifact_id:
        raise IntegrityError(f"re-encryption journal of artifact {artifact_id} is malformed")
    return doc


def roll_forward(vault: Vault, doc: dict[str, Any], *, resumed: bool) -> ReencryptResult:
    """Apply a re-encryption journal; idempotent, safe to run again after a crash."""
    artifact_id, tier = str(doc["artifact_id"]), str(doc["tier"])
    try:
        wrapped = WrappedKey.from_dict(doc["envelope"])
        body = base64.b64decode(doc["manifest"], validate=True)
        statement = base64.b64decode(doc["statement"], validate=True)
    except (KeyError, ValueError):
        raise IntegrityError(f"re-encryption journal of {artifact_id} is malformed") from None
    if wrapped.artifact_id != artifact_id or wrapped.tier != tier:
        raise IntegrityError(f"re-encryption journal of {artifact_id} names another artifact")
    manifest, _mac = Manifest.parse(body)
    bucket = vault.bucket(tier)
    retain = vault.retain_until(tier)
    vault.store.put_bytes(bucket, manifest_key(artifact_id), body, retain_until=retain)
    vault.store.put_bytes(bucket, statement_key(artifact_id), statement, retain_until=retain)
    vault.put_envelope(artifact_id, tier, envelope_key(artifact_id, tier), wrapped.to_dict())
    with vault.catalog.transaction() as conn:
        vault.catalog.replace_files(
            conn,
            artifact_id,
            [file_row(artifact_id, i, f) for i, f in enumerate(manifest.files)],
            hashlib.sha256(body).hexdigest(),
            signed_by=str(doc.get("signed_by") or "") or None,
        )
        vault.catalog.update_envelope_versions(
            conn,
            [
                {
                    "artifact_id": artifact_id,
                    "tier": tier,
                    "kek_id": wrapped.kek_id,
                    "kek_version": wrapped.kek_version,
                }
            ],
        )
    if tier == "cold" and has_escrow_key(vault.keys):
        escrow_envelope(vault, artifact_id)
    keep = {f.object_key for f in manifest.files}
    removed = retained = 0
    for key in doc.get("old_objects", []):
        if key in keep:
            continue
        try:
            vault.store.remove(bucket, str(key))
            removed += 1
        except NotFoundError:
            continue
        except RetentionError:
            retained += 1
    placement = vault.catalog.placement(artifact_id)
    if placement.get("pending") == CLAIM:
        vault.catalog.release(artifact_id)
    kek = f"{wrapped.kek_id}@v{wrapped.kek_version}"
    return ReencryptResult(
        artifact_id,
        tier,
        len(manifest.files),
        manifest.total_size,
        kek,
        resumed,
        removed,
        retained,
    )


def pending_journals(vault: Vault) -> list[tuple[str, str]]:
    """(artifact id, tier) of every re-encryption left half-way (a journal exists)."""
    out = []
    for obj in vault.store.list(vault.bucket("envelopes"), ENVELOPES_PREFIX):
        found = parse_envelope_key(obj.key)
        if found is not None and found.kind == "rekey-journal" and found.tier:
            out.append((found.artifact_id, found.tier))
    return out


def resume_journals(vault: Vault) -> tuple[ReencryptResult, ...]:
    """Roll forward every re-encryption whose journal was written but not finished."""
    results = []
    for artifact_id, tier in pending_journals(vault):
        doc = _load_journal(vault, artifact_id, tier)
        if doc is not None:
            resume = functools.partial(roll_forward, vault, doc, resumed=True)
            results.append(_logged(vault, artifact_id, resume))
    return tuple(results)


@dataclass(frozen=True)
class Busy:
    """An artifact another operation holds (a promotion): left for the next run."""

    artifact_id: str
    reason: str


def reencrypt(vault: Vault, artifact_id: str) -> ReencryptResult | Busy:
    """Step 3: re-encrypt one artifact (:func:`reencrypt_artifact`, resumable).

    An artifact claimed by a concurrent operation is returned as
    :class:`Busy`; it stays on the compromised version, so the run ends
    incomplete (:func:`require_complete`) and the next run picks it up.
    """
    try:
        return reencrypt_artifact(vault, artifact_id)
    except ConflictError as exc:
        log.info("rekey.busy", artifact_id=artifact_id, error=exc.message)
        return Busy(artifact_id, exc.message)


@dataclass(frozen=True)
class RekeyPlan:
    """Step 2's split of what a compromised version protects (ids only)."""

    key: str
    reencrypt: tuple[str, ...]
    rewrap_batches: tuple[tuple[str, ...], ...]


def plan_rekey(report: CompromiseReport, batch_size: int = DEFAULT_BATCH) -> RekeyPlan:
    """Artifacts to re-encrypt, and the others in rewrap batches (KEK versions only)."""
    heavy = tuple(p.artifact_id for p in report.protected if p.action == "re-encrypt")
    light = [p.artifact_id for p in report.protected if p.action == "rewrap"]
    chunks = batches(light, batch_size) if report.purpose == "kek" else []
    return RekeyPlan(report.key, heavy, tuple(tuple(c) for c in chunks))


def rewrap_compromised(
    vault: Vault,
    key: str,
    artifact_ids: Sequence[str],
    *,
    workers: int = DEFAULT_WORKERS,
    pool: ThreadPoolExecutor | None = None,
) -> RewrapStats:
    """Step 4: rewrap one batch off the compromised KEK version ``key`` (``KEY_ID@vN``).

    The envelopes move to the tier's active version in one catalog
    transaction; an envelope already moved counts as ``already`` (retry-safe).
    """
    rec = resolve_key(vault, key)
    if rec.purpose != "kek" or rec.tier is None:
        raise InvalidInputError(f"key {rec.ref} is not a tier KEK: nothing to rewrap")
    if rec.state != KeyState.COMPROMISED:
        raise KeyStateError(f"key {rec.ref} is {rec.state}, not compromised")
    active = rotating_keys(vault).active_kek(rec.tier)
    rot = TierRotation(rec.tier, kek_id(rec.tier), active.version, (rec.version,), False)
    refs = [EnvelopeRef(a, rec.tier) for a in artifact_ids]
    return rewrap_batch(vault, rot, refs, workers=workers, pool=pool)


def remaining_on(vault: Vault, ref: str) -> int:
    """Step 5: envelopes still on a KEK version (0 once the response is complete).

    Other keys (signing) wrap no envelope the response moves: 0.
    """
    rec = resolve_key(vault, ref)
    if rec.purpose != "kek":
        return 0
    return len(vault.catalog.envelopes_on(rec.key_id, rec.version))


Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RekeyReport:
    """The outcome of a compromise response (no key material); the CLI and the flow return it."""

    compromise: CompromiseReport
    resumed: tuple[ReencryptResult, ...] = ()
    reencrypted: tuple[ReencryptResult, ...] = ()
    busy: tuple[Busy, ...] = ()
    rewrap: RewrapStats = field(default_factory=RewrapStats)
    remaining: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            **self.compromise.to_dict(),
            "resumed": [r.to_dict() for r in self.resumed],
            "reencrypted": [r.to_dict() for r in self.reencrypted],
            "busy": [b.artifact_id for b in self.busy],
            "rewrapped": self.rewrap.to_dict(),
            "remaining": self.remaining,
            "duration_s": round(self.duration_s, 3),
        }


def rekey_report(
    compromise: CompromiseReport,
    resumed: Iterable[ReencryptResult],
    outcomes: Iterable[ReencryptResult | Busy],
    rewraps: Iterable[RewrapStats],
    remaining: int,
    duration_s: float,
) -> RekeyReport:
    """Sum the steps' results up."""
    done = list(outcomes)
    return RekeyReport(
        compromise,
        tuple(resumed),
        tuple(o for o in done if isinstance(o, ReencryptResult)),
        tuple(o for o in done if isinstance(o, Busy)),
        RewrapStats.sum(rewraps),
        remaining,
        duration_s,
    )


def require_complete(report: RekeyReport) -> RekeyReport:
    """The report, or IncompleteError while envelopes remain on the compromised key."""
    if report.remaining:
        busy = f" ({len(report.busy)} artifact(s) busy)" if report.busy else ""
        raise IncompleteError(
            f"{report.remaining} envelope(s) are still on {report.compromise.key}{busy}: "
            "run the response again"
        )
    return report


def respond(
    vault: Vault,
    ref: str,
    *,
    since: datetime | None = None,
    exposed: Iterable[str] = (),
    all_exposed: bool = False,
    batch_size: int = DEFAULT_BATCH,
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
) -> RekeyReport:
    """Compromise a key version (if not yet) and remediate everything it protects.

    Steps 1-5 in a row: rolls forward any re-encryption left half-way,
    re-encrypts the artifacts whose DEK may have been exposed, rewraps the
    others. Raises IncompleteError (as the rekey flow does) while anything
    is left on the key; running it again after a crash converges.
    """
    started = time.perf_counter()
    resumed = resume_journals(vault)
    report = compromise_key(
        vault, ref, since=since, exposed=tuple(exposed), all_exposed=all_exposed
    )
    plan = plan_rekey(report, batch_size)
    outcomes: list[ReencryptResult | Busy] = []
    for done, artifact_id in enumerate(plan.reencrypt, start=1):
        outcomes.append(reencrypt(vault, artifact_id))
        if progress is not None:
            progress(done, len(plan.reencrypt), artifact_id)
    rewraps = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for chunk in plan.rewrap_batches:
            rewraps.append(rewrap_compromised(vault, plan.key, chunk, pool=pool))
    remaining = remaining_on(vault, plan.key)
    return require_complete(
        rekey_report(report, resumed, outcomes, rewraps, remaining, time.perf_counter() - started)
    )


def render_report(summary: dict[str, Any]) -> str:
    """Markdown summary of a compromise response (:meth:`RekeyReport.to_dict`)."""
    lines = [
        f"# Compromise response for `{summary['key']}`",
        "",
        f"Took {summary['duration_s']:.2f} s. New wraps go to `{summary['replacement']}`.",
        "",
        "| | count |",
        "|---|---|",
        f"| artifacts protected | {len(summary['protected'])} |",
        f"| re-encrypted under a fresh DEK | {len(summary['reencrypted'])} |",
        f"| rewrapped under a fresh KEK version | {summary['rewrapped']['rewrapped']} |",
        f"| resumed from an interrupted run | {len(summary['resumed'])} |",
        f"| busy (retry later) | {len(summary['busy'])} |",
        f"| envelopes still on the key | {summary['remaining']} |",
        "",
        "## Artifacts",
        "",
        "| artifact | tier | action | why |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{p['artifact_id']}` | {p['tier']} | {p['action']} | {p['why']} |"
        for p in summary["protected"]
    ]
    return "\n".join(lines)
