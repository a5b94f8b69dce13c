"""Versioned keys, sealed under a master key: in a local file, or in a shared database.

The keystore holds tier KEKs (AES-256) and, through :meth:`LocalKeyStore.put_secret`,
other key material (signing keys, escrow public keys). The file is JSON sealed
with AES-256-GCM under the master key, taken from ``WEIGHTVAULT_MASTER_KEY``
(base64) or from the 0600 file ``<home>/master.key``.

Three guards make a key's use bounded (issue 10):

- **Lifetime.** Every key gets ``expires_at`` from the lifetime policy when it
  is created. A KEK past its expiry never wraps a new DEK: the wrap fails with
  :class:`~weightvault.errors.KeyUsageError` naming the key and the rotation to
  run (it still unwraps what it wrapped, until rotation drains it).
- **Wrap count.** Each KEK version counts the DEKs it wrapped (random 96-bit
  GCM nonces: NIST SP 800-38D bounds one key to 2^32 of them). The count is
  raised, and saved, *before* a wrap is done, so a crash can only over-count;
  past ``max_wraps`` (default 2^31) wraps fail the same way.
- **Version.** The sealed file carries a version raised on every change. With
  a :class:`KeystoreVersions` (the object store, see
  :mod:`weightvault.artifacts`) each version is recorded outside the file, with
  a MAC under a key derived from the master key, and every open checks that no
  newer version was recorded: an older copy of the file (restored from a backup
  or by an attacker, bringing back a compromised KEK) is refused with
  :class:`~weightvault.errors.KeystoreRollbackError`.

Where the sealed bytes live is a :class:`SealedBlob`: a 0600 file under an
exclusive ``flock`` (:class:`LocalKeyStore`), or a PostgreSQL row every worker of
a vault shares (:class:`~weightvault.keys.SharedKeyStore`); the sealing, versions,
records and wrap counts are the same :class:`SealedKeyStore` code for both.

:class:`KeyProvider` is the interface the rest of the vault uses. Keys never
leave it: callers ask it to wrap and unwrap DEKs, so an external KMS can
implement the same interface later.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypedDict, Unpack

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from weightvault._fs import write_private
from weightvault._json import canonical_json
from weightvault.config import environment
from weightvault.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    IntegrityError,
    KeyStateError,
    KeystoreRollbackError,
    KeyUsageError,
    NotFoundError,
)
from weightvault.logs import get_logger, register_secret

log = get_logger("weightvault.keys._keystore")

MASTER_KEY_ENV = "WEIGHTVAULT_MASTER_KEY"
_MAGIC = b"WVKS1\n"
_SEAL_AAD = b"weightvault keystore v1"
_WRAP_ALG = "A256GCM"
_FORMAT = 2
VERSION_RECORD_TYPE = "weightvault.keystore-version/v1"
_RECORD_KEY_INFO = b"weightvault/v1/keystore-version-record"
# NIST SP 800-38D 8.3: at most 2^32 invocations of one key with random 96-bit IVs.
# The default stops at half of that, so rotation always has room.
DEFAULT_MAX_WRAPS = 2**31


class KeyState(StrEnum):
    """Lifecycle of a key version."""

    ACTIVE = "active"
    DECRYPT_ONLY = "decrypt-only"
    RETIRED = "retired"
    DESTROYED = "destroyed"
    COMPROMISED = "compromised"


@dataclass(frozen=True)
class KeyRecord:
    """One version of one key. ``material`` never appears in a repr."""

    key_id: str
    version: int
    purpose: str
    algorithm: str
    tier: str | None
    state: KeyState
    created_at: datetime
    expires_at: datetime | None
    material: bytes = field(repr=False)
    meta: dict[str, str] = field(default_factory=dict)
    wraps: int = 0

    @property
    def ref(self) -> str:
        """``key_id@vN``."""
        return f"{self.key_id}@v{self.version}"

    def expired(self, now: datetime) -> bool:
        """Whether ``now`` is at or past the key's ``expires_at``."""
        return self.expires_at is not None and now >= self.expires_at

    def public_view(self) -> dict[str, Any]:
        """Everything about the key except its material."""
        return {
            "key_id": self.key_id,
            "version": self.version,
            "purpose": self.purpose,
            "algorithm": self.algorithm,
            "tier": self.tier,
            "state": str(self.state),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "meta": dict(self.meta),
            "wraps": self.wraps,
        }


@dataclass(frozen=True)
class WrappedKey:
    """A DEK wrapped by a tier KEK: what an envelope object stores."""

    artifact_id: str
    tier: str
    kek_id: str
    kek_version: int
    nonce: bytes
    ciphertext: bytes = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (no plaintext key material)."""
        return {
            "type": "weightvault.envelope/v1",
            "alg": _WRAP_ALG,
            "artifact_id": self.artifact_id,
            "tier": self.tier,
            "kek_id": self.kek_id,
            "kek_version": self.kek_version,
            "nonce": base64.b64encode(self.nonce).decode(),
            "wrapped": base64.b64encode(self.ciphertext).decode(),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> WrappedKey:
        """Parse an envelope document; IntegrityError when malformed."""
        try:
            if raw["type"] != "weightvault.envelope/v1" or raw["alg"] != _WRAP_ALG:
                raise IntegrityError("envelope has an unknown type or algorithm")
            version = raw["kek_version"]
            if not isinstance(version, int) or isinstance(version, bool):
                raise IntegrityError("envelope kek_version is not an integer")
            return cls(
                artifact_id=str(raw["artifact_id"]),
                tier=str(raw["tier"]),
                kek_id=str(raw["kek_id"]),
                kek_version=version,
                nonce=base64.b64decode(raw["nonce"], validate=True),
                ciphertext=base64.b64decode(raw["wrapped"], validate=True),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"envelope is malformed ({type(exc).__name__})") from None


def wrap_aad(artifact_id: str, tier: str, kek_id: str, kek_version: int) -> bytes:
    """Associated data binding a wrapped DEK to its artifact, tier and KEK version."""
    doc = {
        "artifact_id": artifact_id,
        "kek_id": kek_id,
        "kek_version": kek_version,
        "purpose": "weightvault/v1/dek-wrap",
        "tier": tier,
    }
    return canonical_json(doc)


class KeyProvider(Protocol):
    """What the vault needs from a key manager (local file today, KMS later)."""

    def wrap_dek(self, tier: str, artifact_id: str, dek: bytes) -> WrappedKey:
        """Wrap ``dek`` under the tier's active KEK."""
        ...

    def unwrap_dek(self, wrapped: WrappedKey) -> bytes:
        """Recover a DEK; IntegrityError or KeyStateError on failure."""
        ...

    def active_kek(self, tier: str) -> KeyRecord:
        """The tier's active KEK version, created on first use."""
        ...

    def records(self) -> list[KeyRecord]:
        """Every key version, material included (callers must not log it)."""
        ...

    def active(self, key_id: str) -> KeyRecord | None:
        """The active version of a key, if any."""
        ...

    def versions(self, key_id: str) -> list[KeyRecord]:
        """All versions of a key, oldest first."""
        ...

    def put_secret(
        self,
        key_id: str,
        purpose: str,
        algorithm: str,
        material: bytes,
        *,
        tier: str | None = None,
        meta: dict[str, str] | None = None,
    ) -> KeyRecord:
        """Store a new version of a non-KEK key."""
        ...

    def ensure_secret(
        self,
        key_id: str,
        purpose: str,
        algorithm: str,
        make: Callable[[], bytes],
        *,
        meta: dict[str, str] | None = None,
    ) -> KeyRecord:
        """The active version of a non-KEK key, created with ``make()`` on first use."""
        ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _record_to_json(rec: KeyRecord) -> dict[str, Any]:
    doc = rec.public_view()
    doc["material"] = _b64(rec.material)
    return doc


def _record_from_json(raw: dict[str, Any]) -> KeyRecord:
    created = _parse_time(raw["created_at"])
    if created is None:
        raise IntegrityError("keystore record without created_at")
    return KeyRecord(
        key_id=raw["key_id"],
        version=int(raw["version"]),
        purpose=raw["purpose"],
        algorithm=raw["algorithm"],
        tier=raw["tier"],
        state=KeyState(raw["state"]),
        created_at=created,
        expires_at=_parse_time(raw["expires_at"]),
        material=base64.b64decode(raw["material"]),
        meta=dict(raw.get("meta", {})),
        wraps=int(raw.get("wraps", 0)),
    )


def load_master_key(path: Path, env: str | None = None) -> bytes:
    """The master key: ``env`` (WEIGHTVAULT_MASTER_KEY's value), else the 0600 key file.

    Without ``env`` the variable is read through :func:`weightvault.config.environment`.
    """
    if env is None:
        secret = environment().master_key
        env = secret.get_secret_value() if secret else None
    if env:
        try:
            key = base64.b64decode(env, validate=True)
        except ValueError:
            raise ConfigError(f"{MASTER_KEY_ENV} is not valid base64") from None
        if len(key) != 32:
            raise ConfigError(f"{MASTER_KEY_ENV} must decode to 32 bytes")
        _register_master(env, key)
        return key
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"no master key: run `weightvault init` or set {MASTER_KEY_ENV}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"master key file {path} must have mode 0600")
    text = path.read_bytes().strip()
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise ConfigError(f"master key file {path} is not valid base64") from None
    if len(key) != 32:
        raise ConfigError(f"master key file {path} must hold 32 bytes")
    _register_master(text.decode("ascii"), key)
    return key


def _register_master(text: str, key: bytes) -> None:
    """Have the log redactor mask the master key, as written and as canonical base64."""
    register_secret(text)
    register_secret(base64.b64encode(key).decode())


def create_master_key(path: Path) -> bool:
    """Create a random master key file with mode 0600; False if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(32)) + b"\n")
    return True


Lifetime = Callable[[str, str], timedelta | None]


def _no_lifetime(_purpose: str, _tier: str) -> timedelta | None:
    return None


class KeystoreVersions(Protocol):
    """Where the keystore's version records are kept, outside the keystore file.

    The records are opaque to the holder: the keystore writes and checks them
    (each carries a MAC under a key derived from the master key).
    """

    def newer(self, version: int) -> list[tuple[int, bytes]]:
        """Every record of a version above ``version``: (version, record bytes)."""
        ...

    def has(self, version: int) -> bool:
        """Whether the record of ``version`` exists."""
        ...

    def record(self, version: int, body: bytes) -> None:
        """Store the record of ``version``."""
        ...


class KeystoreBackups(Protocol):
    """Where each sealed keystore file is copied on every change (the store's audit bucket).

    The blob is the sealed file itself: encrypted and authenticated under the
    master key, its version inside the ciphertext.
    """

    def has(self, version: int) -> bool:
        """Whether the backup of ``version`` exists."""
        ...

    def backup(self, version: int, blob: bytes) -> None:
        """Keep the sealed file of ``version``; an older backup is never replaced."""
        ...


class SealedBlob(Protocol):
    """Where a keystore's sealed bytes live; ``str()`` names the place in messages."""

    def read(self) -> bytes | None:
        """The sealed bytes, or None when nothing was written yet."""
        ...

    def write(self, blob: bytes, version: int) -> None:
        """Durably replace the sealed bytes by ``blob`` of ``version`` (under the lock)."""
        ...

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lock every read-modify-write of the keystore takes."""
        ...


class FileSealedBlob:
    """The sealed bytes in a 0600 file; changes under an exclusive ``flock`` beside it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def read(self) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def write(self, blob: bytes, version: int) -> None:
        """Replace the file atomically (0600)."""
        del version  # inside the sealed bytes already
        write_private(self.path, blob)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """``flock`` the lock file beside the keystore."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class _State:
    """What one sealed file holds: its version and key records."""

    version: int
    records: tuple[KeyRecord, ...]


class SealedKeyStore:
    """A :class:`KeyProvider` whose keys are sealed in one :class:`SealedBlob`, safe across
    processes (and, with a shared blob, across hosts)."""

    def __init__(
        self,
        blob: SealedBlob,
        master_key: bytes,
        *,
        lifetime: Lifetime = _no_lifetime,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_wraps: int = DEFAULT_MAX_WRAPS,
        versions: KeystoreVersions | None = None,
        backups: KeystoreBackups | None = None,
    ) -> None:
        if len(master_key) != 32:
            raise ConfigError("master key must be 32 bytes")
        if max_wraps < 1:
            raise ConfigError("the KEK wrap limit must be at least 1")
        self._blob = blob
        self._master = AESGCM(master_key)
        self._record_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_RECORD_KEY_INFO
        ).derive(master_key)
        self._lifetime = lifetime
        self._clock = clock
        self.max_wraps = max_wraps
        self._versions = versions
        self._backups = backups
        # Keyed on the sealed bytes, not the file's mtime: times are coarse, so two
        # saves in one tick (or an in-place edit) would otherwise serve stale records.
        # A blob in the cache has passed the version check.
        self._cache: tuple[bytes | None, _State] | None = None
        # Wraps counted in the file but not done yet, per (key id, version).
        self._reserved: dict[tuple[str, int], int] = {}
        self._reserved_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._blob)!r})"

    def __str__(self) -> str:
        return str(self._blob)

    # -- sealed bytes ------------------------------------------------------

    def _read(self) -> bytes | None:
        return self._blob.read()

    def _unseal(self, blob: bytes | None) -> _State:
        if blob is None:
            return _State(0, ())
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 12 + 16:
            raise IntegrityError(f"keystore {self._blob} is not a weightvault keystore")
        nonce = blob[len(_MAGIC) : len(_MAGIC) + 12]
        try:
            plain = self._master.decrypt(nonce, blob[len(_MAGIC) + 12 :], _SEAL_AAD)
        except InvalidTag:
            raise AuthenticationError(
                f"the master key does not open keystore {self._blob} (wrong key or tampered file)"
            ) from None
        doc = json.loads(plain)
        # Format 1 (before versions) counts as version 0: older than any record.
        version = int(doc.get("version", 0)) if doc.get("format", 1) >= _FORMAT else 0
        return _State(version, tuple(_record_from_json(r) for r in doc["keys"]))

    def _load(self, *, locked: bool = False) -> _State:
        """The file's current state, version-checked; ``locked``: the caller holds the lock.

        A file seen before is checked again only under the lock, that is before
        every change and every wrap: a long-running process that cached version
        N must not accept a copy of N restored after N+1 was recorded.
        """
        blob = self._read()
        cache = self._cache
        cached = cache is not None and cache[0] == blob
        if cache is not None and cached:
            if not locked:
                return cache[1]
            state = cache[1]
        else:
            state = self._unseal(blob)
        if self._versions is not None:
            newest = self._newest_recorded(state.version)
            if newest is not None and not locked:
                # A writer may have saved and recorded a version between our read and
                # the listing; writers record under the lock, so look again under it.
                with self._flock():
                    blob = self._read()
                    state = self._unseal(blob)
                    newest = self._newest_recorded(state.version)
            if newest is not None:
                found = "is missing" if blob is None else f"is version {state.version}"
                raise KeystoreRollbackError(
                    f"keystore {self._blob} {found} but version {newest} was recorded in the "
                    "store: this is an older copy (restored or rolled back), or a lost one; "
                    "restore the newest keystore file"
                )
            if not cached and state.version > 0 and not self._versions.has(state.version):
                # A crash between saving the file and recording it, or the first open
                # of a vault from before version records.
                self._versions.record(state.version, self._version_record(state.version, blob))
        fresh = not cached and blob is not None and state.version > 0
        if fresh and self._backups is not None and not self._backups.has(state.version):
            # Catch up a crash after the save, or a vault from before backups.
            self._backups.backup(state.version, blob or b"")
        self._cache = (blob, state)
        return state

    def _open(self) -> list[KeyRecord]:
        return list(self._load().records)

    def sealed_version(self) -> tuple[int, str]:
        """The sealed file's version and the sha256 of its bytes, as the file is now.

        Not checked against the version records (the caller compares it with
        the transparency log's); 0 for a keystore not written yet.
        """
        blob = self._read()
        cache = self._cache
        state = cache[1] if cache is not None and cache[0] == blob else self._unseal(blob)
        return state.version, hashlib.sha256(blob or b"").hexdigest()

    def _version_record(self, version: int, blob: bytes | None) -> bytes:
        doc: dict[str, Any] = {
            "type": VERSION_RECORD_TYPE,
            "version": version,
            "sealed_sha256": hashlib.sha256(blob or b"").hexdigest(),
        }
        doc["mac"] = hmac.new(self._record_key, canonical_json(doc), hashlib.sha256).hexdigest()
        return canonical_json(doc)

    def _record_version(self, body: bytes) -> int | None:
        """The version a record proves, or None if it is not one of this keystore's."""
        try:
            doc = json.loads(body)
            mac = doc.pop("mac")
            version = doc["version"]
            good = doc.get("type") == VERSION_RECORD_TYPE and isinstance(version, int)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        expected = hmac.new(self._record_key, canonical_json(doc), hashlib.sha256).hexdigest()
        if not good or not isinstance(mac, str) or not hmac.compare_digest(mac, expected):
            return None
        return int(version)

    def _newest_recorded(self, version: int) -> int | None:
        """The highest authentic version record above ``version``, if any."""
        if self._versions is None:
            return None
        newest = None
        for named, body in self._versions.newer(version):
            proved = self._record_version(body)
            if proved is None or proved != named:
                log.warning("keystore.version_record_ignored", version=named)
                continue
            newest = max(newest or 0, proved)
        return newest

    def _save(self, state: _State, records: list[KeyRecord]) -> None:
        version = state.version + 1
        body = json.dumps(
            {"format": _FORMAT, "version": version, "keys": [_record_to_json(r) for r in records]}
        ).encode()
        nonce = secrets.token_bytes(12)
        blob = _MAGIC + nonce + self._master.encrypt(nonce, body, _SEAL_AAD)
        self._blob.write(blob, version)
        # Recorded after the file is written (a crash in between is caught up by the
        # next open); recording first would make that crash look like a rollback.
        if self._versions is not None:
            self._versions.record(version, self._version_record(version, blob))
        if self._backups is not None:
            self._backups.backup(version, blob)
        self._cache = (blob, _State(version, tuple(records)))

    def _flock(self) -> contextlib.AbstractContextManager[None]:
        return self._blob.exclusive()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[KeyRecord]]:
        """Read-modify-write under an exclusive lock; the yielded list is saved."""
        with self._flock():
            state = self._load(locked=True)
            records = list(state.records)
            yield records
            if records != list(state.records):
                self._save(state, records)

    def install(self, blob: bytes) -> int:
        """Put a restored sealed keystore (a backup) into this empty keystore; its version.

        The blob must open under this keystore's master key (AuthenticationError
        otherwise); a keystore that holds keys already is never overwritten
        (ConflictError).
        """
        state = self._unseal(blob)
        with self._flock():
            if self._read() is not None:
                raise ConflictError(
                    f"keystore {self._blob} already holds keys: a restore writes only into "
                    "an empty keystore"
                )
            self._blob.write(blob, state.version)
        self._cache = None
        return state.version

    @property
    def version(self) -> int:
        """The keystore's version (0: never saved, or saved before versions existed)."""
        return self._load().version

    # -- queries -----------------------------------------------------------

    def records(self) -> list[KeyRecord]:
        """Every key version."""
        return self._open()

    def get(self, key_id: str, version: int) -> KeyRecord:
        """One key version; NotFoundError if absent."""
        for rec in self._open():
            if rec.key_id == key_id and rec.version == version:
                return rec
        raise NotFoundError(f"key {key_id}@v{version} is not in the keystore")

    def versions(self, key_id: str) -> list[KeyRecord]:
        """All versions of a key, oldest first."""
        return sorted((r for r in self._open() if r.key_id == key_id), key=lambda r: r.version)

    # -- lifecycle ---------------------------------------------------------

    def _new_record(
        self,
        records: list[KeyRecord],
        key_id: str,
        purpose: str,
        algorithm: str,
        tier: str | None,
        material: bytes,
        meta: dict[str, str] | None = None,
    ) -> KeyRecord:
        now = self._clock()
        lifetime = self._lifetime(purpose, tier or "")
        version = 1 + max((r.version for r in records if r.key_id == key_id), default=0)
        rec = KeyRecord(
            key_id=key_id,
            version=version,
            purpose=purpose,
            algorithm=algorithm,
            tier=tier,
            state=KeyState.ACTIVE,
            created_at=now,
            expires_at=now + lifetime if lifetime else None,
            material=material,
            meta=meta or {},
        )
        # The previous active version keeps decrypting what it wrapped.
        for i, old in enumerate(records):
            if old.key_id == key_id and old.state == KeyState.ACTIVE:
                records[i] = replace(old, state=KeyState.DECRYPT_ONLY)
        records.append(rec)
        return rec

    def active(self, key_id: str) -> KeyRecord | None:
        """The active version of a key, if any."""
        for rec in self._open():
            if rec.key_id == key_id and rec.state == KeyState.ACTIVE:
                return rec
        return None

    def active_kek(self, tier: str) -> KeyRecord:
        """The tier's active KEK version, created on first use."""
        key_id = f"kek-{tier}"
        rec = self.active(key_id)
        if rec is not None:
            return rec
        with self._locked() as records:
            for existing in records:
                if existing.key_id == key_id and existing.state == KeyState.ACTIVE:
                    return existing
            return self._new_record(
                records, key_id, "kek", "AES-256-GCM", tier, secrets.token_bytes(32)
            )

    def rotate_kek(self, tier: str) -> KeyRecord:
        """Create a new KEK version; the previous one becomes decrypt-only."""
        with self._locked() as records:
            return self._new_record(
                records, f"kek-{tier}", "kek", "AES-256-GCM", tier, secrets.token_bytes(32)
            )

    def begin_kek_rotation(self, tier: str, *, new_version: bool) -> tuple[KeyRecord, bool]:
        """The KEK version a rotation of ``tier`` rewraps to; ``(record, created)``.

        An unfinished rotation (a decrypt-only version of the tier's KEK still
        exists) is resumed: its active version is returned and no new version
        is made, so a rotation killed mid-way and run again never creates a
        second version. Otherwise a new version is created when ``new_version``
        is true, else the active one is returned (created on first use). The
        check and the creation happen under the keystore lock, so two
        concurrent rotations agree on one version. An active version that can
        no longer wrap (expired, or at its wrap limit) is never resumed: a new
        version is made.
        """
        key_id = f"kek-{tier}"
        with self._locked() as records:
            mine = [r for r in records if r.key_id == key_id]
            active = next((r for r in mine if r.state == KeyState.ACTIVE), None)
            pending = any(r.state == KeyState.DECRYPT_ONLY for r in mine)
            usable = active is not None and self._unusable(active, 1) is None
            if active is not None and usable and (pending or not new_version):
                return active, False
            rec = self._new_record(
                records, key_id, "kek", "AES-256-GCM", tier, secrets.token_bytes(32)
            )
            return rec, True

    def put_secret(
        self,
        key_id: str,
        purpose: str,
        algorithm: str,
        material: bytes,
        *,
        tier: str | None = None,
        meta: dict[str, str] | None = None,
    ) -> KeyRecord:
        """Store a new version of a non-KEK key (signing, escrow, token)."""
        with self._locked() as records:
            return self._new_record(records, key_id, purpose, algorithm, tier, material, meta)

    def ensure_secret(
        self,
        key_id: str,
        purpose: str,
        algorithm: str,
        make: Callable[[], bytes],
        *,
        meta: dict[str, str] | None = None,
    ) -> KeyRecord:
        """The active version of a non-KEK key; ``make()`` creates its material on first use.

        The check and the creation happen under the keystore lock, so concurrent
        first uses agree on one version.
        """
        rec = self.active(key_id)
        if rec is not None:
            return rec
        with self._locked() as records:
            for existing in records:
                if existing.key_id == key_id and existing.state == KeyState.ACTIVE:
                    return existing
            return self._new_record(records, key_id, purpose, algorithm, None, make(), meta)

    def set_state(
        self, key_id: str, version: int, state: KeyState, *, since: datetime | None = None
    ) -> KeyRecord:
        """Move a key version to ``state``; destroyed wipes its material.

        A version marked compromised keeps the time of its compromise in
        ``meta["compromised_at"]``: ``since`` (when it began) if given, else now;
        the signed trust root refuses what the key signed from then on.
        """
        with self._locked() as records:
            for i, rec in enumerate(records):
                if rec.key_id == key_id and rec.version == version:
                    if rec.state == KeyState.DESTROYED:
                        raise KeyStateError(f"key {rec.ref} is destroyed")
                    material = b"" if state == KeyState.DESTROYED else rec.material
                    meta = dict(rec.meta)
                    if state == KeyState.COMPROMISED and "compromised_at" not in meta:
                        now = self._clock()
                        if since is not None and since.tzinfo is None:
                            since = since.replace(tzinfo=UTC)
                        moment = min(since, now) if since is not None else now
                        meta["compromised_at"] = moment.astimezone(UTC).isoformat()
                    records[i] = replace(rec, state=state, material=material, meta=meta)
                    return records[i]
        raise NotFoundError(f"key {key_id}@v{version} is not in the keystore")

    # -- wrapping ----------------------------------------------------------

    def expiry(self, rec: KeyRecord) -> datetime | None:
        """When a key stops wrapping: its ``expires_at``, else its policy lifetime.

        Keys made before every key got an expiry (``weightvault init`` made
        them without one) get the lifetime their purpose and tier have now.
        """
        if rec.expires_at is not None:
            return rec.expires_at
        lifetime = self._lifetime(rec.purpose, rec.tier or "")
        return rec.created_at + lifetime if lifetime else None

    def _unusable(self, rec: KeyRecord, count: int) -> str | None:
        """Why ``rec`` may not wrap ``count`` more keys now, or None."""
        if rec.state != KeyState.ACTIVE:
            return f"key {rec.ref} is {rec.state}: it cannot wrap new keys"
        expiry = self.expiry(rec)
        if expiry is not None and self._clock() >= expiry:
            return f"key {rec.ref} expired at {expiry.isoformat()}: it cannot wrap new keys"
        if rec.wraps + count > self.max_wraps:
            return (
                f"key {rec.ref} has wrapped {rec.wraps} keys and its limit is {self.max_wraps}: "
                "it cannot wrap more"
            )
        return None

    def _count(self, records: list[KeyRecord], key_id: str, version: int, count: int) -> KeyRecord:
        """Raise the wrap count of one KEK version in ``records`` (the caller saves them)."""
        for i, rec in enumerate(records):
            if rec.key_id == key_id and rec.version == version:
                why = self._unusable(rec, count)
                if why is not None:
                    if rec.state != KeyState.ACTIVE:
                        raise KeyStateError(why)
                    tier = f" --tier {rec.tier}" if rec.tier else ""
                    raise KeyUsageError(f"{why}; run `weightvault keys rotate{tier}`")
                records[i] = replace(rec, wraps=rec.wraps + count)
                return records[i]
        raise NotFoundError(f"key {key_id}@v{version} is not in the keystore")

    def reserve_wraps(self, kek: KeyRecord, count: int) -> None:
        """Count ``count`` wraps under ``kek`` now, for :meth:`wrap_with` calls to come.

        The count is saved before any of those wraps is done: a crash, or a
        wrap that does not happen, over-counts; nothing under-counts.
        """
        if count < 1:
            return
        with self._locked() as records:
            self._count(records, kek.key_id, kek.version, count)
        with self._reserved_lock:
            ref = (kek.key_id, kek.version)
            self._reserved[ref] = self._reserved.get(ref, 0) + count

    def _take_reserved(self, kek: KeyRecord) -> bool:
        with self._reserved_lock:
            ref = (kek.key_id, kek.version)
            left = self._reserved.get(ref, 0)
            if left < 1:
                return False
            self._reserved[ref] = left - 1
            return True

    def wrap_dek(self, tier: str, artifact_id: str, dek: bytes) -> WrappedKey:
        """Wrap ``dek`` under the tier's active KEK with AES-256-GCM.

        The KEK is created on first use; an expired KEK, or one at its wrap
        limit, refuses (KeyUsageError: run ``weightvault keys rotate``).
        """
        key_id = f"kek-{tier}"
        with self._locked() as records:
            kek = next(
                (r for r in records if r.key_id == key_id and r.state == KeyState.ACTIVE), None
            )
            if kek is None:
                kek = self._new_record(
                    records, key_id, "kek", "AES-256-GCM", tier, secrets.token_bytes(32)
                )
            kek = self._count(records, kek.key_id, kek.version, 1)
        return self._wrap(kek, tier, artifact_id, dek)

    def wrap_with(self, kek: KeyRecord, tier: str, artifact_id: str, dek: bytes) -> WrappedKey:
        """Wrap ``dek`` under a given KEK version, which must be active and usable.

        Uses a wrap counted by :meth:`reserve_wraps`, else counts one now.
        """
        if kek.state != KeyState.ACTIVE:
            raise KeyStateError(f"key {kek.ref} is {kek.state}: it cannot wrap new keys")
        if not self._take_reserved(kek):
            with self._locked() as records:
                self._count(records, kek.key_id, kek.version, 1)
        return self._wrap(kek, tier, artifact_id, dek)

    def _wrap(self, kek: KeyRecord, tier: str, artifact_id: str, dek: bytes) -> WrappedKey:
        nonce = secrets.token_bytes(12)
        aad = wrap_aad(artifact_id, tier, kek.key_id, kek.version)
        ct = AESGCM(kek.material).encrypt(nonce, dek, aad)
        return WrappedKey(artifact_id, tier, kek.key_id, kek.version, nonce, ct)

    def unwrap_dek(self, wrapped: WrappedKey) -> bytes:
        """Unwrap a DEK; the KEK version must still be usable for decryption."""
        try:
            kek = self.get(wrapped.kek_id, wrapped.kek_version)
        except NotFoundError:
            raise IntegrityError(
                f"envelope of artifact {wrapped.artifact_id} names an unknown key "
                f"{wrapped.kek_id}@v{wrapped.kek_version}"
            ) from None
        if kek.state in {KeyState.RETIRED, KeyState.DESTROYED}:
            raise KeyStateError(f"key {kek.ref} is {kek.state}: it cannot unwrap")
        if kek.tier != wrapped.tier:
            raise IntegrityError(f"envelope names tier {wrapped.tier} but {kek.ref} is not its KEK")
        aad = wrap_aad(wrapped.artifact_id, wrapped.tier, wrapped.kek_id, wrapped.kek_version)
        try:
            return AESGCM(kek.material).decrypt(wrapped.nonce, wrapped.ciphertext, aad)
        except InvalidTag:
            raise IntegrityError(
                f"envelope of artifact {wrapped.artifact_id} failed authentication"
            ) from None


class KeystoreOptions(TypedDict, total=False):
    """What a :class:`SealedKeyStore` takes besides its blob and master key."""

    lifetime: Lifetime
    clock: Callable[[], datetime]
    max_wraps: int
    versions: KeystoreVersions | None
    backups: KeystoreBackups | None


class LocalKeyStore(SealedKeyStore):
    """The keystore in one sealed 0600 file (``<home>/keystore.sealed``)."""

    def __init__(self, path: Path, master_key: bytes, **options: Unpack[KeystoreOptions]) -> None:
        self.path = path
        super().__init__(FileSealedBlob(path), master_key, **options)
