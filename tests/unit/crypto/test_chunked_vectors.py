"""Wycheproof vectors for c2sp.org/chunked-encryption, Cobblestone-256."""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.conftest import REPO
from weightvault.crypto import chunked
from weightvault.errors import IntegrityError, VaultError

VECTORS = REPO / "tests" / "data" / "c2sp_chunked_encryption_aes_256_gcm_test.json"


def _cases() -> list[dict[str, Any]]:
    data = json.loads(VECTORS.read_text())
    assert data["algorithm"] == "Cobblestone-256"
    cases = [t for g in data["testGroups"] for t in g["tests"]]
    assert len(cases) == data["numberOfTests"] == 35
    return cases


class _Recorder(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"tc{c['tcId']}")
def test_vector(case: dict[str, Any]) -> None:
    key = bytes.fromhex(case["key"])
    ctx = bytes.fromhex(case["ctx"])
    ct = zlib.decompress(bytes.fromhex(case["ct"]))
    out = _Recorder()
    if case["result"] == "valid":
        n = chunked.decrypt(key, ctx, io.BytesIO(ct), out)
        assert n == case["msgLength"] == len(out.data)
        assert hashlib.sha512(out.data).hexdigest() == case["msgSha512"]
        assert chunked.plaintext_size(len(ct)) == n
        assert chunked.ciphertext_size(n) == len(ct)
        return
    with pytest.raises(IntegrityError):
        chunked.decrypt(key, ctx, io.BytesIO(ct), out)
    assert issubclass(IntegrityError, VaultError)
    if "PartialPlaintext" in case["flags"]:
        # Only the authenticated prefix may have been released, never more.
        assert len(out.data) <= case["msgLength"]
        if len(out.data) == case["msgLength"]:
            assert hashlib.sha512(out.data).hexdigest() == case["msgSha512"]
    else:
        assert not out.data


@pytest.mark.parametrize("case", [c for c in _cases() if c["result"] == "valid"][:6])
def test_raw_mode_keys_match_vector(case: dict[str, Any]) -> None:
    """The derived AEAD key and base nonce equal the vectors' (HKDF is right)."""
    ct = zlib.decompress(bytes.fromhex(case["ct"]))
    keys = chunked._Keys(  # noqa: SLF001 - checks the engine's key schedule against the vectors
        bytes.fromhex(case["key"]), ct[:24], bytes.fromhex(case["ctx"])
    )
    assert keys.base_nonce == int(case["baseNonce"], 16)
    probe = keys.aead.encrypt(b"\0" * 12, b"", None)
    assert probe == AESGCM(bytes.fromhex(case["aeadKey"])).encrypt(b"\0" * 12, b"", None)
