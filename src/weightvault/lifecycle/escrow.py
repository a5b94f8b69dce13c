"""Cold-tier escrow: split the escrow key, escrow DEKs, decrypt with shares only.

The escrow key pair is HPKE ML-KEM-768 + X25519, derived from a 32-byte seed
(:mod:`weightvault.keys._escrow`). :func:`split_escrow_key` draws the seed, splits
it into SLIP-39 shares (k of n, default 3 of 5) and stores only the *public*
key in the keystore (``escrow-cold``, purpose ``escrow_kem``); the seed and
the private key exist only in memory during the split and when custodians
bring k shares back.

Every cold artifact gets an escrow envelope ``envelopes/<id>/escrow.json``:
its DEK HPKE-wrapped to the escrow public key, with ``info`` binding the
artifact id and ``aad`` binding the escrow key version and fingerprint
(:func:`escrow_envelope`). The catalog indexes it as an envelope row of tier
``escrow`` on ``escrow-cold@vN``, so the key inventory counts it.

:func:`escrow_decrypt` restores a cold artifact from the object store and k
shares alone, without the keystore or the catalog: shares -> seed -> private
key -> DEK -> manifest MAC -> every file, each checked against its sha256 and
written to a staging directory that is renamed into place only when all is
good.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightvault._fs import local_write_error, staged_output
from weightvault._json import canonical_json, parse_canonical
from weightvault.artifacts import Vault, decrypt_object
from weightvault.config import Settings
from weightvault.crypto import hpke as hpke_wrap
from weightvault.crypto.binding import verify_manifest_mac
from weightvault.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    VaultError,
)
from weightvault.keys import (
    KeyProvider,
    KeyRecord,
    KeyState,
    escrow_keypair,
    generate_escrow_seed,
    recover_seed,
    split_seed,
)
from weightvault.logs import get_logger
from weightvault.records import Manifest
from weightvault.store import ObjectStore, connect
from weightvault.store.layout import escrow_envelope_key, manifest_key

log = get_logger("weightvault.lifecycle.escrow")

ESCROW_KEY_ID = "escrow-cold"
ESCROW_TIER = "escrow"
ENVELOPE_TYPE = "weightvault.escrow-envelope/v1"
_INFO_LABEL = b"weightvault/v1/escrow-dek\x00"


def _info(artifact_id: str) -> bytes:
    return _INFO_LABEL + artifact_id.encode()


def _aad(key_ref: str, fingerprint: str) -> bytes:
    return canonical_json({"escrow_key": key_ref, "fingerprint": fingerprint})


def escrow_key(keys: KeyProvider) -> KeyRecord | None:
    """The active escrow public key, if an escrow split was made."""
    return keys.active(ESCROW_KEY_ID)


def has_escrow_key(keys: KeyProvider) -> bool:
    """True when an escrow split was made (an active escrow public key exists)."""
    return escrow_key(keys) is not None


# -- split and recover ------------------------------------------------------------


@dataclass(frozen=True)
class EscrowSplit:
    """The outcome of a split. ``shares`` are secret: print them once, or write them."""

    key_ref: str
    fingerprint: str
    threshold: int
    shares: tuple[str, ...]

    def __repr__(self) -> str:
        return (
            f"EscrowSplit(key_ref={self.key_ref!r}, fingerprint={self.fingerprint[:16]!r}..., "
            f"threshold={self.threshold}, shares=<{len(self.shares)} redacted>)"
        )


def split_escrow_key(
    keys: KeyProvider, *, threshold: int = 3, shares: int = 5, replace: bool = False
) -> EscrowSplit:
    """Draw an escrow seed, split it k-of-n, keep only the public key in the keystore.

    Refuses (ConflictError) when an escrow key already exists unless
    ``replace``: then a new version is made and the old one becomes
    decrypt-only (its custodians must keep their shares for what it escrowed
    until :func:`escrow_all_cold` re-escrows those artifacts).
    """
    current = escrow_key(keys)
    if current is not None and not replace:
        raise ConflictError(
            f"escrow key {current.ref} already exists; pass --replace to make a new split"
        )
    seed = generate_escrow_seed()
    try:
        mnemonics = split_seed(seed, threshold, shares)
        _private, public = escrow_keypair(seed)
    finally:
        del seed
    record = keys.put_secret(
        ESCROW_KEY_ID,
        "escrow_kem",
        hpke_wrap.ALGORITHM,
        hpke_wrap.public_bytes(public),
        tier="cold",
        meta={
            "fingerprint": public.fingerprint,
            "threshold": str(threshold),
            "shares": str(shares),
            "public_only": "true",
        },
    )
    return EscrowSplit(record.ref, public.fingerprint, threshold, tuple(mnemonics))


def write_share_files(split: EscrowSplit, out_dir: Path) -> list[Path]:
    """Write one share per custodian file (mode 0600) into a new or empty ``out_dir``."""
    return write_mnemonic_files(split.shares, out_dir, "escrow-share")


def write_mnemonic_files(shares: Sequence[str], out_dir: Path, stem: str) -> list[Path]:
    """One ``<stem>-<n>-of-<total>.txt`` file (0600, never overwriting) per share in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for number, mnemonic in enumerate(shares, start=1):
        path = out_dir / f"{stem}-{number}-of-{len(shares)}.txt"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConflictError(
                f"share file {path} already exists; refusing to overwrite"
            ) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(mnemonic + "\n")
        written.append(path)
    return written


def read_share_files(paths: Sequence[Path]) -> list[str]:
    """Mnemonics from share files (one per file); InvalidInputError names the bad file."""
    out = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(
                f"cannot read share file {path} ({type(exc).__name__})"
            ) from None
        words = " ".join(text.split())
        if not words:
            raise InvalidInputError(f"share file {path} is empty")
        out.append(words)
    return out


def recover_escrow_key(mnemonics: Sequence[str]) -> hpke_wrap.HpkePrivateKey:
    """k shares -> seed -> the escrow private key (too few shares: InvalidInputError)."""
    seed = recover_seed(mnemonics)
    try:
        private, _public = escrow_keypair(seed)
    finally:
        del seed
    return private


# -- escrow envelopes ---------------------------------------------------------------


def escrow_envelope(vault: Vault, artifact_id: str) -> str:
    """Store the escrow envelope of a committed cold artifact; returns the escrow key ref.

    The DEK (unwrapped from the artifact's cold envelope) is HPKE-wrapped to
    the active escrow public key. Idempotent: writing it again replaces the
    object with an equivalent one. Raises NotFoundError without an escrow
    key and InvalidInputError for an artifact that is not in the cold tier.
    """
    record = escrow_key(vault.keys)
    if record is None:
        raise NotFoundError("no escrow key: run `weightvault escrow split` first")
    row = vault.resolve(artifact_id)
    if row.tier != "cold":
        raise InvalidInputError(f"artifact {row.id} is in tier {row.tier}, not cold")
    public = hpke_wrap.load_public(record.material)
    dek = vault.dek(row.id, "cold")
    try:
        blob = hpke_wrap.wrap(public, dek, _info(row.id), aad=_aad(record.ref, public.fingerprint))
    finally:
        del dek
    doc = {
        "type": ENVELOPE_TYPE,
        "suite": hpke_wrap.SUITE_NAME,
        "artifact_id": row.id,
        "escrow_key": record.ref,
        "fingerprint": public.fingerprint,
        "wrapped": base64.b64encode(blob).decode(),
    }
    vault.put_envelope(row.id, ESCROW_TIER, escrow_envelope_key(row.id), doc)
    with vault.catalog.transaction() as conn:
        vault.catalog.set_envelope(
            conn, row.id, ESCROW_TIER, record.key_id, record.version, escrow_envelope_key(row.id)
        )
    return record.ref


def escrow_on_publish(vault: Vault, artifact_id: str) -> bool:
    """Hook run by ``Vault.publish`` for cold artifacts; never fails the commit.

    The artifact is already committed when this runs, so a failure here is
    logged and left for :func:`escrow_all_cold` (run by every key rotation)
    to repair, instead of failing a put that has succeeded.
    """
    try:
        escrow_envelope(vault, artifact_id)
    except VaultError as exc:
        log.warning("escrow.deferred", artifact_id=artifact_id, error=exc.message)
        return False
    return True


def escrow_all_cold(vault: Vault, *, refresh: bool = False) -> dict[str, int]:
    """Give every cold artifact an escrow envelope under the active escrow key.

    Without ``refresh`` only artifacts missing one (or escrowed to an older
    escrow key version) are written. Returns counts; nothing without a key.
    """
    record = escrow_key(vault.keys)
    counts = {"cold": 0, "written": 0, "current": 0}
    if record is None:
        return counts
    for row in vault.catalog.list_artifacts("cold"):
        counts["cold"] += 1
        current = [
            e
            for e in vault.catalog.envelopes_of(row.id)
            if e["tier"] == ESCROW_TIER and e["kek_version"] == record.version
        ]
        if current and not refresh:
            counts["current"] += 1
            continue
        escrow_envelope(vault, row.id)
        counts["written"] += 1
    return counts


def _load_escrow_document(store: ObjectStore, bucket: str, artifact_id: str) -> dict[str, Any]:
    try:
        data = store.get_bytes(bucket, escrow_envelope_key(artifact_id), limit=64 * 1024)
    except NotFoundError:
        raise NotFoundError(f"artifact {artifact_id} has no escrow envelope") from None
    doc = parse_canonical(data, "escrow envelope")
    if doc.get("type") != ENVELOPE_TYPE or doc.get("artifact_id") != artifact_id:
        raise IntegrityError(f"escrow envelope of artifact {artifact_id} is malformed")
    return doc


def unwrap_escrowed_dek(
    doc: dict[str, Any], artifact_id: str, private: hpke_wrap.HpkePrivateKey
) -> bytes:
    """The DEK of an escrow envelope document, with the recovered private key."""
    fingerprint = private.public_key().fingerprint
    if doc.get("fingerprint") != fingerprint:
        raise IntegrityError(
            f"the shares recover escrow key {fingerprint[:16]}..., but artifact {artifact_id} "
            "is escrowed to another key"
        )
    try:
        blob = base64.b64decode(str(doc["wrapped"]), validate=True)
        key_ref = str(doc["escrow_key"])
    except (KeyError, ValueError):
        raise IntegrityError(f"escrow envelope of artifact {artifact_id} is malformed") from None
    return hpke_wrap.unwrap(private, blob, _info(artifact_id), aad=_aad(key_ref, fingerprint))


@dataclass(frozen=True)
class EscrowRestore:
    """What an offline escrow decryption wrote."""

    artifact_id: str
    files: int
    bytes: int
    content_digest: str
    out: str


def escrow_decrypt(
    settings: Settings,
    artifact_id: str,
    mnemonics: Sequence[str],
    out: Path,
    *,
    tier: str = "cold",
    store: ObjectStore | None = None,
) -> EscrowRestore:
    """Decrypt an escrowed artifact with the object store and k shares only.

    Uses neither the keystore nor the catalog (both may be lost). Fewer than
    k shares: InvalidInputError; shares of another split: IntegrityError.
    Nothing is written to ``out`` unless every file decrypts and matches.
    """
    store = store or connect(settings)
    private = recover_escrow_key(mnemonics)
    doc = _load_escrow_document(store, settings.store.bucket("envelopes"), artifact_id)
    dek = unwrap_escrowed_dek(doc, artifact_id, private)
    bucket = settings.store.bucket(tier)
    try:
        body = store.get_bytes(bucket, manifest_key(artifact_id))
        manifest, mac = Manifest.parse(body)
        if manifest.artifact_id != artifact_id:
            raise IntegrityError(f"manifest at {artifact_id} belongs to {manifest.artifact_id}")
        verify_manifest_mac(dek, manifest.body_bytes(), mac)
        registry = settings.home / "staging" if settings.home.is_dir() else None
        total = _write_files(store, bucket, manifest, dek, out, registry)
    except OSError as exc:
        raise local_write_error(exc, out) from None
    finally:
        del dek
    return EscrowRestore(
        artifact_id, len(manifest.model_files), total, manifest.content_digest, str(out)
    )


def _write_files(
    store: ObjectStore,
    bucket: str,
    manifest: Manifest,
    dek: bytes,
    out: Path,
    registry: Path | None,
) -> int:
    total = 0
    with staged_output(out, registry) as staging:
        for entry in manifest.model_files:
            target = (staging / entry.path).resolve()
            if not target.is_relative_to(staging.resolve()):
                raise IntegrityError(f"artifact {manifest.artifact_id}: unsafe path {entry.path!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fh:
                _, n = decrypt_object(store, bucket, manifest.artifact_id, entry, dek, fh)
            total += n
    return total


def escrow_status(keys: KeyProvider) -> list[dict[str, Any]]:
    """Every escrow key version: ref, state, fingerprint, threshold (public data only)."""
    return [
        {
            "key": r.ref,
            "state": str(r.state),
            "fingerprint": r.meta.get("fingerprint"),
            "threshold": r.meta.get("threshold"),
            "shares": r.meta.get("shares"),
            "active": r.state == KeyState.ACTIVE,
        }
        for r in keys.versions(ESCROW_KEY_ID)
    ]
