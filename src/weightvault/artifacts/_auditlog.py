"""The vault's transparency log: its keys, its origin, and the per-vault audit HMAC key.

Three keys live in the keystore, created on first use (or at ``weightvault
init``) and never printed; they get their lifetimes from the policy (the two
log keys as a hybrid ``signing`` pair, the HMAC key as a symmetric ``token``
key) but the schedule does not rotate them yet:

- ``log-note``: the Ed25519 key of the checkpoint's signature line (type 0x01);
- ``log-cosigner``: the ML-DSA-44 key of its cosignature line (type 0x06);
- ``audit-hmac``: 32 bytes keying the HMAC-SHA-256 of private identifiers in
  events (local paths, host names), printed as ``hmac-sha256:<hex>``.

The log's origin (and both keys' note names) is ``weightvault/<bucket prefix>/<store>``,
where ``<store>`` is the S3 endpoint as configured, or ``embedded``: every host
that uses the same store and buckets names the same log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from weightvault.config import Settings
from weightvault.crypto.notes import (
    Ed25519NoteSigner,
    MLDSA44Cosigner,
    NoteSigner,
    NoteVerifier,
    verifier_from_vkey,
)
from weightvault.keys import KeyProvider
from weightvault.records import TransparencyLog
from weightvault.store import ObjectStore

LOG_NOTE_KEY_ID = "log-note"
LOG_COSIGNER_KEY_ID = "log-cosigner"
AUDIT_HMAC_KEY_ID = "audit-hmac"
HMAC_PREFIX = "hmac-sha256:"


def log_origin(settings: Settings) -> str:
    """The log's origin line: the same on every host using this store and bucket prefix."""
    store = settings.store.endpoint.strip() or "embedded"
    cleaned = "".join("_" if c.isspace() or c == "+" else c for c in store)
    return f"weightvault/{settings.store.bucket_prefix}/{cleaned}"


def _seed() -> bytes:
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class LogKeys:
    """The log's signers and verifiers (verifier keys are public; signers never leave here)."""

    signers: tuple[NoteSigner, ...]
    verifiers: tuple[NoteVerifier, ...]
    vkeys: dict[str, str]

    def __repr__(self) -> str:
        return f"LogKeys({sorted(self.vkeys.values())!r})"


def log_keys(keys: KeyProvider, origin: str) -> LogKeys:
    """The log's Ed25519 note key and ML-DSA-44 cosigner key, created on first use."""
    ed = keys.ensure_secret(LOG_NOTE_KEY_ID, "signing", "Ed25519", _seed)
    ml = keys.ensure_secret(LOG_COSIGNER_KEY_ID, "signing", "ML-DSA-44", _seed)
    signer = Ed25519NoteSigner.from_seed(origin, ed.material)
    cosigner = MLDSA44Cosigner.from_seed(origin, ml.material, time.time)
    return LogKeys(
        signers=(signer, cosigner),
        verifiers=(verifier_from_vkey(signer.vkey), verifier_from_vkey(cosigner.vkey)),
        vkeys={"ed25519": signer.vkey, "mldsa44": cosigner.vkey},
    )


def audit_hmac_key(keys: KeyProvider) -> bytes:
    """The per-vault key of :func:`audit_hash`, created on first use."""
    return keys.ensure_secret(AUDIT_HMAC_KEY_ID, "token", "HMAC-SHA-256", _seed).material


def audit_hash(key: bytes, value: str) -> str:
    """``hmac-sha256:<hex>`` of ``value``: how the log stores a private identifier."""
    return HMAC_PREFIX + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def open_log(
    settings: Settings, store: ObjectStore, keys: KeyProvider, *, writable: bool = True
) -> TransparencyLog:
    """The vault's log on the audit bucket, with the verifiers every checkpoint must satisfy.

    With ``writable`` false the handle only reads and verifies (no signer is loaded).
    """
    origin = log_origin(settings)
    found = log_keys(keys, origin)
    return TransparencyLog(
        store,
        settings.store.bucket("audit"),
        origin,
        verifiers=list(found.verifiers),
        signers=list(found.signers) if writable else None,
    )
