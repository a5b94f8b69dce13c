"""Signed notes (c2sp.org/signed-note) and checkpoint cosignatures (c2sp.org/tlog-cosignature).

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <name> base64(key id || signature)``. Three signature types are here:

- ``0x01`` Ed25519 over the note text (signed-note), the log's own signature;
- ``0x04`` timestamped Ed25519 cosignatures over ``cosignature/v1``, a time line
  and the checkpoint body (tlog-cosignature);
- ``0x06`` timestamped ML-DSA-44 cosignatures over the binary ``subtree/v1``
  message (tlog-cosignature), the post-quantum signature the vault also requires.

Key ids are ``SHA-256(name || 0x0A || type || public key)[:4]``; verifier keys
(vkeys) are ``<name>+<hex id>+<base64(type || public key)>``. Verification takes
the verifiers the caller trusts and ignores signature lines of unknown keys, as
the spec requires; every failure is a :class:`NoteError` naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "COSIGNATURE_ED25519",
    "COSIGNATURE_MLDSA44",
    "ED25519",
    "Ed25519CosignatureVerifier",
    "Ed25519Cosigner",
    "Ed25519NoteSigner",
    "Ed25519NoteVerifier",
    "MLDSA44CosignatureVerifier",
    "MLDSA44Cosigner",
    "Note",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "Signature",
    "checkpoint_fields",
    "key_id",
    "parse_note",
    "sign_note",
    "verifier_from_vkey",
    "verify_note",
]

ED25519: Final = 0x01
COSIGNATURE_ED25519: Final = 0x04
COSIGNATURE_MLDSA44: Final = 0x06
_DASH: Final = "\u2014 "
_MAX_SIGNATURES: Final = 100
_MAX_NOTE_BYTES: Final = 1 << 20
_MLDSA44_PUBLIC: Final = 1312
_SUBTREE_LABEL: Final = b"subtree/v1\n\x00"


class NoteError(IntegrityError):
    """A signed note is malformed, or not signed by the keys required."""


@dataclass(frozen=True)
class Signature:
    """One signature line: the key's name, its 4-byte id and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """``— <name> base64(id || signature)`` with its newline."""
        blob = struct.pack(">I", self.key_id) + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class Note:
    """A parsed note: its text (ending in a newline) and every signature line."""

    text: str
    signatures: tuple[Signature, ...]

    def encode(self) -> bytes:
        """The note as it is stored and served."""
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


class NoteSigner(Protocol):
    """Anything that adds one signature line to a note."""

    name: str
    key_id: int

    def sign(self, text: str) -> bytes:
        """The signature bytes (after the key id) for ``text``."""
        ...


class NoteVerifier(Protocol):
    """Anything that checks signature lines of one key."""

    name: str
    key_id: int

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` (after the key id) is valid for ``text``."""
        ...


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes((sig_type,)) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise InvalidInputError(f"note key name {name!r} is empty or has a space or '+'")
    return name


def _vkey(name: str, sig_type: int, public_key: bytes) -> str:
    kid = key_id(name, sig_type, public_key)
    return f"{name}+{kid:08x}+{base64.b64encode(bytes((sig_type,)) + public_key).decode()}"


class Ed25519NoteSigner:
    """The log's signature (type 0x01): Ed25519 over the note text."""

    def __init__(self, name: str, private_key: ed25519.Ed25519PrivateKey) -> None:
        self.name = _check_name(name)
        self._key = private_key
        public = private_key.public_key().public_bytes_raw()
        self.key_id = key_id(name, ED25519, public)
        self.vkey = _vkey(name, ED25519, public)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Ed25519NoteSigner:
        """The signer of the 32-byte Ed25519 private key ``seed``."""
        return cls(name, ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, text: str) -> bytes:
        """Ed25519 over the UTF-8 note text."""
        return self._key.sign(text.encode())

    def __repr__(self) -> str:
        return f"Ed25519NoteSigner({self.vkey!r})"


class Ed25519NoteVerifier:
    """Checks type 0x01 signatures of one Ed25519 key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        self.name = _check_name(name)
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)
        self.key_id = key_id(name, ED25519, public_key)
        self.vkey = _vkey(name, ED25519, public_key)

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``text``."""
        try:
            self._key.verify(signature, text.encode())
        except InvalidSignature:
            return False
        return True


def checkpoint_fields(text: str) -> tuple[str, int, bytes]:
    """(origin, tree size, root hash) of a checkpoint's note text (c2sp tlog-checkpoint).

    NoteError unless it is origin, a decimal size without leading zeros and a
    base64 32-byte root, then optional non-empty extension lines, each ending in
    a newline.
    """
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise NoteError("a checkpoint is origin, tree size and root hash, each on its own line")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise NoteError(f"checkpoint tree size {size!r} is not a decimal without leading zeros")
    try:
        digest = base64.b64decode(root, validate=True)
    except binascii.Error as exc:
        raise NoteError("the checkpoint root hash is not base64") from exc
    if len(digest) != 32:
        raise NoteError("the checkpoint root hash is not 32 bytes")
    return origin, int(size), digest


def _subtree_message(cosigner: str, timestamp: int, text: str) -> bytes:
    origin, size, root = checkpoint_fields(text)
    name_b, origin_b = cosigner.encode(), origin.encode()
    if not 1 <= len(name_b) <= 255 or not 1 <= len(origin_b) <= 255:
        raise NoteError("cosigner name and log origin must be 1 to 255 bytes")
    return b"".join(
        (
            _SUBTREE_LABEL,
            bytes((len(name_b),)),
            name_b,
            struct.pack(">Q", timestamp),
            bytes((len(origin_b),)),
            origin_b,
            struct.pack(">QQ", 0, size),
            root,
        )
    )


def _v1_message(timestamp: int, text: str) -> bytes:
    checkpoint_fields(text)
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


class MLDSA44Cosigner:
    """Timestamped ML-DSA-44 checkpoint cosignatures (type 0x06)."""

    def __init__(
        self, name: str, private_key: mldsa.MLDSA44PrivateKey, clock: Callable[[], float]
    ) -> None:
        self.name = _check_name(name)
        self._key = private_key
        self._clock = clock
        public = private_key.public_key().public_bytes_raw()
        self.key_id = key_id(name, COSIGNATURE_MLDSA44, public)
        self.vkey = _vkey(name, COSIGNATURE_MLDSA44, public)

    @classmethod
    def from_seed(cls, name: str, seed: bytes, clock: Callable[[], float]) -> MLDSA44Cosigner:
        """The cosigner of the 32-byte ML-DSA-44 key generation ``seed``."""
        return cls(name, mldsa.MLDSA44PrivateKey.from_seed_bytes(seed), clock)

    def sign(self, text: str) -> bytes:
        """``u64 timestamp || ML-DSA-44(subtree/v1 message)``."""
        timestamp = int(self._clock())
        message = _subtree_message(self.name, timestamp, text)
        return struct.pack(">Q", timestamp) + self._key.sign(message)

    def __repr__(self) -> str:
        return f"MLDSA44Cosigner({self.name!r}, key id {self.key_id:08x})"


class MLDSA44CosignatureVerifier:
    """Checks type 0x06 cosignatures of one ML-DSA-44 key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != _MLDSA44_PUBLIC:
            raise InvalidInputError("an ML-DSA-44 public key is 1312 bytes")
        self.name = _check_name(name)
        self._key = mldsa.MLDSA44PublicKey.from_public_bytes(public_key)
        self.key_id = key_id(name, COSIGNATURE_MLDSA44, public_key)
        self.vkey = _vkey(name, COSIGNATURE_MLDSA44, public_key)
        self.last_timestamp: int | None = None

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` is this key's timestamped cosignature of the checkpoint."""
        if len(signature) < 8:
            return False
        (timestamp,) = struct.unpack(">Q", signature[:8])
        if timestamp >= 1 << 63:
            return False
        try:
            self._key.verify(signature[8:], _subtree_message(self.name, timestamp, text))
        except InvalidSignature:
            return False
        self.last_timestamp = timestamp
        return True


class Ed25519Cosigner:
    """Timestamped Ed25519 checkpoint cosignatures (type 0x04), as public witnesses make."""

    def __init__(
        self, name: str, private_key: ed25519.Ed25519PrivateKey, clock: Callable[[], float]
    ) -> None:
        self.name = _check_name(name)
        self._key = private_key
        self._clock = clock
        public = private_key.public_key().public_bytes_raw()
        self.key_id = key_id(name, COSIGNATURE_ED25519, public)
        self.vkey = _vkey(name, COSIGNATURE_ED25519, public)

    @classmethod
    def from_seed(cls, name: str, seed: bytes, clock: Callable[[], float]) -> Ed25519Cosigner:
        """The cosigner of a 32-byte Ed25519 seed (a private key as a witness stores it)."""
        if len(seed) != 32:
            raise InvalidInputError("an Ed25519 seed is 32 bytes")
        return cls(name, ed25519.Ed25519PrivateKey.from_private_bytes(seed), clock)

    def sign(self, text: str) -> bytes:
        """``u64 timestamp || Ed25519(cosignature/v1 message)``."""
        timestamp = int(self._clock())
        return struct.pack(">Q", timestamp) + self._key.sign(_v1_message(timestamp, text))


class Ed25519CosignatureVerifier:
    """Checks type 0x04 cosignatures of one Ed25519 key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        self.name = _check_name(name)
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)
        self.key_id = key_id(name, COSIGNATURE_ED25519, public_key)
        self.vkey = _vkey(name, COSIGNATURE_ED25519, public_key)
        self.last_timestamp: int | None = None

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` is this key's timestamped v1 cosignature of the checkpoint."""
        if len(signature) != 8 + 64:
            return False
        (timestamp,) = struct.unpack(">Q", signature[:8])
        if timestamp >= 1 << 63:
            return False
        try:
            self._key.verify(signature[8:], _v1_message(timestamp, text))
        except (InvalidSignature, NoteError):
            return False
        self.last_timestamp = timestamp
        return True


_VERIFIER_TYPES: Final[dict[int, Callable[[str, bytes], NoteVerifier]]] = {
    ED25519: Ed25519NoteVerifier,
    COSIGNATURE_ED25519: Ed25519CosignatureVerifier,
    COSIGNATURE_MLDSA44: MLDSA44CosignatureVerifier,
}


def verifier_from_vkey(vkey: str) -> NoteVerifier:
    """The verifier a ``<name>+<hex id>+<base64(type || key)>`` vkey names, its id checked."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise InvalidInputError("a verifier key is <name>+<hex key id>+<base64 key>")
    name, hex_id, material = parts
    if len(hex_id) != 8 or hex_id != hex_id.lower():
        raise InvalidInputError("a verifier key's id is 8 lowercase hex digits")
    try:
        raw = base64.b64decode(material, validate=True)
        wanted = int(hex_id, 16)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError("a verifier key is malformed") from exc
    if not raw or raw[0] not in _VERIFIER_TYPES:
        raise InvalidInputError("a verifier key has an unknown signature type")
    try:
        verifier: NoteVerifier = _VERIFIER_TYPES[raw[0]](name, raw[1:])
    except ValueError as exc:
        raise InvalidInputError("a verifier key's public key is malformed") from exc
    if verifier.key_id != wanted:
        raise InvalidInputError("a verifier key's id does not match its name and key")
    return verifier


def parse_note(data: bytes) -> Note:
    """Split a signed note into text and signature lines; NoteError if malformed."""
    if len(data) > _MAX_NOTE_BYTES:
        raise NoteError("the note is larger than 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("the note is not UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("the note contains a control character")
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise NoteError("the note has no blank line before its signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    signatures = []
    for line in sig_block.removesuffix("\n").split("\n"):
        if not line.startswith(_DASH):
            raise NoteError("a signature line does not start with an em dash and a space")
        name, _, blob_b64 = line[len(_DASH) :].partition(" ")
        try:
            blob = base64.b64decode(blob_b64, validate=True)
        except binascii.Error as exc:
            raise NoteError(f"the signature of {name!r} is not base64") from exc
        if not name or " " in blob_b64 or len(blob) < 5:
            raise NoteError("a signature line is malformed")
        signatures.append(Signature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
    if not signatures:
        raise NoteError("the note has no signatures")
    if len(signatures) > _MAX_SIGNATURES:
        raise NoteError(f"the note has more than {_MAX_SIGNATURES} signatures")
    return Note(body, tuple(signatures))


def sign_note(text: str, signers: list[NoteSigner], existing: tuple[Signature, ...] = ()) -> Note:
    """``text`` signed by every signer (after any ``existing`` lines of other keys)."""
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise InvalidInputError("note text must end in a newline and have no empty line")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise InvalidInputError("note text contains a control character")
    ours = {(s.name, s.key_id) for s in signers}
    kept = tuple(s for s in existing if (s.name, s.key_id) not in ours)
    added = tuple(Signature(s.name, s.key_id, s.sign(text)) for s in signers)
    return Note(text, kept + added)


def verify_note(data: bytes, required: list[NoteVerifier]) -> Note:
    """Parse ``data`` and require a valid signature by every verifier in ``required``.

    Signature lines of keys not in ``required`` are kept but not checked (the
    spec's "ignore unknown signatures"). A line of a required key that does not
    verify is an error, never skipped.
    """
    note = parse_note(data)
    for verifier in required:
        lines = [
            s for s in note.signatures if s.name == verifier.name and s.key_id == verifier.key_id
        ]
        if not lines:
            raise NoteError(f"the note is not signed by {verifier.name} ({verifier.key_id:08x})")
        if len(lines) > 1:
            raise NoteError(f"the note carries {verifier.name}'s signature more than once")
        if not verifier.verify(note.text, lines[0].signature):
            raise NoteError(f"the signature by {verifier.name} ({verifier.key_id:08x}) is invalid")
    return note
