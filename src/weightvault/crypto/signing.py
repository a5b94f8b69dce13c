"""Hybrid signatures: Ed25519 and ML-DSA-65, both of which must verify.

A :class:`HybridSigningKey` holds one Ed25519 and one ML-DSA-65 private key
under a vault key id and version. A signature is valid only if *both* halves
verify; a forged classical half (quantum attacker) or a forged ML-DSA half
(cryptanalysis of the new scheme) alone is not enough.

What each half signs
--------------------
Both halves sign the same byte string::

    signed = b"weightvault/v1/hybrid-signature\\x00" || fingerprint || message

where ``fingerprint`` is the 32-byte SHA-256 of the canonical public key
encoding (below). ML-DSA-65 additionally uses the FIPS 204 context string
``b"weightvault/v1/hybrid-signature"``. Binding the composite key's
fingerprint means a half cannot be lifted into a signature of another hybrid
key, and the prefix means neither half is a valid signature of ``message`` in
any protocol that signs raw messages with the same component key.

Encodings
---------
* Canonical public key (input to the fingerprint, fixed length 1990 bytes)::

      b"WVPK" || 0x01 (format) || 0x01 (suite: ed25519+ml-dsa-65)
      || ed25519 public key (32) || ml-dsa-65 public key (1952)

  :attr:`HybridVerifyKey.keyid` is the lowercase hex SHA-256 of it.
* Private key (:meth:`HybridSigningKey.private_bytes`, fixed length 70 bytes;
  store it only inside the encrypted keystore)::

      b"WVSK" || 0x01 (format) || 0x01 (suite)
      || ed25519 seed (32) || ml-dsa-65 seed xi (32)

* Signature (:meth:`HybridSignature.to_bytes`, fixed length 3379 bytes)::

      b"WVHS" || 0x01 (format) || 0x01 (suite)
      || ed25519 signature (64) || ml-dsa-65 signature (3309)

  The halves have fixed lengths, so a truncated, extended or re-spliced
  signature is rejected before or during verification.
* Public key as JSON (:meth:`HybridVerifyKey.to_dict`)::

      {"format": "weightvault.hybrid-verify-key/v1",
       "key_id": str, "version": int, "keyid": hex fingerprint,
       "algorithm": "ed25519+ml-dsa-65",
       "public_keys": {"ed25519": base64, "ml-dsa-65": base64}}

No object in this module can be pickled, and no ``repr`` shows key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "ALGORITHM",
    "ED25519",
    "ML_DSA_65",
    "Ed25519PublicKey",
    "HybridSignature",
    "HybridSigningKey",
    "HybridVerifyKey",
]

ED25519: Final = "ed25519"
ML_DSA_65: Final = "ml-dsa-65"
ALGORITHM: Final = f"{ED25519}+{ML_DSA_65}"
VERIFY_KEY_FORMAT: Final = "weightvault.hybrid-verify-key/v1"

_FORMAT_VERSION: Final = 1
_SUITE_ED25519_MLDSA65: Final = 1
_PUBLIC_MAGIC: Final = b"WVPK"
_PRIVATE_MAGIC: Final = b"WVSK"
_SIGNATURE_MAGIC: Final = b"WVHS"
_HEADER_SIZE: Final = 6

_SIGN_LABEL: Final = b"weightvault/v1/hybrid-signature"
_SIGN_PREFIX: Final = _SIGN_LABEL + b"\x00"
# What the Ed25519 half alone may sign (OpenSSF model signing): only a DSSE
# pre-authentication encoding, which never starts like _SIGN_PREFIX, so neither
# kind of signature can stand for the other.
_DSSE_PAE_PREFIX: Final = b"DSSEv1 "

ED25519_PUBLIC_SIZE: Final = 32
ED25519_SEED_SIZE: Final = 32
ED25519_SIGNATURE_SIZE: Final = 64
MLDSA65_PUBLIC_SIZE: Final = 1952
MLDSA65_SEED_SIZE: Final = 32
MLDSA65_SIGNATURE_SIZE: Final = 3309

PRIVATE_KEY_SIZE: Final = _HEADER_SIZE + ED25519_SEED_SIZE + MLDSA65_SEED_SIZE
SIGNATURE_SIZE: Final = _HEADER_SIZE + ED25519_SIGNATURE_SIZE + MLDSA65_SIGNATURE_SIZE
_MAX_KEY_ID_LEN: Final = 128


def _header(magic: bytes) -> bytes:
    return magic + bytes((_FORMAT_VERSION, _SUITE_ED25519_MLDSA65))


def _check_key_id(key_id: object) -> str:
    if (
        not isinstance(key_id, str)
        or not key_id
        or len(key_id) > _MAX_KEY_ID_LEN
        or not key_id.isprintable()
        or key_id != key_id.strip()
    ):
        raise InvalidInputError(
            f"signing key id must be a printable string of 1 to {_MAX_KEY_ID_LEN} characters"
        )
    return key_id


def _check_version(version: object) -> int:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInputError("signing key version must be an integer >= 1")
    return version


def _no_pickle(obj: object) -> NoReturn:
    raise TypeError(f"{type(obj).__name__} cannot be pickled or copied by reduction")


def _b64decode_strict(value: object, what: str) -> bytes:
    """Decode canonical standard base64 (with padding) or raise InvalidInputError."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidInputError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise InvalidInputError(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True, slots=True)
class HybridSignature:
    """One hybrid signature: an Ed25519 half and an ML-DSA-65 half.

    ``keyid`` is the fingerprint of the verify key that made it. Both halves
    are public values; equality compares all three fields.
    """

    keyid: str
    ed25519: bytes
    ml_dsa_65: bytes

    def to_bytes(self) -> bytes:
        """Encode as ``b"WVHS" 01 01 || ed25519 (64) || ml-dsa-65 (3309)``."""
        if (
            len(self.ed25519) != ED25519_SIGNATURE_SIZE
            or len(self.ml_dsa_65) != MLDSA65_SIGNATURE_SIZE
        ):
            raise InvalidInputError("hybrid signature halves have the wrong length")
        return _header(_SIGNATURE_MAGIC) + self.ed25519 + self.ml_dsa_65

    @classmethod
    def from_bytes(cls, keyid: str, data: bytes) -> HybridSignature:
        """Decode :meth:`to_bytes` output; raise IntegrityError if malformed.

        A signature missing a half, with an extra half or of another suite has
        the wrong length or header and is refused here.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise IntegrityError("hybrid signature must be bytes")
        raw = bytes(data)
        if len(raw) != SIGNATURE_SIZE or not hmac.compare_digest(
            raw[:_HEADER_SIZE], _header(_SIGNATURE_MAGIC)
        ):
            raise IntegrityError(
                f"malformed hybrid signature: expected {SIGNATURE_SIZE} bytes of suite {ALGORITHM}"
            )
        ed_end = _HEADER_SIZE + ED25519_SIGNATURE_SIZE
        return cls(keyid=keyid, ed25519=raw[_HEADER_SIZE:ed_end], ml_dsa_65=raw[ed_end:])

    def __repr__(self) -> str:
        return f"HybridSignature(keyid={self.keyid!r}, algorithm={ALGORITHM!r})"


class HybridVerifyKey:
    """The public half of a :class:`HybridSigningKey`.

    Old verify keys stay usable: a key id and version never change meaning,
    so signatures made before a rotation still verify with the old key.
    """

    __slots__ = ("_ed25519", "_key_id", "_keyid", "_mldsa", "_raw", "_version")

    def __init__(
        self,
        key_id: str,
        version: int,
        ed25519_public: ed25519.Ed25519PublicKey,
        ml_dsa_65_public: mldsa.MLDSA65PublicKey,
    ) -> None:
        self._key_id = _check_key_id(key_id)
        self._version = _check_version(version)
        self._ed25519 = ed25519_public
        self._mldsa = ml_dsa_65_public
        self._raw = (
            _header(_PUBLIC_MAGIC)
            + ed25519_public.public_bytes_raw()
            + ml_dsa_65_public.public_bytes_raw()
        )
        self._keyid = hashlib.sha256(self._raw).hexdigest()

    @property
    def key_id(self) -> str:
        """The vault's name for this signing key (stable across versions)."""
        return self._key_id

    @property
    def version(self) -> int:
        """The key's version; a rotation makes a new version."""
        return self._version

    @property
    def keyid(self) -> str:
        """Lowercase hex SHA-256 of :meth:`public_bytes` (the DSSE keyid)."""
        return self._keyid

    @property
    def algorithm(self) -> str:
        """The hybrid suite name, ``"ed25519+ml-dsa-65"``."""
        return ALGORITHM

    def public_bytes(self) -> bytes:
        """The canonical public key encoding (fixed length, see module doc)."""
        return self._raw

    def ed25519_public_pem(self) -> bytes:
        """The Ed25519 half as a SubjectPublicKeyInfo PEM (what OMS verifiers take)."""
        return self._ed25519.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_public_bytes(cls, key_id: str, version: int, data: bytes) -> HybridVerifyKey:
        """Load :meth:`public_bytes` output; raise InvalidInputError if malformed."""
        expected = _HEADER_SIZE + ED25519_PUBLIC_SIZE + MLDSA65_PUBLIC_SIZE
        raw = bytes(data)
        if len(raw) != expected or raw[:_HEADER_SIZE] != _header(_PUBLIC_MAGIC):
            raise InvalidInputError(f"malformed {ALGORITHM} public key encoding")
        ed_end = _HEADER_SIZE + ED25519_PUBLIC_SIZE
        return cls._from_raw_parts(key_id, version, raw[_HEADER_SIZE:ed_end], raw[ed_end:])

    @classmethod
    def _from_raw_parts(
        cls, key_id: str, version: int, ed_raw: bytes, mldsa_raw: bytes
    ) -> HybridVerifyKey:
        if len(ed_raw) != ED25519_PUBLIC_SIZE or len(mldsa_raw) != MLDSA65_PUBLIC_SIZE:
            raise InvalidInputError(f"{ALGORITHM} public key halves have the wrong length")
        try:
            ed_pub = ed25519.Ed25519PublicKey.from_public_bytes(ed_raw)
            ml_pub = mldsa.MLDSA65PublicKey.from_public_bytes(mldsa_raw)
        except (ValueError, TypeError):
            raise InvalidInputError(f"invalid {ALGORITHM} public key") from None
        return cls(key_id, version, ed_pub, ml_pub)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description: ids, algorithm names, both public keys in base64."""
        return {
            "format": VERIFY_KEY_FORMAT,
            "key_id": self._key_id,
            "version": self._version,
            "keyid": self._keyid,
            "algorithm": ALGORITHM,
            "public_keys": {
                ED25519: base64.b64encode(self._ed25519.public_bytes_raw()).decode("ascii"),
                ML_DSA_65: base64.b64encode(self._mldsa.public_bytes_raw()).decode("ascii"),
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> HybridVerifyKey:
        """Load :meth:`to_dict` output.

        Raises InvalidInputError when the document is malformed and
        IntegrityError when its ``keyid`` does not match its public keys.
        """
        if not isinstance(data, dict):
            raise InvalidInputError("verify key document must be a JSON object")
        allowed = {"format", "key_id", "version", "keyid", "algorithm", "public_keys"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidInputError(f"verify key document has unknown field {unknown[0]!r}")
        if data.get("format") != VERIFY_KEY_FORMAT:
            raise InvalidInputError(f"verify key document format must be {VERIFY_KEY_FORMAT!r}")
        if data.get("algorithm") != ALGORITHM:
            raise InvalidInputError(f"verify key algorithm must be {ALGORITHM!r}")
        keys = data.get("public_keys")
        if not isinstance(keys, dict) or set(keys) != {ED25519, ML_DSA_65}:
            raise InvalidInputError(
                f"verify key public_keys must hold exactly {ED25519!r} and {ML_DSA_65!r}"
            )
        key = cls._from_raw_parts(
            _check_key_id(data.get("key_id")),
            _check_version(data.get("version")),
            _b64decode_strict(keys[ED25519], f"{ED25519} public key"),
            _b64decode_strict(keys[ML_DSA_65], f"{ML_DSA_65} public key"),
        )
        claimed = data.get("keyid")
        if claimed is not None and (
            not isinstance(claimed, str) or not hmac.compare_digest(claimed, key.keyid)
        ):
            raise IntegrityError("verify key keyid does not match its public keys")
        return key

    def is_valid(self, message: bytes, signature: HybridSignature) -> bool:
        """Return True if both halves of ``signature`` verify over ``message``."""
        try:
            self.verify(message, signature)
        except IntegrityError:
            return False
        return True

    def verify(self, message: bytes, signature: HybridSignature) -> None:
        """Raise IntegrityError unless BOTH the Ed25519 and ML-DSA-65 halves verify.

        Both halves are always checked (no early exit on the first failure),
        and the error does not say which half failed.
        """
        if not isinstance(signature, HybridSignature):
            raise IntegrityError("not a hybrid signature")
        if not isinstance(signature.keyid, str) or not hmac.compare_digest(
            signature.keyid, self._keyid
        ):
            raise IntegrityError(f"signature was not made by key {self._key_id}")
        signed = _signed_bytes(self._raw, message)
        ed_ok = True
        ml_ok = True
        try:
            self._ed25519.verify(bytes(signature.ed25519), signed)
        except (InvalidSignature, ValueError, TypeError):
            ed_ok = False
        try:
            self._mldsa.verify(bytes(signature.ml_dsa_65), signed, _SIGN_LABEL)
        except (InvalidSignature, ValueError, TypeError):
            ml_ok = False
        if not (ed_ok and ml_ok):
            raise IntegrityError(
                f"hybrid signature by key {self._key_id} v{self._version} is invalid"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HybridVerifyKey):
            return NotImplemented
        return (self._key_id, self._version, self._raw) == (
            other._key_id,
            other._version,
            other._raw,
        )

    def __hash__(self) -> int:
        return hash((self._key_id, self._version, self._keyid))

    def __repr__(self) -> str:
        return (
            f"HybridVerifyKey(key_id={self._key_id!r}, version={self._version}, "
            f"keyid={self._keyid[:16]!r}..., algorithm={ALGORITHM!r})"
        )

    def __reduce__(self) -> NoReturn:
        _no_pickle(self)


def _signed_bytes(public_raw: bytes, message: bytes) -> bytes:
    if not isinstance(message, bytes | bytearray | memoryview):
        raise InvalidInputError("message to sign or verify must be bytes")
    return _SIGN_PREFIX + hashlib.sha256(public_raw).digest() + bytes(message)


class HybridSigningKey:
    """An Ed25519 + ML-DSA-65 private key pair with a vault key id and version.

    Its ``repr`` names the key id, version and public fingerprint only; it
    cannot be pickled. Use :meth:`private_bytes` to store it, sealed, in the
    keystore.
    """

    __slots__ = ("_ed25519", "_mldsa", "_public")

    def __init__(
        self,
        key_id: str,
        version: int,
        ed25519_private: ed25519.Ed25519PrivateKey,
        ml_dsa_65_private: mldsa.MLDSA65PrivateKey,
    ) -> None:
        self._ed25519 = ed25519_private
        self._mldsa = ml_dsa_65_private
        self._public = HybridVerifyKey(
            key_id, version, ed25519_private.public_key(), ml_dsa_65_private.public_key()
        )

    @classmethod
    def generate(cls, key_id: str, version: int) -> HybridSigningKey:
        """Make a new random hybrid key (both halves from the OS CSPRNG)."""
        _check_key_id(key_id)
        _check_version(version)
        return cls(
            key_id,
            version,
            ed25519.Ed25519PrivateKey.generate(),
            mldsa.MLDSA65PrivateKey.generate(),
        )

    @property
    def key_id(self) -> str:
        """The vault's name for this signing key."""
        return self._public.key_id

    @property
    def version(self) -> int:
        """The key's version."""
        return self._public.version

    @property
    def keyid(self) -> str:
        """Fingerprint of the public key (see :attr:`HybridVerifyKey.keyid`)."""
        return self._public.keyid

    def public_key(self) -> HybridVerifyKey:
        """The verify key to publish."""
        return self._public

    def private_bytes(self) -> bytes:
        """Secret 70-byte encoding ``b"WVSK" 01 01 || ed25519 seed || ml-dsa-65 seed``.

        This is key material: only ever store it encrypted (the keystore).
        The key id and version are not inside; the keystore records them.
        """
        return (
            _header(_PRIVATE_MAGIC)
            + self._ed25519.private_bytes_raw()
            + self._mldsa.private_bytes_raw()
        )

    @classmethod
    def from_private_bytes(cls, key_id: str, version: int, data: bytes) -> HybridSigningKey:
        """Load :meth:`private_bytes` output; raise InvalidInputError if malformed.

        The message never contains any of ``data``.
        """
        _check_key_id(key_id)
        _check_version(version)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInputError("private signing key must be bytes")
        raw = bytes(data)
        if len(raw) != PRIVATE_KEY_SIZE or not hmac.compare_digest(
            raw[:_HEADER_SIZE], _header(_PRIVATE_MAGIC)
        ):
            raise InvalidInputError(
                f"malformed {ALGORITHM} private key encoding for key {key_id} v{version}"
            )
        ed_end = _HEADER_SIZE + ED25519_SEED_SIZE
        try:
            ed_priv = ed25519.Ed25519PrivateKey.from_private_bytes(raw[_HEADER_SIZE:ed_end])
            ml_priv = mldsa.MLDSA65PrivateKey.from_seed_bytes(raw[ed_end:])
        except (ValueError, TypeError):
            raise InvalidInputError(
                f"invalid {ALGORITHM} private key for key {key_id} v{version}"
            ) from None
        return cls(key_id, version, ed_priv, ml_priv)

    def sign(self, message: bytes) -> HybridSignature:
        """Sign ``message`` with both halves (see the module doc for what is signed)."""
        signed = _signed_bytes(self._public.public_bytes(), message)
        return HybridSignature(
            keyid=self._public.keyid,
            ed25519=self._ed25519.sign(signed),
            ml_dsa_65=self._mldsa.sign(signed, _SIGN_LABEL),
        )

    def sign_dsse_ed25519(self, pae: bytes) -> bytes:
        """The Ed25519 half alone over a DSSE pre-authentication encoding.

        For OpenSSF model signing, whose verifiers know Ed25519 but not the
        hybrid suite; anything but a ``DSSEv1 `` PAE is refused, so these
        signatures never collide with a hybrid half (module doc).
        """
        if not isinstance(pae, bytes) or not pae.startswith(_DSSE_PAE_PREFIX):
            raise InvalidInputError("only a DSSE pre-authentication encoding is signed alone")
        return self._ed25519.sign(pae)

    def __repr__(self) -> str:
        return (
            f"HybridSigningKey(key_id={self.key_id!r}, version={self.version}, "
            f"keyid={self.keyid[:16]!r}..., algorithm={ALGORITHM!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        _no_pickle(self)

    def __eq__(self, other: object) -> bool:
        # Identity of a private key is its public key; never compare secrets.
        if not isinstance(other, HybridSigningKey):
            return NotImplemented
        return self._public == other._public

    def __hash__(self) -> int:
        return hash(self._public)


class Ed25519PublicKey:
    """An Ed25519 public key read from PEM: what an OMS verifier checks signatures with."""

    def __init__(self, public_key_pem: bytes) -> None:
        """InvalidInputError when ``public_key_pem`` is no Ed25519 public key in PEM."""
        try:
            key = serialization.load_pem_public_key(public_key_pem)
        except ValueError:
            raise InvalidInputError("the public key is not a PEM public key") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise InvalidInputError("the public key is not an Ed25519 key")
        self._key = key

    def pem(self) -> bytes:
        """The key as SubjectPublicKeyInfo PEM (normalised)."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True
