"""Rebuild the catalog from the store alone.

Manifests in the tier buckets give artifacts and files; envelope objects give
the KEK version of each envelope; the transparency log gives events, and the
latest placement event of an artifact gives the time its placement began.

Only the log is trusted for events: its checkpoint must carry the vault's
Ed25519 signature and ML-DSA-44 cosignature, every entry must match its leaf
hash, and the entries must hash to the signed root. An entry or tile edited in
the bucket fails the rebuild with IntegrityError naming the entries; the
``events/`` objects older vaults wrote are unsigned and ignored (counted).

The new catalog is built aside (every row collected first) and swapped in by
one transaction (:meth:`weightvault.catalog.Catalog.replace_all`): a failure
half-way leaves the old catalog whole. An object the rebuild cannot trust (a
manifest under another artifact's id or failing its MAC, a malformed event)
is reported and skipped, never fatal (the log is the exception: it is signed,
so damage to it is fatal). A committed artifact whose envelope is
gone but whose signed statement verifies is kept and reported damaged (a
retained cold artifact's keys may be restored from retained versions or
escrow), never silently dropped.

Evidence comes from the log too (``evidence`` in the result, each problem
named): an artifact's validation status is its latest logged validation, whose
signed report must verify (else ``untrusted``); it is quarantined when its
latest logged quarantine/release is a quarantine, whatever the markers say (a
missing marker is re-created from the log entry and reported); a marker the log
does not back still keeps reads refused and is reported; unsigned report
objects under ``validations/`` and statements no log entry names are reported
and never read.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault.artifacts import (
    REWRAP_KIND,
    LoggedEvent,
    LoggedState,
    Vault,
    artifact_row,
    file_row,
    trusted_statement,
)
from weightvault.catalog import IndexedArtifact
from weightvault.config import TIERS
from weightvault.crypto.binding import verify_manifest_mac
from weightvault.errors import (
    AuditError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    RollbackError,
    StatementError,
    VaultError,
)
from weightvault.keys import WrappedKey
from weightvault.lifecycle.quarantine import MARKER_TYPE, read_marker
from weightvault.logs import get_logger
from weightvault.records import Event, Manifest
from weightvault.store.layout import (
    EVENTS_PREFIX,
    STATEMENTS_PREFIX,
    VALIDATIONS_PREFIX,
    envelope_key,
    escrow_envelope_key,
    manifest_key,
    quarantine_marker_key,
    statement_key,
)

__all__ = ["PLACEMENT_EVENTS", "legal_hold", "rebuild_catalog"]

log = get_logger("weightvault.lifecycle.rebuild")

PLACEMENT_EVENTS = frozenset(
    {"artifact.ingested", "artifact.promoted", "artifact.quarantined", "artifact.released"}
)


@dataclass
class _Report:
    untrusted: list[dict[str, str]]
    damaged: list[dict[str, str]]
    evidence: list[dict[str, str | None]]

    def skip(self, bucket: str, key: str, reason: str) -> None:
        log.warning("rebuild.untrusted", object=f"{bucket}/{key}", reason=reason)
        self.untrusted.append({"object": f"{bucket}/{key}", "reason": reason})

    def problem(self, artifact_id: str | None, problem: str) -> None:
        log.warning("rebuild.evidence", artifact_id=artifact_id, problem=problem)
        self.evidence.append({"artifact_id": artifact_id, "problem": problem})


@dataclass
class _Logged:
    """What the log says of each artifact: its latest validation and quarantine/release."""

    validated: dict[str, LoggedEvent]
    moved: dict[str, LoggedEvent]
    named: set[str]


def _from_log(logged: list[tuple[int, Event]]) -> _Logged:
    out = _Logged({}, {}, set())
    for index, ev in logged:
        if ev.phase != "outcome" or ev.outcome != "ok":
            continue
        ref = ev.details.get("statement")
        if isinstance(ref, dict) and isinstance(ref.get("key"), str):
            out.named.add(ref["key"])
        if not ev.artifact_id:
            continue
        if ev.kind == "artifact.validated":
            out.validated[ev.artifact_id] = LoggedEvent(index, ev, ev.to_bytes())
        elif ev.kind in {"artifact.quarantined", "artifact.released"}:
            out.moved[ev.artifact_id] = LoggedEvent(index, ev, ev.to_bytes())
    return out


def _unbound_objects(vault: Vault, logged: _Logged, report: _Report) -> None:
    """Name report and statement objects that no log entry binds: they are never read."""
    bucket = vault.bucket("audit")
    for obj in vault.store.list(bucket, VALIDATIONS_PREFIX):
        report.problem(
            None, f"validation report {obj.key} is not a signed statement in the log; ignored"
        )
    for obj in vault.store.list(bucket, STATEMENTS_PREFIX):
        if obj.key not in logged.named:
            report.problem(None, f"statement {obj.key} is named by no log entry; not trusted")


def _log_events(vault: Vault) -> tuple[list[tuple[int, Event]], int]:
    """Every event of the log (verified), and how many unsigned ``events/`` objects were ignored.

    The tree of the current checkpoint is verified whole first (every entry
    against its leaf hash, the entries against the signed root); only then are
    the entries sequenced since integrated (this rebuild's own intent among
    them), each checked against the tiles of the new, consistent checkpoint.
    """
    tlog = vault.tlog
    current = tlog.checkpoint()
    out: list[tuple[int, Event]] = []
    try:
        for index, entry in tlog.verified_entries(current):
            out.append((index, _parse_entry(index, entry)))
    except IntegrityError as exc:
        raise IntegrityError(exc.message + _differs_from_index(vault, out)) from None
    try:
        signed = tlog.integrate()
    except IntegrityError:
        raise
    except VaultError as exc:
        raise AuditError(f"audit log unavailable, rebuild refused: {exc.message}") from None
    start = current.checkpoint.size
    for offset, entry in enumerate(
        tlog.reader(signed.checkpoint.size).entries(start, signed.checkpoint.size)
    ):
        out.append((start + offset, _parse_entry(start + offset, entry)))
    ignored = sum(1 for _ in vault.store.list(vault.bucket("audit"), EVENTS_PREFIX))
    if ignored:
        log.warning("rebuild.unsigned_events_ignored", count=ignored)
    return out, ignored


def _parse_entry(index: int, entry: bytes) -> Event:
    try:
        return Event.parse(entry)
    except IntegrityError as exc:
        raise IntegrityError(f"log entry {index} is not an event: {exc.message}") from None


def _differs_from_index(vault: Vault, read: list[tuple[int, Event]]) -> str:
    """Which entry read from the store differs from the one the catalog indexed, if any."""
    indexed = {row["idx"]: row["entry"] for row in vault.catalog.log_search(limit=len(read) or 1)}
    for index, event in read:
        if index in indexed and canonical_json(indexed[index]) != event.to_bytes():
            return f"; log entry {index} differs from the entry indexed when it was recorded"
    return ""


def _envelope(vault: Vault, artifact_id: str, tier: str) -> WrappedKey | None:
    """The artifact's envelope for ``tier`` (None when it is gone); IntegrityError if forged."""
    try:
        return vault.load_envelope(artifact_id, tier)
    except NotFoundError:
        return None


def _trusted_manifest(
    vault: Vault, artifact_id: str, tier: str, report: _Report, state: LoggedState
) -> tuple[Manifest, bytes, WrappedKey | None] | None:
    """The manifest at ``artifact_id`` in ``tier`` if it can be trusted, else None (reported).

    With its envelope, the manifest's MAC under the DEK must verify; without
    one (damaged), its signed statement must.
    """
    bucket = vault.bucket(tier)
    key = manifest_key(artifact_id)
    try:
        body = vault.store.get_bytes(bucket, key)
    except NotFoundError:
        report.skip(bucket, key, "manifest vanished during the rebuild")
        return None
    try:
        manifest, mac = Manifest.parse(body)
        if manifest.artifact_id != artifact_id:
            report.skip(bucket, key, f"manifest names another artifact ({manifest.artifact_id})")
            return None
        wrapped = _envelope(vault, artifact_id, tier)
        if wrapped is None:
            vault.verify_statement(artifact_id, tier, manifest, state)
            return manifest, body, None
        dek = vault.keys.unwrap_dek(wrapped)
        try:
            verify_manifest_mac(dek, manifest.body_bytes(), mac)
        finally:
            del dek
    except VaultError as exc:
        report.skip(bucket, key, f"cannot be trusted: {exc.message}")
        return None
    return manifest, body, wrapped


def _rolled_back(
    vault: Vault, artifact_id: str, tier: str, body: bytes, state: LoggedState
) -> str | None:
    """Why the artifact's objects are not the latest state the log records, if they are not."""
    try:
        state.check(
            tier,
            manifest=body,
            statement=vault.store.get_bytes(vault.bucket(tier), statement_key(artifact_id)),
            envelope=vault.store.get_bytes(
                vault.bucket("envelopes"), envelope_key(artifact_id, tier)
            ),
        )
    except RollbackError as exc:
        return exc.message
    except NotFoundError:
        return None  # a missing object is reported as such below
    return None


def _escrow_row(vault: Vault, artifact_id: str) -> dict[str, Any] | None:
    """The catalog row of an artifact's escrow envelope, if it has one."""
    from weightvault.lifecycle.escrow import ESCROW_TIER

    key = escrow_envelope_key(artifact_id)
    try:
        doc = parse_canonical(vault.store.get_bytes(vault.bucket("envelopes"), key), "escrow")
        key_id, _, version = str(doc["escrow_key"]).rpartition("@v")
        return {
            "artifact_id": artifact_id,
            "tier": ESCROW_TIER,
            "kek_id": key_id,
            "kek_version": int(version),
            "object_key": key,
        }
    except (NotFoundError, IntegrityError, KeyError, ValueError):
        return None


def _placements(events: list[Event]) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    since: dict[str, str] = {}
    placed: dict[str, str] = {}
    hooks: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev.artifact_id and ev.kind in PLACEMENT_EVENTS:
            since[ev.artifact_id] = ev.ts
            placed[ev.artifact_id] = str(ev.details.get("tier", ""))
        if ev.artifact_id and ev.kind == "artifact.ingested" and "signed_by" in ev.details:
            hooks.setdefault(ev.artifact_id, {})["signed_by"] = ev.details["signed_by"]
    return since, placed, hooks


def _validation(
    vault: Vault, artifact_id: str, content_digest: str, logged: _Logged, report: _Report
) -> tuple[str | None, str | None]:
    """(status, report sha256) of the latest logged validation whose signed report verifies."""
    entry = logged.validated.get(artifact_id)
    if entry is None:
        return None, None
    try:
        found = trusted_statement(
            vault,
            entry,
            kind="validation",
            what="validation report",
            subject_sha256=content_digest,
        )
    except StatementError as exc:
        report.problem(artifact_id, exc.message)
        return "untrusted", None
    return str(found.predicate.get("status")), found.ref.sha256


def _quarantined(vault: Vault, artifact_id: str, logged: _Logged, report: _Report) -> bool:
    """Whether the artifact is quarantined: by the log, or (fail closed) by a marker alone.

    A marker the log's quarantine lacks is re-created from the log entry.
    """
    entry = logged.moved.get(artifact_id)
    in_log = entry is not None and entry.event.kind == "artifact.quarantined"
    marker_key = quarantine_marker_key(artifact_id)
    try:
        marker = read_marker(vault, artifact_id)
    except IntegrityError as exc:
        # Fail closed: a marker that does not parse still keeps reads refused.
        report.skip(vault.bucket("quarantine"), marker_key, exc.message)
        marker = {}
    if entry is not None and in_log:
        if marker is None:
            _recreate_marker(vault, artifact_id, entry)
            report.problem(
                artifact_id,
                f"quarantine marker of {artifact_id} is missing; log entry {entry.index} "
                "quarantined it (marker re-created)",
            )
        return True
    if marker is not None:
        backed = (
            f"log entry {entry.index} released it"
            if entry is not None
            else "the log never quarantined it"
        )
        report.problem(
            artifact_id,
            f"quarantine marker of {artifact_id} is not backed by the log ({backed}); "
            "reads stay refused until it is released",
        )
        return True
    return False


def _recreate_marker(vault: Vault, artifact_id: str, entry: LoggedEvent) -> None:
    """The read barrier again, from what the log entry records."""
    ev = entry.event
    marker = {
        "type": MARKER_TYPE,
        "artifact_id": artifact_id,
        "origin": str(ev.details.get("origin") or ev.tier or ""),
        "reason": str(ev.details.get("reason", "")),
        "at": ev.ts,
        "by": str(ev.principal.get("name", "")),
        "log_index": entry.index,
    }
    # Create-only, as every marker write: one written meanwhile is kept.
    with contextlib.suppress(ConflictError):
        vault.store.put_bytes(
            vault.bucket("quarantine"),
            quarantine_marker_key(artifact_id),
            canonical_json(marker),
            if_none_match=True,
        )


def rebuild_catalog(vault: Vault) -> dict[str, Any]:
    """Re-index everything the store holds, swapping the new catalog in only when complete.

    Returns the counts (artifacts, events, log entries, unsigned ``events/``
    objects ignored, skipped, damaged) and the lists of untrusted objects
    skipped and damaged artifacts kept, each with a reason. The rebuild is
    itself a logged operation.
    """
    with vault.operation("catalog.rebuilt") as op:
        result = _rebuild(vault)
        op.details.update(
            {
                k: result[k]
                for k in (
                    "artifacts",
                    "events",
                    "skipped",
                    "damaged",
                    "ignored_unsigned",
                    "evidence_problems",
                )
            }
        )
    return result


def _rebuild(vault: Vault) -> dict[str, Any]:
    report = _Report([], [], [])
    logged, ignored = _log_events(vault)
    events = [ev for _, ev in logged if ev.phase == "outcome" and ev.outcome == "ok"]
    since, placed, hooks = _placements(events)
    evidence = _from_log(logged)
    _unbound_objects(vault, evidence, report)
    found: dict[str, list[str]] = {}
    for tier in TIERS:
        for artifact_id in vault.committed_ids(tier):
            found.setdefault(artifact_id, []).append(tier)
    indexed: list[IndexedArtifact] = []
    by_artifact: dict[str, list[tuple[int, Event]]] = {}
    rewraps = [(index, ev) for index, ev in logged if ev.kind == REWRAP_KIND]
    for index, ev in logged:
        if ev.artifact_id:
            by_artifact.setdefault(ev.artifact_id, []).append((index, ev))
    for artifact_id, tiers in sorted(found.items()):
        own = by_artifact.get(artifact_id, [])
        state = LoggedState.from_events(artifact_id, own + rewraps)
        # A crash between a promotion's commit and its clean-up leaves two copies:
        # the tier of the latest logged state says which one is current.
        latest = state.latest
        chosen = latest.tier if latest else placed.get(artifact_id)
        chosen = chosen if len(tiers) > 1 else tiers[0]
        tier = chosen if chosen in tiers else tiers[-1]
        item = _index(vault, artifact_id, tier, since, hooks, evidence, report, state)
        if item is not None:
            indexed.append(item)
    vault.catalog.replace_all(
        [ev.catalog_row() for ev in events],
        indexed,
        [ev.log_row(index) for index, ev in logged],
    )
    with contextlib.suppress(Exception):
        vault.catalog.engine.dispose()
    return {
        "artifacts": len(indexed),
        "events": len(events),
        "log_entries": len(logged),
        "ignored_unsigned": ignored,
        "skipped": len(report.untrusted),
        "damaged": len(report.damaged),
        "evidence_problems": len(report.evidence),
        "untrusted": report.untrusted,
        "damaged_artifacts": report.damaged,
        "evidence": report.evidence,
    }


def _index(
    vault: Vault,
    artifact_id: str,
    tier: str,
    since: dict[str, str],
    hooks: dict[str, Any],
    logged: _Logged,
    report: _Report,
    state: LoggedState,
) -> IndexedArtifact | None:
    """Every catalog row of one artifact, or None when it cannot be trusted (reported).

    Objects that are not the latest state the log records are indexed damaged
    (rolled back), never healthy.
    """
    trusted = _trusted_manifest(vault, artifact_id, tier, report, state)
    if trusted is None:
        return None
    manifest, body, wrapped = trusted
    extra = hooks.get(artifact_id, {})
    row = artifact_row(manifest, body, extra.get("signed_by"))
    current = "quarantine" if _quarantined(vault, artifact_id, logged, report) else tier
    row["tier"] = current
    status, report_sha256 = _validation(vault, artifact_id, manifest.content_digest, logged, report)
    row["validation_status"] = status
    row["validation_sha256"] = report_sha256
    retain = vault.retain_until_of(tier, artifact_id)
    envelopes: list[dict[str, Any]] = []
    damage = None
    if wrapped is not None:
        envelopes.append(
            {
                "artifact_id": artifact_id,
                "tier": tier,
                "kek_id": wrapped.kek_id,
                "kek_version": wrapped.kek_version,
                "object_key": envelope_key(artifact_id, tier),
            }
        )
    else:
        damage = f"envelope {envelope_key(artifact_id, tier)} is missing"
        if retain is not None:
            damage += f" (the ciphertext is retained until {retain})"
    rolled_back = _rolled_back(vault, artifact_id, tier, body, state)
    if rolled_back is not None:
        damage = rolled_back if damage is None else f"{damage}; {rolled_back}"
    if damage is not None:
        log.warning("rebuild.damaged", artifact_id=artifact_id, tier=tier, reason=damage)
        report.damaged.append({"artifact_id": artifact_id, "tier": tier, "reason": damage})
    escrow = _escrow_row(vault, artifact_id)
    if escrow is not None:
        envelopes.append(escrow)
    return IndexedArtifact(
        artifact=row,
        files=tuple(file_row(artifact_id, i, f) for i, f in enumerate(manifest.files)),
        placement={
            "artifact_id": artifact_id,
            "tier": current,
            "bucket": vault.bucket(tier),
            "since": since.get(artifact_id, manifest.created_at),
            "retain_until": retain,
            "legal_hold": int(legal_hold(vault, tier, artifact_id)),
            "generation": 0,
            "pending": None,
        },
        envelopes=tuple(envelopes),
        damage=damage,
    )


def legal_hold(vault: Vault, tier: str, artifact_id: str) -> bool:
    """Whether the artifact's manifest is under legal hold."""
    if not vault.settings.tiers[tier].object_lock:
        return False
    return vault.store.legal_hold(vault.bucket(tier), manifest_key(artifact_id))
