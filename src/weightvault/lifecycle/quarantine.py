"""Quarantine: an artifact isolated by an incident or a failed scan.

Objects stay where they are (cold objects cannot move under object lock); a
marker in the quarantine bucket, the catalog and every read path refuse reads
until :func:`release`. Markers are part of the store, so a catalog rebuild
keeps the quarantine.
"""

from __future__ import annotations

from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault.artifacts import Vault, iso
from weightvault.errors import ConflictError, NotFoundError, PolicyError
from weightvault.store.layout import quarantine_marker_key

MARKER_TYPE = "weightvault.quarantine/v1"


def read_marker(vault: Vault, artifact_id: str) -> dict[str, Any] | None:
    """The marker of a quarantined artifact, or None."""
    try:
        data = vault.store.get_bytes(vault.bucket("quarantine"), quarantine_marker_key(artifact_id))
    except NotFoundError:
        return None
    return parse_canonical(data, "quarantine marker")


def _record_move(vault: Vault, artifact_id: str, tier: str, bucket: str, since: str) -> None:
    """Index a quarantine or release; retention and legal hold are unchanged."""
    placement = vault.catalog.placement(artifact_id)
    with vault.catalog.transaction() as conn:
        vault.catalog.move(
            conn,
            artifact_id,
            tier=tier,
            bucket=bucket,
            since=since,
            retain_until=placement["retain_until"],
            legal_hold=bool(placement["legal_hold"]),
        )


def quarantine(vault: Vault, artifact_id: str, *, reason: str) -> dict[str, Any]:
    """Isolate an artifact: no reads until released."""
    row = vault.resolve(artifact_id)
    if row.tier == "quarantine":
        raise ConflictError(f"artifact {row.id} is already quarantined")
    vault.catalog.claim(row.id, row.tier, "quarantine")
    try:
        marker = {
            "type": MARKER_TYPE,
            "artifact_id": row.id,
            "origin": row.tier,
            "reason": reason,
            "at": iso(vault.clock()),
            "by": vault.actor,
        }
        vault.store.put_bytes(
            vault.bucket("quarantine"), quarantine_marker_key(row.id), canonical_json(marker)
        )
        event = vault.record_event(
            "artifact.quarantined",
            row.id,
            {"tier": "quarantine", "origin": row.tier, "reason": reason},
        )
    except BaseException:
        vault.catalog.release(row.id)
        raise
    _record_move(vault, row.id, "quarantine", vault.bucket(row.tier), event.ts)
    return marker


def release(vault: Vault, artifact_id: str, *, approver: str, justification: str) -> str:
    """Release an artifact back to the tier it came from."""
    row = vault.resolve(artifact_id)
    marker = read_marker(vault, row.id)
    if row.tier != "quarantine" or marker is None:
        raise PolicyError(f"artifact {row.id} is not quarantined")
    if not approver.strip() or approver.strip() == vault.actor:
        raise PolicyError("release needs an approver other than the person releasing")
    origin = str(marker["origin"])
    vault.catalog.claim(row.id, "quarantine", origin)
    try:
        event = vault.record_event(
            "artifact.released",
            row.id,
            {"tier": origin, "approver": approver, "justification": justification},
        )
        vault.store.remove(vault.bucket("quarantine"), quarantine_marker_key(row.id))
    except BaseException:
        vault.catalog.release(row.id)
        raise
    _record_move(vault, row.id, origin, vault.bucket(origin), event.ts)
    return origin
