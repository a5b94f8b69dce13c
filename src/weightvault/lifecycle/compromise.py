"""Compromise: mark a key version compromised, stop wrapping under it, list what it protects.

:func:`compromise_key` is the first step of a compromise response; the
remediation (re-encrypting what the key may have exposed, rewrapping the
rest) is :mod:`weightvault.lifecycle.rekey`, which the CLI's ``keys
compromise --rekey`` and the rekey flow both run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weightvault.artifacts import Vault
from weightvault.errors import (
    InvalidInputError,
    KeyStateError,
    NotFoundError,
)
from weightvault.keys import (
    KeyRecord,
    KeyState,
)
from weightvault.lifecycle.evidence import sign_record
from weightvault.lifecycle.rotation import (
    parse_key_ref,
    publish_trust_root,
    rotate_signing,
    rotating_keys,
)
from weightvault.logs import get_logger
from weightvault.provenance import OMS_KEY_ID, SIGNING_KEY_ID, rotate_oms_key

log = get_logger("weightvault.lifecycle.compromise")


@dataclass(frozen=True)
class Protected:
    """An artifact a compromised key version protects, and what must happen to it."""

    artifact_id: str
    tier: str
    action: str  # "re-encrypt" (its DEK may be exposed) or "rewrap"
    why: str

    def to_dict(self) -> dict[str, str]:
        """JSON-safe form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class CompromiseReport:
    """A compromised key version, the fresh version that replaces it, what it protects."""

    key: str
    newly_marked: bool
    replacement: str | None
    protected: tuple[Protected, ...]
    purpose: str = "kek"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "key": self.key,
            "purpose": self.purpose,
            "newly_marked": self.newly_marked,
            "replacement": self.replacement,
            "protected": [p.to_dict() for p in self.protected],
            "re_encrypt": sum(1 for p in self.protected if p.action == "re-encrypt"),
            "rewrap": sum(1 for p in self.protected if p.action == "rewrap"),
        }


def resolve_key(vault: Vault, ref: str) -> KeyRecord:
    """A key version from ``KEY_ID[@vN]`` (no version: the active one, else the newest)."""
    key_id, version = parse_key_ref(ref)
    keys = rotating_keys(vault)
    if version is not None:
        return keys.get(key_id, version)
    versions = keys.versions(key_id)
    if not versions:
        raise NotFoundError(f"key {key_id} is not in the keystore")
    active = [r for r in versions if r.state == KeyState.ACTIVE]
    return active[0] if active else versions[-1]


def exposed_artifacts(
    vault: Vault, candidates: Iterable[str], since: datetime | None
) -> dict[str, str]:
    """Artifacts among ``candidates`` with a recorded access at or after ``since``.

    Any event of an artifact (ingest, read, verify, promotion...) means its
    DEK was unwrapped in some process then, so it may have been exposed
    during the compromise window. Returns id -> the first such event kind.
    """
    if since is None:
        return {}
    wanted = set(candidates)
    found: dict[str, str] = {}
    cutoff = since.isoformat(timespec="microseconds")
    for artifact_id in sorted(wanted):
        for ev in vault.catalog.events_of(artifact_id, limit=100_000):
            if ev["ts"] >= cutoff and not str(ev["kind"]).startswith("key."):
                found[artifact_id] = f"{ev['kind']} at {ev['ts']}"
                break
    return found


def protected_by(
    vault: Vault,
    rec: KeyRecord,
    *,
    since: datetime | None = None,
    exposed: Iterable[str] = (),
    all_exposed: bool = False,
) -> list[Protected]:
    """Every artifact a key version protects, split into re-encrypt and rewrap.

    KEK versions: artifacts with an envelope on the version (catalog, checked
    against the store for envelopes the catalog does not know yet). An
    artifact's DEK may have been exposed when it is named in ``exposed``,
    when ``all_exposed`` (the envelope bucket leaked with the key), or when
    it was accessed at or after ``since``: those are re-encrypted under a
    fresh DEK, the others rewrapped under a fresh KEK version. Signing
    versions: the artifacts they signed (listed; re-signing is not a rewrap).
    """
    if rec.purpose == "signing":
        return [
            Protected(a.id, a.tier, "re-sign", f"signed by {rec.ref}")
            for a in vault.catalog.list_artifacts()
            if a.signed_by == rec.ref
        ]
    if rec.purpose != "kek" or rec.tier is None:
        return []
    rows = [r for r in vault.catalog.envelopes_on(rec.key_id, rec.version) if r["tier"] == rec.tier]
    ids = {r["artifact_id"] for r in rows}
    named = set(exposed)
    unknown = named - ids
    if unknown:
        raise InvalidInputError(
            f"artifact(s) {', '.join(sorted(unknown))} are not protected by {rec.ref}"
        )
    accessed = exposed_artifacts(vault, ids, since)
    out = []
    for artifact_id in sorted(ids):
        if all_exposed:
            out.append(Protected(artifact_id, rec.tier, "re-encrypt", "envelopes exposed"))
        elif artifact_id in named:
            out.append(Protected(artifact_id, rec.tier, "re-encrypt", "named as exposed"))
        elif artifact_id in accessed:
            out.append(
                Protected(artifact_id, rec.tier, "re-encrypt", f"accessed: {accessed[artifact_id]}")
            )
        else:
            out.append(Protected(artifact_id, rec.tier, "rewrap", "no access in the window"))
    return out


def compromise_key(
    vault: Vault,
    ref: str,
    *,
    since: datetime | None = None,
    exposed: Iterable[str] = (),
    all_exposed: bool = False,
) -> CompromiseReport:
    """Mark a key version compromised, make a fresh version, list what it protects.

    From this call on the version wraps nothing (the keystore refuses to
    wrap under a key that is not active); it still unwraps, so what it
    protects can be re-encrypted or rewrapped (:mod:`weightvault.lifecycle.rekey`).
    A KEK's tier gets a fresh active version at once, so new puts go on
    under a key created after the compromise. Running it again on the same
    version only lists.
    """
    keys = rotating_keys(vault)
    rec = resolve_key(vault, ref)
    details = {"key": rec.ref, "since": since.isoformat() if since else None}
    with vault.operation("key.compromised", details=details) as op:
        op.uses(rec.ref)
        if rec.state == KeyState.DESTROYED:
            raise KeyStateError(f"key {rec.ref} is destroyed: nothing left to compromise")
        newly = rec.state != KeyState.COMPROMISED
        replacement: str | None = None
        if newly:
            rec = keys.set_state(rec.key_id, rec.version, KeyState.COMPROMISED, since=since)
            if rec.purpose == "kek" and rec.tier is not None:
                replacement = keys.rotate_kek(rec.tier).ref
            elif rec.key_id == SIGNING_KEY_ID:
                replacement = rotate_signing(vault)
                publish_trust_root(vault)
            elif rec.key_id == OMS_KEY_ID:
                # New puts sign model.sig with a key made after the compromise.
                replacement = rotate_oms_key(keys).ref
        elif rec.purpose == "kek" and rec.tier is not None:
            active = keys.active(rec.key_id)
            replacement = active.ref if active else keys.active_kek(rec.tier).ref
        op.uses(replacement)
        protected = protected_by(vault, rec, since=since, exposed=exposed, all_exposed=all_exposed)
        op.details.update(
            newly_marked=newly,
            replacement=replacement,
            protected=len(protected),
            re_encrypt=sum(1 for p in protected if p.action == "re-encrypt"),
        )
        record = {
            "key": rec.ref,
            "state": str(rec.state),
            "since": details["since"],
            "replacement": replacement,
            "newly_marked": newly,
            "protected": len(protected),
        }
        sign_record(vault, op, "key-compromise", rec.ref, record)
    return CompromiseReport(rec.ref, newly, replacement, tuple(protected), rec.purpose)
