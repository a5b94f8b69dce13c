"""What the vault needs of an S3 endpoint, probed before it is relied on.

``weightvault init`` and ``weightvault store check`` run :func:`probe_store`:
versioning where the layout asks for it, Object Lock on the locked tiers (a
small probe object really retained, and its deletion really refused),
checksummed uploads into locked buckets, and conditional writes
(``If-None-Match`` / ``If-Match``). A missing capability is refused up front
with one line naming it, instead of an operation failing half-way later.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from weightvault._time import utcnow
from weightvault.config import Settings
from weightvault.errors import (
    ConflictError,
    RetentionError,
    StoreCapabilityError,
    VaultError,
)
from weightvault.store._objects import ObjectStore, bucket_needs
from weightvault.store.layout import conditional_probe_key, lock_probe_key

# A probe object in a locked bucket is retained this long, then left for gc.
_LOCK_PROBE_RETENTION = timedelta(days=1)


@dataclass(frozen=True)
class Capability:
    """One thing the vault needs of the endpoint, and whether it has it."""

    name: str
    bucket: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``<name> on <bucket>: <detail>``."""
        return f"{self.name} on {self.bucket}: {self.detail}"


def probe_store(store: ObjectStore, settings: Settings) -> list[Capability]:
    """Probe every capability the vault relies on; nothing is assumed."""
    found: list[Capability] = []
    for role, (versioned, object_lock) in bucket_needs(settings).items():
        bucket = settings.store.bucket(role)
        if versioned or object_lock:
            found.append(_versioning(store, bucket))
        if object_lock:
            found.extend(_object_lock(store, bucket))
    found.append(_conditional_writes(store, settings.store.bucket("audit")))
    return found


def require_capabilities(store: ObjectStore, settings: Settings) -> list[Capability]:
    """:func:`probe_store`, raising StoreCapabilityError (one line each) if any is missing."""
    found = probe_store(store, settings)
    missing = [c.line() for c in found if not c.ok]
    if missing:
        raise StoreCapabilityError(store.endpoint, missing)
    return found


def _versioning(store: ObjectStore, bucket: str) -> Capability:
    status = store.versioning(bucket)
    if status == "Enabled":
        return Capability("versioning", bucket, True, "enabled")
    return Capability("versioning", bucket, False, f"versioning is {status or 'off'}, not Enabled")


def _object_lock(store: ObjectStore, bucket: str) -> list[Capability]:
    if not store.object_lock_enabled(bucket):
        return [
            Capability(
                "object-lock",
                bucket,
                False,
                "Object Lock is not enabled on the bucket (create it with object lock)",
            )
        ]
    now = utcnow()
    key = lock_probe_key(now.date().isoformat())
    try:
        retention = store.retention(bucket, key) if store.exists(bucket, key) else None
        if retention is None:
            until = now + _LOCK_PROBE_RETENTION
            store.put_bytes(bucket, key, b"weightvault object lock probe\n", retain_until=until)
            retention = store.retention(bucket, key)
    except VaultError as exc:
        return [Capability("checksummed-locked-upload", bucket, False, exc.message)]
    uploaded = Capability(
        "checksummed-locked-upload", bucket, True, "retained upload with Content-MD5 accepted"
    )
    if retention is None or retention[0] != "COMPLIANCE":
        return [uploaded, Capability("object-lock", bucket, False, "retention was not applied")]
    version = store.stat(bucket, key).version_id
    try:
        store.remove(bucket, key, version_id=version)
    except RetentionError:
        return [uploaded, Capability("object-lock", bucket, True, "COMPLIANCE delete refused")]
    return [
        uploaded,
        Capability("object-lock", bucket, False, "a COMPLIANCE-retained version was deleted"),
    ]


def _conditional_writes(store: ObjectStore, bucket: str) -> Capability:
    key = conditional_probe_key(secrets.token_hex(8))
    try:
        first = store.put_bytes(bucket, key, b"1", if_none_match=True)
        problem = None
        try:
            store.put_bytes(bucket, key, b"2", if_none_match=True)
            problem = "If-None-Match: * overwrote an existing object"
        except ConflictError:
            pass
        if problem is None:
            try:
                store.put_bytes(bucket, key, b"3", if_match="0" * 32)
                problem = "If-Match with a stale ETag overwrote the object"
            except ConflictError:
                pass
        if problem is None:
            store.put_bytes(bucket, key, b"4", if_match=first.etag)
    except VaultError as exc:
        problem = exc.message
    finally:
        _remove_every_version(store, bucket, key)
    if problem:
        return Capability("conditional-writes", bucket, False, problem)
    return Capability("conditional-writes", bucket, True, "If-None-Match and If-Match honoured")


def _remove_every_version(store: ObjectStore, bucket: str, key: str) -> None:
    try:
        for info in list(store.list(bucket, key, versions=True)):
            if info.key == key:
                store.remove(bucket, key, version_id=info.version_id)
    except VaultError:
        return
