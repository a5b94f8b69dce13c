"""The configured keystore, with its version records kept in the object store.

:class:`StoreKeystoreVersions` keeps one small object per keystore version in
the audit bucket (``keystore/versions/<version>.json``, see
:mod:`weightvault.store.layout`). Keys are zero-padded, so "is there a newer
record?" is one listing that starts after the keystore's own version, however
many records there are. The records are written and checked by
:class:`~weightvault.keys.LocalKeyStore`; this module only moves their bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from weightvault._time import utcnow
from weightvault.config import Settings
from weightvault.errors import NotFoundError
from weightvault.keys import LocalKeyStore, load_master_key, policy_lifetime
from weightvault.store import ObjectStore
from weightvault.store.layout import (
    KEYSTORE_VERSIONS_PREFIX,
    keystore_version_key,
    parse_keystore_version_key,
)

_RECORD_LIMIT = 4096


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


def open_keystore(
    settings: Settings,
    store: ObjectStore | None,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> LocalKeyStore:
    """The vault's keystore: policy lifetimes, the configured wrap limit, version records.

    With ``store`` None (a vault initialised before its store runs) versions
    are not recorded; the first open with a store records the current one.
    """
    versions = StoreKeystoreVersions(store, settings.store.bucket("audit")) if store else None
    return LocalKeyStore(
        settings.keystore_path,
        load_master_key(settings.master_key_path, settings.master_key),
        lifetime=policy_lifetime(settings.lifetimes_file, clock),
        clock=clock,
        max_wraps=settings.max_kek_wraps,
        versions=versions,
    )
