"""Rebuild the catalog from the store alone.

Manifests in the tier buckets give artifacts and files; envelope objects give
the KEK version of each envelope; the audit bucket gives events, and the
latest placement event of an artifact gives the time its placement began.
"""

from __future__ import annotations

import contextlib
from typing import Any

from weightvault._json import parse_canonical
from weightvault.artifacts import Vault, artifact_row, file_row
from weightvault.config import TIERS
from weightvault.errors import IntegrityError, NotFoundError
from weightvault.keys import WrappedKey
from weightvault.lifecycle.quarantine import read_marker
from weightvault.records import Event, Manifest
from weightvault.store.layout import EVENTS_PREFIX, envelope_key, manifest_key

PLACEMENT_EVENTS = frozenset(
    {"artifact.ingested", "artifact.promoted", "artifact.quarantined", "artifact.released"}
)


def _events(vault: Vault) -> list[Event]:
    out = []
    for obj in vault.store.list(vault.bucket("audit"), EVENTS_PREFIX):
        out.append(Event.parse(vault.store.get_bytes(obj.bucket, obj.key)))
    return sorted(out, key=lambda e: (e.ts, e.id))


def rebuild_catalog(vault: Vault) -> dict[str, int]:
    """Clear the catalog and re-index everything the store holds."""
    events = _events(vault)
    since: dict[str, str] = {}
    placed: dict[str, str] = {}
    hooks: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev.artifact_id and ev.kind in PLACEMENT_EVENTS:
            since[ev.artifact_id] = ev.ts
            placed[ev.artifact_id] = str(ev.details.get("tier", ""))
        if ev.artifact_id and ev.kind == "artifact.ingested" and "signed_by" in ev.details:
            hooks.setdefault(ev.artifact_id, {})["signed_by"] = ev.details["signed_by"]
        if ev.artifact_id and ev.kind == "artifact.validated":
            hooks.setdefault(ev.artifact_id, {}).update(
                validation_status=ev.details.get("status"),
                validation_sha256=ev.details.get("report_sha256"),
            )
    catalog = vault.catalog
    catalog.clear()
    counts = {"artifacts": 0, "events": 0, "skipped": 0}
    with catalog.transaction() as conn:
        for ev in events:
            catalog.add_event(conn, ev.catalog_row())
            counts["events"] += 1
    found: dict[str, list[str]] = {}
    for tier in TIERS:
        for artifact_id in vault.committed_ids(tier):
            found.setdefault(artifact_id, []).append(tier)
    where: list[tuple[str, str]] = []
    for artifact_id, tiers in sorted(found.items()):
        # A crash between a promotion's commit and its clean-up leaves two copies:
        # the latest placement event says which one is current.
        chosen = placed.get(artifact_id) if len(tiers) > 1 else tiers[0]
        where.append((artifact_id, chosen if chosen in tiers else tiers[-1]))
    for artifact_id, tier in where:
        body = vault.store.get_bytes(vault.bucket(tier), manifest_key(artifact_id))
        try:
            manifest, _mac = Manifest.parse(body)
            raw = parse_canonical(
                vault.store.get_bytes(vault.bucket("envelopes"), envelope_key(artifact_id, tier)),
                "envelope",
            )
            wrapped = WrappedKey.from_dict(raw)
        except (IntegrityError, NotFoundError):
            counts["skipped"] += 1
            continue
        extra = hooks.get(artifact_id, {})
        row = artifact_row(manifest, body, extra.get("signed_by"))
        marker = read_marker(vault, artifact_id)
        current = "quarantine" if marker is not None else tier
        row["tier"] = current
        row["validation_status"] = extra.get("validation_status")
        row["validation_sha256"] = extra.get("validation_sha256")
        retain = vault.retain_until_of(tier, artifact_id)
        with catalog.transaction() as conn:
            catalog.add_artifact(
                conn,
                row,
                [file_row(artifact_id, i, f) for i, f in enumerate(manifest.files)],
                {
                    "artifact_id": artifact_id,
                    "tier": current,
                    "bucket": vault.bucket(tier),
                    "since": since.get(artifact_id, manifest.created_at),
                    "retain_until": retain,
                    "legal_hold": int(legal_hold(vault, tier, artifact_id)),
                    "generation": 0,
                    "pending": None,
                },
                {
                    "artifact_id": artifact_id,
                    "tier": tier,
                    "kek_id": wrapped.kek_id,
                    "kek_version": wrapped.kek_version,
                    "object_key": envelope_key(artifact_id, tier),
                },
            )
        _index_escrow(vault, artifact_id)
        counts["artifacts"] += 1
    with contextlib.suppress(Exception):
        vault.catalog.engine.dispose()
    return counts


def legal_hold(vault: Vault, tier: str, artifact_id: str) -> bool:
    """Whether the artifact's manifest is under legal hold."""
    if not vault.settings.tiers[tier].object_lock:
        return False
    return vault.store.legal_hold(vault.bucket(tier), manifest_key(artifact_id))


def _index_escrow(vault: Vault, artifact_id: str) -> None:
    """Re-index an artifact's escrow envelope, if it has one."""
    from weightvault.lifecycle.escrow import ESCROW_TIER
    from weightvault.store.layout import escrow_envelope_key

    key = escrow_envelope_key(artifact_id)
    try:
        doc = parse_canonical(vault.store.get_bytes(vault.bucket("envelopes"), key), "escrow")
        key_id, _, version = str(doc["escrow_key"]).rpartition("@v")
        with vault.catalog.transaction() as conn:
            vault.catalog.set_envelope(conn, artifact_id, ESCROW_TIER, key_id, int(version), key)
    except (NotFoundError, IntegrityError, KeyError, ValueError):
        return
