"""Wrap a small secret (a DEK) to a public key with HPKE (RFC 9180).

Suite: KEM ML-KEM-768 + X25519 (the X-Wing hybrid that ``cryptography``
provides as ``KEM.MLKEM768_X25519``), KDF HKDF-SHA256, AEAD AES-256-GCM, base
mode, single shot. No home-made KEM combiner: the combiner is cryptography's.

Keys
----
A key pair is derived from a 32-byte seed exactly as X-Wing derives it from
its decapsulation key (draft-connolly-cfrg-xwing-kem, ``expandDecapsulationKey``)::

    expanded = SHAKE256(seed, 96 bytes)
    ML-KEM-768 key = from_seed_bytes(expanded[0:64])      # FIPS 203 seed d || z
    X25519 key     = from_private_bytes(expanded[64:96])

``cryptography`` has no from-seed constructor for ``MLKEM768X25519PrivateKey``
(it is built from its two component keys), so the expansion is done here; the
tests check it against the X-Wing draft's test vector, so the seed *is* an
X-Wing private key. To persist a key pair, store the seed (sealed).

Public key encoding (:func:`public_bytes`, 1216 bytes) is X-Wing's:
``ML-KEM-768 encapsulation key (1184) || X25519 public key (32)``.

Wrapped blob (:func:`wrap`, 1174 bytes for a 32-byte secret)::

    b"WVHW" || 0x01 (format) || 0x01 (suite) || HPKE enc (1120) || AEAD ciphertext+tag

Context and associated data
---------------------------
``cryptography``'s single-shot HPKE API takes ``info`` but no AEAD ``aad``;
RFC 9180 section 8.1 says single-shot users should carry auxiliary
authenticated data in ``info``. So both the caller's context and aad go into
``info``, length-framed and hashed so ``info`` stays at 62 bytes (within the
64 bytes every RFC 9180 implementation must accept)::

    info = b"weightvault/v1/hpke-wrap" || header (6)
           || SHA-256(u32be(len(context)) || context || u32be(len(aad)) || aad)

Any change to the context, the aad, the header or the blob makes
:func:`unwrap` raise :class:`~weightvault.errors.IntegrityError`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Final, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "ALGORITHM",
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SUITE_NAME",
    "HpkePrivateKey",
    "HpkePublicKey",
    "generate_keypair",
    "generate_keypair_from_seed",
    "load_public",
    "public_bytes",
    "unwrap",
    "wrap",
]

# The KEM's name as config/lifetimes.toml (key_types.escrow_kem) records it.
ALGORITHM: Final = "ml-kem-768+x25519"
SUITE_NAME: Final = "HPKE-Base(ML-KEM-768+X25519, HKDF-SHA256, AES-256-GCM)"
SEED_SIZE: Final = 32
MLKEM768_PUBLIC_SIZE: Final = 1184
X25519_PUBLIC_SIZE: Final = 32
PUBLIC_KEY_SIZE: Final = MLKEM768_PUBLIC_SIZE + X25519_PUBLIC_SIZE
MAX_SECRET_SIZE: Final = 1024

_MAGIC: Final = b"WVHW"
_FORMAT_VERSION: Final = 1
_SUITE_ID: Final = 1
_HEADER: Final = _MAGIC + bytes((_FORMAT_VERSION, _SUITE_ID))
_INFO_LABEL: Final = b"weightvault/v1/hpke-wrap"
_TAG_SIZE: Final = 16
_ENC_SIZE: Final = hpke.KEM.MLKEM768_X25519.enc_length()
_SUITE: Final = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def _no_pickle(obj: object) -> NoReturn:
    raise TypeError(f"{type(obj).__name__} cannot be pickled or copied by reduction")


class HpkePublicKey:
    """An ML-KEM-768 + X25519 public key (what a secret is wrapped to)."""

    __slots__ = ("_hpke", "_raw")

    def __init__(
        self, mlkem_public: mlkem.MLKEM768PublicKey, x25519_public: x25519.X25519PublicKey
    ) -> None:
        self._raw = mlkem_public.public_bytes_raw() + x25519_public.public_bytes_raw()
        self._hpke = hpke.MLKEM768X25519PublicKey(mlkem_public, x25519_public)

    def to_bytes(self) -> bytes:
        """X-Wing encoding: ML-KEM-768 key (1184 bytes) || X25519 key (32 bytes)."""
        return self._raw

    @property
    def fingerprint(self) -> str:
        """Lowercase hex SHA-256 of :meth:`to_bytes`."""
        return hashlib.sha256(self._raw).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HpkePublicKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"HpkePublicKey(fingerprint={self.fingerprint[:16]!r}...)"

    def __reduce__(self) -> NoReturn:
        _no_pickle(self)


class HpkePrivateKey:
    """An ML-KEM-768 + X25519 private key. Its ``repr`` shows the public fingerprint only."""

    __slots__ = ("_hpke", "_public")

    def __init__(
        self, mlkem_private: mlkem.MLKEM768PrivateKey, x25519_private: x25519.X25519PrivateKey
    ) -> None:
        self._hpke = hpke.MLKEM768X25519PrivateKey(mlkem_private, x25519_private)
        self._public = HpkePublicKey(mlkem_private.public_key(), x25519_private.public_key())

    def public_key(self) -> HpkePublicKey:
        """The matching public key."""
        return self._public

    def __repr__(self) -> str:
        return f"HpkePrivateKey(public={self._public.fingerprint[:16]!r}...)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        _no_pickle(self)


def generate_keypair_from_seed(seed: bytes) -> tuple[HpkePrivateKey, HpkePublicKey]:
    """Derive the key pair of a 32-byte seed, deterministically (X-Wing expansion)."""
    if not isinstance(seed, bytes | bytearray | memoryview) or len(seed) != SEED_SIZE:
        raise InvalidInputError(f"HPKE key seed must be {SEED_SIZE} bytes")
    shake = hashes.Hash(hashes.SHAKE256(digest_size=96))
    shake.update(bytes(seed))
    expanded = shake.finalize()
    private = HpkePrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )
    return private, private.public_key()


def generate_keypair() -> tuple[bytes, HpkePrivateKey, HpkePublicKey]:
    """Make a random key pair; returns ``(seed, private, public)`` so the seed can be sealed."""
    seed = os.urandom(SEED_SIZE)
    private, public = generate_keypair_from_seed(seed)
    return seed, private, public


def public_bytes(public: HpkePublicKey) -> bytes:
    """Encode a public key (1216 bytes, X-Wing layout)."""
    return public.to_bytes()


def load_public(data: bytes) -> HpkePublicKey:
    """Load :func:`public_bytes` output; raise InvalidInputError if malformed."""
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) != PUBLIC_KEY_SIZE:
        raise InvalidInputError(f"HPKE public key must be {PUBLIC_KEY_SIZE} bytes")
    raw = bytes(data)
    try:
        return HpkePublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM768_PUBLIC_SIZE]),
            x25519.X25519PublicKey.from_public_bytes(raw[MLKEM768_PUBLIC_SIZE:]),
        )
    except (ValueError, TypeError):
        raise InvalidInputError("invalid HPKE public key") from None


def _as_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidInputError(f"{what} must be bytes")
    return bytes(value)


def _info(context: bytes, aad: bytes) -> bytes:
    framed = struct.pack(">I", len(context)) + context + struct.pack(">I", len(aad)) + aad
    return _INFO_LABEL + _HEADER + hashlib.sha256(framed).digest()


def wrap(public: HpkePublicKey, secret: bytes, info: bytes, *, aad: bytes = b"") -> bytes:
    """Encrypt ``secret`` to ``public``, bound to ``info`` (context) and ``aad``.

    ``info`` must be non-empty: name what the secret is and what it belongs
    to (e.g. ``b"escrow-dek\\x00" + artifact_id``). Each call uses a fresh
    encapsulation, so wrapping twice gives different blobs.
    """
    if not isinstance(public, HpkePublicKey):
        raise InvalidInputError("HPKE wrap needs an HpkePublicKey")
    plaintext = _as_bytes(secret, "secret to wrap")
    context = _as_bytes(info, "HPKE info")
    extra = _as_bytes(aad, "HPKE aad")
    if not 1 <= len(plaintext) <= MAX_SECRET_SIZE:
        raise InvalidInputError(f"secret to wrap must be 1 to {MAX_SECRET_SIZE} bytes")
    if not context:
        raise InvalidInputError("HPKE info must name the context of the secret")
    return _HEADER + _SUITE.encrypt(
        plaintext,
        public._hpke,  # noqa: SLF001 - the key classes are this module's own
        info=_info(context, extra),
    )


def unwrap(private: HpkePrivateKey, blob: bytes, info: bytes, *, aad: bytes = b"") -> bytes:
    """Decrypt a :func:`wrap` blob.

    Raises IntegrityError unless the key, the blob, ``info`` and ``aad`` all match.
    """
    if not isinstance(private, HpkePrivateKey):
        raise InvalidInputError("HPKE unwrap needs an HpkePrivateKey")
    context = _as_bytes(info, "HPKE info")
    extra = _as_bytes(aad, "HPKE aad")
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise IntegrityError("wrapped secret must be bytes")
    raw = bytes(blob)
    min_size = len(_HEADER) + _ENC_SIZE + _TAG_SIZE + 1
    max_size = len(_HEADER) + _ENC_SIZE + _TAG_SIZE + MAX_SECRET_SIZE
    if not min_size <= len(raw) <= max_size or not hmac.compare_digest(
        raw[: len(_HEADER)], _HEADER
    ):
        raise IntegrityError(f"malformed wrapped secret: not a {SUITE_NAME} blob")
    try:
        return _SUITE.decrypt(
            raw[len(_HEADER) :],
            private._hpke,  # noqa: SLF001 - the key classes are this module's own
            info=_info(context, extra),
        )
    except (InvalidTag, ValueError):
        raise IntegrityError(
            "wrapped secret failed authentication (wrong key, context or tampered blob)"
        ) from None
