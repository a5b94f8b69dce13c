"""DSSE envelopes (https://github.com/secure-systems-lab/dsse) with hybrid signatures.

The envelope is plain DSSE v1 JSON::

    {"payloadType": "application/vnd.in-toto+json",
     "payload": base64(payload),
     "signatures": [{"keyid": <hex fingerprint>, "sig": base64(hybrid signature)}]}

and what is signed is the DSSE pre-authentication encoding::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

with ``LEN`` the ASCII decimal byte length and ``SP`` one space.

How a hybrid signature sits in ``signatures``
---------------------------------------------
One entry per hybrid key. ``keyid`` is the key's fingerprint
(:attr:`~weightvault.crypto.signing.HybridVerifyKey.keyid`) and ``sig`` is
the base64 of :meth:`~weightvault.crypto.signing.HybridSignature.to_bytes`, a
fixed-length structured concatenation::

    b"WVHS" 0x01 0x01 || Ed25519 signature (64) || ML-DSA-65 signature (3309)

So the envelope keeps the exact DSSE shape (any DSSE tool can parse it), and a
generic verifier cannot mistake one half for a whole signature. Removing
either half changes the length and is refused; replacing either half (say,
with the same half from another key's signature) fails that half's check, and
verification requires both halves.

Verification policy (fail closed)
---------------------------------
* the envelope has exactly the three DSSE fields, the payload type is the one
  expected, and every base64 string is canonical standard base64 with padding
  (URL-safe or unpadded base64, which DSSE also allows, is refused here);
* every signature entry must name a trusted key and verify; an unknown keyid,
  a duplicate keyid or any invalid entry refuses the whole envelope;
* at least ``threshold`` distinct trusted keys must have signed (default 1).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any, Final

from weightvault.crypto.signing import HybridSignature, HybridSigningKey, HybridVerifyKey
from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "pae",
    "sign_envelope",
    "trust_map",
    "verify_envelope",
]

IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
MAX_SIGNATURES: Final = 16
_ENVELOPE_FIELDS: Final = frozenset({"payloadType", "payload", "signatures"})
_SIGNATURE_FIELDS: Final = frozenset({"keyid", "sig"})


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise IntegrityError(f"DSSE {what} must be a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise IntegrityError(f"DSSE {what} is not valid base64") from None
    if _b64encode(raw) != value:
        raise IntegrityError(f"DSSE {what} is not canonical base64")
    return raw


def _check_payload_type(payload_type: object) -> str:
    if not isinstance(payload_type, str) or not payload_type or not payload_type.isprintable():
        raise InvalidInputError("DSSE payload type must be a non-empty printable string")
    return payload_type


def sign_envelope(payload: bytes, payload_type: str, key: HybridSigningKey) -> dict[str, Any]:
    """Sign ``payload`` with a hybrid key and return a DSSE envelope (a JSON-safe dict)."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InvalidInputError("DSSE payload must be bytes")
    body = bytes(payload)
    ptype = _check_payload_type(payload_type)
    signature = key.sign(pae(ptype, body))
    return {
        "payloadType": ptype,
        "payload": _b64encode(body),
        "signatures": [{"keyid": signature.keyid, "sig": _b64encode(signature.to_bytes())}],
    }


def trust_map(keys: Iterable[HybridVerifyKey]) -> dict[str, HybridVerifyKey]:
    """Index verify keys by fingerprint, the form :func:`verify_envelope` expects."""
    return {key.keyid: key for key in keys}


def verify_envelope(
    envelope: Mapping[str, Any],
    trusted: Mapping[str, HybridVerifyKey],
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
    *,
    threshold: int = 1,
) -> bytes:
    """Verify a DSSE envelope and return its payload.

    ``trusted`` maps key fingerprints to verify keys (see :func:`trust_map`).
    Raises IntegrityError on any failure: malformed envelope, bad base64,
    wrong payload type, unknown or duplicate keyid, a hybrid signature with a
    half missing or replaced, or fewer than ``threshold`` trusted signers.
    """
    if threshold < 1:
        raise InvalidInputError("DSSE signature threshold must be at least 1")
    if not isinstance(envelope, Mapping) or set(envelope) != _ENVELOPE_FIELDS:
        raise IntegrityError("malformed DSSE envelope: expected payloadType, payload, signatures")
    ptype = envelope["payloadType"]
    if not isinstance(ptype, str) or ptype != payload_type:
        raise IntegrityError(f"DSSE payload type is not {payload_type!r}")
    payload = _b64decode(envelope["payload"], "payload")
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or not signatures:
        raise IntegrityError("DSSE envelope has no signatures")
    if len(signatures) > MAX_SIGNATURES:
        raise IntegrityError(f"DSSE envelope has more than {MAX_SIGNATURES} signatures")

    message = pae(ptype, payload)
    seen: set[str] = set()
    for index, entry in enumerate(signatures):
        if not isinstance(entry, Mapping) or set(entry) != _SIGNATURE_FIELDS:
            raise IntegrityError(f"malformed DSSE signature entry {index}")
        keyid = entry["keyid"]
        if not isinstance(keyid, str):
            raise IntegrityError(f"DSSE signature entry {index} has a non-string keyid")
        if keyid in seen:
            raise IntegrityError(f"DSSE signature entry {index} repeats a keyid")
        seen.add(keyid)
        key = trusted.get(keyid)
        if key is None or key.keyid != keyid:
            raise IntegrityError(f"DSSE signature entry {index} is by an untrusted key")
        raw = _b64decode(entry["sig"], f"signature entry {index}")
        key.verify(message, HybridSignature.from_bytes(keyid, raw))
    if len(seen) < threshold:
        raise IntegrityError(
            f"DSSE envelope has {len(seen)} trusted signature(s), {threshold} required"
        )
    return payload
