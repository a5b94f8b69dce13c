"""The configured keystore, with its version records kept in the object store.

:class:`StoreKeystoreVersions` keeps one small object per keystore version in
the audit bucket (``keystore/versions/<version>.json``, see
:mod:`weightvault.store.layout`). Keys are zero-padded, so "is there a newer
record?" is one listing that starts after the keystore's own version, however
many records there are. The records are written and checked by
:class:`~weightvault.keys.LocalKeyStore`; this module only moves their bytes.

:class:`StoreKeystoreBackups` copies every sealed keystore file to
``keystore/backups/<version>.sealed`` in the same (versioned) bucket, written
with If-None-Match so no backup is ever replaced: losing the vault home does
not lose the hot and warm keys (``weightvault dr restore-home``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime

from weightvault._time import utcnow
from weightvault.config import Settings
from weightvault.errors import ConflictError, NotFoundError
from weightvault.keys import (
    KeystoreOptions,
    LocalKeyStore,
    SealedKeyStore,
    SharedKeyStore,
    load_master_key,
    policy_lifetime,
)
from weightvault.store import ObjectStore
from weightvault.store.layout import (
    KEYSTORE_BACKUPS_PREFIX,
    KEYSTORE_VERSIONS_PREFIX,
    keystore_backup_key,
    keystore_version_key,
    parse_keystore_backup_key,
    parse_keystore_version_key,
)

_RECORD_LIMIT = 4096
_BACKUP_LIMIT = 16 * 1024 * 1024


class StoreKeystoreVersions:
    """A :class:`~weightvault.keys.KeystoreVersions` over a bucket of the object store."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self.store = store
        self.bucket = bucket

    def __repr__(self) -> str:
        return f"StoreKeystoreVersions(bucket={self.bucket!r})"

    def newer(self, version: int) -> list[tuple[int, bytes]]:
        """Every record above ``version``, oldest first."""
        out: list[tuple[int, bytes]] = []
        listing = self.store.list(
            self.bucket, KEYSTORE_VERSIONS_PREFIX, start_after=keystore_version_key(version)
        )
        for obj in listing:
            named = parse_keystore_version_key(obj.key)
            if named is None or named <= version:
                continue
            try:
                out.append((named, self.store.get_bytes(self.bucket, obj.key, limit=_RECORD_LIMIT)))
            except NotFoundError:
                continue
        return out

    def has(self, version: int) -> bool:
        """Whether the record of ``version`` exists."""
        return self.store.exists(self.bucket, keystore_version_key(version))

    def record(self, version: int, body: bytes) -> None:
        """Write the record of ``version``."""
        self.store.put_bytes(self.bucket, keystore_version_key(version), body)


class StoreKeystoreBackups:
    """A :class:`~weightvault.keys.KeystoreBackups` over a bucket of the object store."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self.store = store
        self.bucket = bucket

    def __repr__(self) -> str:
        return f"StoreKeystoreBackups(bucket={self.bucket!r})"

    def has(self, version: int) -> bool:
        """Whether the backup of ``version`` exists."""
        return self.store.exists(self.bucket, keystore_backup_key(version))

    def backup(self, version: int, blob: bytes) -> None:
        """Write the backup of ``version`` once; the same bytes again are a no-op.

        Another blob already stored under ``version`` is kept (ConflictError):
        a backup is never overwritten.
        """
        key = keystore_backup_key(version)
        try:
            self.store.put_bytes(
                self.bucket, key, blob, content_type="application/octet-stream", if_none_match=True
            )
        except ConflictError:
            if not hmac.compare_digest(self.get(version), blob):
                raise ConflictError(
                    f"a different keystore backup of version {version} is already stored; "
                    "it is kept"
                ) from None

    def get(self, version: int) -> bytes:
        """The sealed backup of ``version``; NotFoundError if absent."""
        return self.store.get_bytes(self.bucket, keystore_backup_key(version), limit=_BACKUP_LIMIT)

    def versions(self) -> list[int]:
        """Every backed-up version, oldest first."""
        found = (
            parse_keystore_backup_key(obj.key)
            for obj in self.store.list(self.bucket, KEYSTORE_BACKUPS_PREFIX)
        )
        return sorted(v for v in found if v is not None)


def open_keystore(
    settings: Settings,
    store: ObjectStore | None,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> SealedKeyStore:
    """The vault's keystore: policy lifetimes, the configured wrap limit, version records.

    The sealed file ``<home>/keystore.sealed``, or with ``WEIGHTVAULT_KEYSTORE_URL`` the
    keystore shared in PostgreSQL by every worker. With ``store`` None (a vault
    initialised before its store runs) versions are not recorded; the first open with
    a store records the current one.
    """
    versions = StoreKeystoreVersions(store, settings.store.bucket("audit")) if store else None
    backups = StoreKeystoreBackups(store, settings.store.bucket("audit")) if store else None
    master = load_master_key(settings.master_key_path, settings.master_key)
    options: KeystoreOptions = {
        "lifetime": policy_lifetime(settings.lifetimes_file, clock),
        "clock": clock,
        "max_wraps": settings.max_kek_wraps,
        "versions": versions,
        "backups": backups,
    }
    if settings.keystore_url:
        return SharedKeyStore(settings.keystore_url, master, **options)
    return LocalKeyStore(settings.keystore_path, master, **options)
