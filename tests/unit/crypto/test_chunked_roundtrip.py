"""Round trips and tampering of the chunked payload format."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightvault.crypto import chunked
from weightvault.errors import IntegrityError, InvalidInputError

KEY = bytes(range(32))
CTX = b"artifact-1\x00weights.bin"
K16 = 16 * 1024
SEALED = K16 + 16


def _enc(data: bytes, key: bytes = KEY, ctx: bytes = CTX) -> bytes:
    out = io.BytesIO()
    assert chunked.encrypt(key, ctx, io.BytesIO(data), out) == len(data)
    return out.getvalue()


def _dec(ct: bytes, key: bytes = KEY, ctx: bytes = CTX) -> bytes:
    out = io.BytesIO()
    n = chunked.decrypt(key, ctx, io.BytesIO(ct), out)
    assert n == len(out.getvalue())
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, K16 - 1, K16, K16 + 1, 3 * K16, 5 * K16 + 7])
def test_round_trip_sizes(size: int) -> None:
    data = os.urandom(size)
    ct = _enc(data)
    assert len(ct) == chunked.ciphertext_size(size)
    assert chunked.plaintext_size(len(ct)) == size
    assert _dec(ct) == data


def test_round_trip_100_mib_streams_through_files(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with src.open("wb") as fh:
        for _ in range(100):
            fh.write(os.urandom(1024 * 1024))
    enc = tmp_path / "big.c2sp"
    dec = tmp_path / "big.out"
    with src.open("rb") as s, enc.open("wb") as d:
        assert chunked.encrypt(KEY, CTX, s, d) == 100 * 1024 * 1024
    assert enc.stat().st_size == chunked.ciphertext_size(100 * 1024 * 1024)
    with enc.open("rb") as s, dec.open("wb") as d:
        assert chunked.decrypt(KEY, CTX, s, d) == 100 * 1024 * 1024

    def digest(p: Path) -> str:
        h = hashlib.sha256()
        with p.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        return h.hexdigest()

    assert digest(src) == digest(dec)


def test_encrypting_reader_hashes_plaintext() -> None:
    data = os.urandom(3 * K16 + 5)
    reader = chunked.EncryptingReader(io.BytesIO(data), KEY, CTX)
    ct = b""
    while block := reader.read(777):
        ct += block
    assert reader.hexdigest == hashlib.sha256(data).hexdigest()
    assert reader.plaintext_len == len(data)
    assert _dec(ct) == data


def test_salt_is_random_per_message() -> None:
    assert _enc(b"same")[:24] != _enc(b"same")[:24]


def test_wrong_key_size_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        _enc(b"x", key=b"short")
    with pytest.raises(IntegrityError):
        _dec(_enc(b"x"), key=b"short")


def test_context_binds_ciphertext() -> None:
    ct = _enc(b"payload")
    with pytest.raises(IntegrityError):
        _dec(ct, ctx=b"artifact-2\x00weights.bin")
    with pytest.raises(IntegrityError):
        _dec(ct, ctx=b"artifact-1\x00other.bin")


def test_chunk_reordering_fails() -> None:
    data = os.urandom(2 * K16 + 10)
    ct = _enc(data)
    head, c0, c1, rest = (
        ct[:56],
        ct[56 : 56 + SEALED],
        ct[56 + SEALED : 56 + 2 * SEALED],
        ct[56 + 2 * SEALED :],
    )
    with pytest.raises(IntegrityError):
        _dec(head + c1 + c0 + rest)


@pytest.mark.parametrize("cut", [1, 15, 16, 17, SEALED - 1])
def test_truncation_fails(cut: int) -> None:
    ct = _enc(os.urandom(K16 + 100))
    with pytest.raises(IntegrityError):
        _dec(ct[:-cut])


def test_dropping_the_final_chunk_fails() -> None:
    ct = _enc(os.urandom(2 * K16))  # two full chunks and an empty final chunk
    with pytest.raises(IntegrityError):
        _dec(ct[:-16])


@pytest.mark.parametrize("extra", [b"\x00", b"x" * 16, b"y" * 100])
def test_appended_data_fails(extra: bytes) -> None:
    with pytest.raises(IntegrityError):
        _dec(_enc(os.urandom(K16 + 3)) + extra)


def test_released_plaintext_is_only_authenticated_chunks() -> None:
    data = os.urandom(3 * K16 + 1)
    ct = bytearray(_enc(data))
    ct[56 + 2 * SEALED + 5] ^= 1  # corrupt chunk 2
    out = io.BytesIO()
    with pytest.raises(IntegrityError):
        chunked.decrypt(KEY, CTX, io.BytesIO(bytes(ct)), out)
    assert data.startswith(out.getvalue())
    assert len(out.getvalue()) <= 2 * K16


_CT = _enc(os.urandom(2 * K16 + 300))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pos=st.integers(0, len(_CT) - 1), flip=st.integers(1, 255))
def test_any_single_byte_change_fails(pos: int, flip: int) -> None:
    ct = bytearray(_CT)
    ct[pos] ^= flip
    with pytest.raises(IntegrityError):
        _dec(bytes(ct))
