"""Versioned keys, sealed in a local file under a master key.

The keystore holds tier KEKs (AES-256) and, through :meth:`LocalKeyStore.put_secret`,
other key material (signing keys, escrow public keys). The file is JSON sealed
with AES-256-GCM under the master key, taken from ``WEIGHTVAULT_MASTER_KEY``
(base64) or from the 0600 file ``<home>/master.key``.

:class:`KeyProvider` is the interface the rest of the vault uses. Keys never
leave it: callers ask it to wrap and unwrap DEKs, so an external KMS can
implement the same interface later.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from weightvault._fs import write_private
from weightvault._json import canonical_json
from weightvault.config import environment
from weightvault.errors import (
    AuthenticationError,
    ConfigError,
    IntegrityError,
    KeyStateError,
    NotFoundError,
)
from weightvault.logs import register_secret

MASTER_KEY_ENV = "WEIGHTVAULT_MASTER_KEY"
_MAGIC = b"WVKS1\n"
_SEAL_AAD = b"weightvault keystore v1"
_WRAP_ALG = "A256GCM"


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

    @property
    def ref(self) -> str:
        """``key_id@vN``."""
        return f"{self.key_id}@v{self.version}"

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


class LocalKeyStore:
    """A :class:`KeyProvider` backed by one sealed file, safe across processes."""

    def __init__(
        self,
        path: Path,
        master_key: bytes,
        *,
        lifetime: Lifetime = _no_lifetime,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if len(master_key) != 32:
            raise ConfigError("master key must be 32 bytes")
        self.path = path
        self._master = AESGCM(master_key)
        self._lifetime = lifetime
        self._clock = clock
        # Keyed on the sealed bytes, not the file's mtime: times are coarse, so two
        # saves in one tick (or an in-place edit) would otherwise serve stale records.
        self._cache: tuple[bytes, list[KeyRecord]] | None = None

    def __repr__(self) -> str:
        return f"LocalKeyStore(path={str(self.path)!r})"

    # -- sealed file -------------------------------------------------------

    def _open(self) -> list[KeyRecord]:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return []
        if self._cache and self._cache[0] == blob:
            return list(self._cache[1])
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 12 + 16:
            raise IntegrityError(f"keystore {self.path} is not a weightvault keystore")
        nonce = blob[len(_MAGIC) : len(_MAGIC) + 12]
        try:
            plain = self._master.decrypt(nonce, blob[len(_MAGIC) + 12 :], _SEAL_AAD)
        except InvalidTag:
            raise AuthenticationError(
                f"the master key does not open keystore {self.path} (wrong key or tampered file)"
            ) from None
        records = [_record_from_json(r) for r in json.loads(plain)["keys"]]
        self._cache = (blob, records)
        return list(records)

    def _save(self, records: list[KeyRecord]) -> None:
        body = json.dumps({"format": 1, "keys": [_record_to_json(r) for r in records]}).encode()
        nonce = secrets.token_bytes(12)
        blob = _MAGIC + nonce + self._master.encrypt(nonce, body, _SEAL_AAD)
        write_private(self.path, blob)
        self._cache = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[KeyRecord]]:
        """Read-modify-write under an exclusive lock; the yielded list is saved."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._cache = None
                records = self._open()
                before = list(records)
                yield records
                if records != before:
                    self._save(records)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

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
        concurrent rotations agree on one version.
        """
        key_id = f"kek-{tier}"
        with self._locked() as records:
            mine = [r for r in records if r.key_id == key_id]
            active = next((r for r in mine if r.state == KeyState.ACTIVE), None)
            pending = any(r.state == KeyState.DECRYPT_ONLY for r in mine)
            if active is not None and (pending or not new_version):
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

    def set_state(self, key_id: str, version: int, state: KeyState) -> KeyRecord:
        """Move a key version to ``state``; destroyed wipes its material."""
        with self._locked() as records:
            for i, rec in enumerate(records):
                if rec.key_id == key_id and rec.version == version:
                    if rec.state == KeyState.DESTROYED:
                        raise KeyStateError(f"key {rec.ref} is destroyed")
                    material = b"" if state == KeyState.DESTROYED else rec.material
                    records[i] = replace(rec, state=state, material=material)
                    return records[i]
        raise NotFoundError(f"key {key_id}@v{version} is not in the keystore")

    # -- wrapping ----------------------------------------------------------

    def wrap_dek(self, tier: str, artifact_id: str, dek: bytes) -> WrappedKey:
        """Wrap ``dek`` under the tier's active KEK with AES-256-GCM."""
        kek = self.active_kek(tier)
        return self.wrap_with(kek, tier, artifact_id, dek)

    def wrap_with(self, kek: KeyRecord, tier: str, artifact_id: str, dek: bytes) -> WrappedKey:
        """Wrap ``dek`` under a given KEK version, which must be active."""
        if kek.state != KeyState.ACTIVE:
            raise KeyStateError(f"key {kek.ref} is {kek.state}: it cannot wrap new keys")
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
