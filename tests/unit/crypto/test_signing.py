"""Hybrid Ed25519 + ML-DSA-65 signatures: both halves must verify."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import pickle

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa
from hypothesis import given, settings
from hypothesis import strategies as st

from weightvault.crypto.signing import (
    ALGORITHM,
    ED25519,
    ML_DSA_65,
    PRIVATE_KEY_SIZE,
    SIGNATURE_SIZE,
    HybridSignature,
    HybridSigningKey,
    HybridVerifyKey,
)
from weightvault.errors import IntegrityError, InvalidInputError

MESSAGE = b"weightvault: artifact 0001"


@pytest.fixture(scope="module")
def key() -> HybridSigningKey:
    return HybridSigningKey.generate("release-signing", 1)


@pytest.fixture(scope="module")
def other_key() -> HybridSigningKey:
    return HybridSigningKey.generate("release-signing", 2)


@pytest.fixture(scope="module")
def signature(key: HybridSigningKey) -> HybridSignature:
    return key.sign(MESSAGE)


def _flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


def test_round_trip(key: HybridSigningKey, signature: HybridSignature) -> None:
    public = key.public_key()
    public.verify(MESSAGE, signature)
    assert public.is_valid(MESSAGE, signature)
    assert signature.keyid == public.keyid == key.keyid
    assert len(signature.ed25519) == 64
    assert len(signature.ml_dsa_65) == 3309
    assert len(signature.to_bytes()) == SIGNATURE_SIZE


def test_every_payload_byte_matters(key: HybridSigningKey, signature: HybridSignature) -> None:
    public = key.public_key()
    for index in range(len(MESSAGE)):
        for mask in (0x01, 0x80):
            with pytest.raises(IntegrityError):
                public.verify(_flip(MESSAGE, index, mask), signature)
    with pytest.raises(IntegrityError):
        public.verify(MESSAGE + b"\x00", signature)
    with pytest.raises(IntegrityError):
        public.verify(MESSAGE[:-1], signature)


def test_every_ed25519_byte_matters(key: HybridSigningKey, signature: HybridSignature) -> None:
    public = key.public_key()
    for index in range(len(signature.ed25519)):
        bad = HybridSignature(signature.keyid, _flip(signature.ed25519, index), signature.ml_dsa_65)
        assert not public.is_valid(MESSAGE, bad)


def test_every_ml_dsa_byte_matters(key: HybridSigningKey, signature: HybridSignature) -> None:
    public = key.public_key()
    for index in range(len(signature.ml_dsa_65)):
        bad = HybridSignature(signature.keyid, signature.ed25519, _flip(signature.ml_dsa_65, index))
        assert not public.is_valid(MESSAGE, bad)


def test_every_encoded_signature_byte_matters(
    key: HybridSigningKey, signature: HybridSignature
) -> None:
    public = key.public_key()
    encoded = signature.to_bytes()
    for index in range(len(encoded)):
        try:
            decoded = HybridSignature.from_bytes(signature.keyid, _flip(encoded, index))
        except IntegrityError:
            continue  # header byte: refused while decoding
        with pytest.raises(IntegrityError):
            public.verify(MESSAGE, decoded)


@settings(max_examples=50, deadline=None)
@given(message=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_single_byte_change_fails(
    key: HybridSigningKey, message: bytes, data: st.DataObject
) -> None:
    sig = key.sign(message)
    public = key.public_key()
    public.verify(message, sig)
    index = data.draw(st.integers(0, len(message) - 1))
    mask = data.draw(st.integers(1, 255))
    assert not public.is_valid(_flip(message, index, mask), sig)


def test_missing_half_fails(key: HybridSigningKey, signature: HybridSignature) -> None:
    public = key.public_key()
    for bad in (
        HybridSignature(signature.keyid, b"", signature.ml_dsa_65),
        HybridSignature(signature.keyid, signature.ed25519, b""),
        HybridSignature(signature.keyid, b"\x00" * 64, signature.ml_dsa_65),
        HybridSignature(signature.keyid, signature.ed25519, b"\x00" * 3309),
    ):
        with pytest.raises(IntegrityError):
            public.verify(MESSAGE, bad)
    encoded = signature.to_bytes()
    header, ed_half, ml_half = encoded[:6], encoded[6:70], encoded[70:]
    for truncated in (header + ml_half, header + ed_half, encoded[:-1], encoded + b"\x00", b""):
        with pytest.raises(IntegrityError):
            HybridSignature.from_bytes(signature.keyid, truncated)


def test_half_replaced_by_other_keys_half_fails(
    key: HybridSigningKey, other_key: HybridSigningKey, signature: HybridSignature
) -> None:
    public = key.public_key()
    foreign = other_key.sign(MESSAGE)
    for bad in (
        HybridSignature(signature.keyid, foreign.ed25519, signature.ml_dsa_65),
        HybridSignature(signature.keyid, signature.ed25519, foreign.ml_dsa_65),
        HybridSignature(signature.keyid, foreign.ed25519, foreign.ml_dsa_65),
    ):
        with pytest.raises(IntegrityError):
            public.verify(MESSAGE, bad)
    # The other key's whole signature, under its own keyid, is not ours either.
    with pytest.raises(IntegrityError):
        public.verify(MESSAGE, foreign)


def test_half_from_same_key_other_message_fails(
    key: HybridSigningKey, signature: HybridSignature
) -> None:
    public = key.public_key()
    other = key.sign(b"another message")
    for bad in (
        HybridSignature(signature.keyid, other.ed25519, signature.ml_dsa_65),
        HybridSignature(signature.keyid, signature.ed25519, other.ml_dsa_65),
    ):
        with pytest.raises(IntegrityError):
            public.verify(MESSAGE, bad)


def test_halves_are_domain_separated(key: HybridSigningKey, signature: HybridSignature) -> None:
    """Neither half is a plain signature of the message (no stripping into one algorithm)."""
    doc = key.public_key().to_dict()
    ed_pub = ed25519.Ed25519PublicKey.from_public_bytes(
        base64.b64decode(doc["public_keys"][ED25519])
    )
    ml_pub = mldsa.MLDSA65PublicKey.from_public_bytes(
        base64.b64decode(doc["public_keys"][ML_DSA_65])
    )
    with pytest.raises(InvalidSignature):
        ed_pub.verify(signature.ed25519, MESSAGE)
    with pytest.raises(InvalidSignature):
        ml_pub.verify(signature.ml_dsa_65, MESSAGE)


def test_private_bytes_round_trip(key: HybridSigningKey, signature: HybridSignature) -> None:
    data = key.private_bytes()
    assert len(data) == PRIVATE_KEY_SIZE == 70
    assert data[:6] == b"WVSK\x01\x01"
    loaded = HybridSigningKey.from_private_bytes(key.key_id, key.version, data)
    assert loaded.public_key() == key.public_key()
    assert loaded == key
    loaded.public_key().verify(MESSAGE, signature)
    key.public_key().verify(MESSAGE, loaded.sign(MESSAGE))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[:-1],
        lambda d: d + b"\x00",
        lambda d: b"XXSK" + d[4:],
        lambda d: d[:4] + b"\x02" + d[5:],
        lambda d: d[:5] + b"\x02" + d[6:],
        lambda d: b"",
    ],
)
def test_private_bytes_malformed(key: HybridSigningKey, mutate: object) -> None:
    data = key.private_bytes()
    bad = mutate(data)  # type: ignore[operator]
    with pytest.raises(InvalidInputError) as info:
        HybridSigningKey.from_private_bytes(key.key_id, key.version, bad)
    assert data[6:].hex() not in str(info.value)


def test_repr_and_pickle_never_show_material(key: HybridSigningKey) -> None:
    secret = key.private_bytes()
    for text in (repr(key), str(key), repr(key.public_key()), repr(key.sign(b"x"))):
        assert secret[6:38].hex() not in text
        assert secret[38:].hex() not in text
        assert base64.b64encode(secret[6:38]).decode() not in text
        assert "release-signing" in text or "HybridSignature" in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.copy(key)
    with pytest.raises(TypeError):
        pickle.dumps(key.public_key())


def test_verify_key_dict_round_trip(key: HybridSigningKey) -> None:
    public = key.public_key()
    doc = json.loads(json.dumps(public.to_dict()))
    assert doc["algorithm"] == ALGORITHM
    assert doc["key_id"] == "release-signing"
    assert doc["version"] == 1
    assert set(doc["public_keys"]) == {"ed25519", "ml-dsa-65"}
    assert doc["keyid"] == hashlib.sha256(public.public_bytes()).hexdigest()
    loaded = HybridVerifyKey.from_dict(doc)
    assert loaded == public
    assert loaded.keyid == public.keyid
    assert HybridVerifyKey.from_public_bytes("release-signing", 1, public.public_bytes()) == public


def test_keyid_depends_on_both_public_keys(
    key: HybridSigningKey, other_key: HybridSigningKey
) -> None:
    doc = key.public_key().to_dict()
    other = other_key.public_key().to_dict()
    for alg in (ED25519, ML_DSA_65):
        mixed = copy.deepcopy(doc)
        mixed["public_keys"][alg] = other["public_keys"][alg]
        with pytest.raises(IntegrityError):
            HybridVerifyKey.from_dict(mixed)
        del mixed["keyid"]
        assert HybridVerifyKey.from_dict(mixed).keyid not in (doc["keyid"], other["keyid"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("algorithm", "ed25519"),
        ("format", "other"),
        ("version", 0),
        ("version", True),
        ("key_id", ""),
        ("key_id", "a\nb"),
        ("unexpected", 1),
    ],
)
def test_verify_key_dict_malformed(key: HybridSigningKey, field: str, value: object) -> None:
    doc = key.public_key().to_dict()
    doc[field] = value
    with pytest.raises(InvalidInputError):
        HybridVerifyKey.from_dict(doc)


@pytest.mark.parametrize(
    "bad_b64",
    ["not base64!", "AAAA", "QUJD", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "=="],
)
def test_verify_key_dict_bad_public_key(key: HybridSigningKey, bad_b64: str) -> None:
    doc = key.public_key().to_dict()
    del doc["keyid"]
    doc["public_keys"][ED25519] = bad_b64
    with pytest.raises(InvalidInputError):
        HybridVerifyKey.from_dict(doc)


def test_verify_key_dict_keyid_mismatch(key: HybridSigningKey) -> None:
    doc = key.public_key().to_dict()
    doc["keyid"] = "0" * 64
    with pytest.raises(IntegrityError):
        HybridVerifyKey.from_dict(doc)


def test_rotation_old_keys_still_verify_old_signatures() -> None:
    """Table-driven: each version verifies its own signatures and only those."""
    keys = [HybridSigningKey.generate("model-signing", v) for v in (1, 2, 3)]
    published = {k.version: HybridVerifyKey.from_dict(k.public_key().to_dict()) for k in keys}
    signatures = {k.version: k.sign(b"statement v%d" % k.version) for k in keys}
    for signer_version, sig in signatures.items():
        message = b"statement v%d" % signer_version
        for verifier_version, public in published.items():
            assert public.is_valid(message, sig) is (signer_version == verifier_version)


@pytest.mark.parametrize(
    ("key_id", "version"),
    [("", 1), (" padded", 1), ("x" * 129, 1), ("ok", 0), ("ok", -1), ("ok", True), (3, 1)],
)
def test_generate_rejects_bad_ids(key_id: object, version: object) -> None:
    with pytest.raises(InvalidInputError):
        HybridSigningKey.generate(key_id, version)  # type: ignore[arg-type]
