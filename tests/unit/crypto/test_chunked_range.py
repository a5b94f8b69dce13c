"""Random access into Cobblestone-256 ciphertext: decrypt_range against the full decrypt."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightvault.crypto import chunked
from weightvault.crypto.chunked import CHUNK_SIZE, HEADER_SIZE, SEALED_CHUNK
from weightvault.errors import IntegrityError, InvalidInputError

KEY = bytes(range(32))
CONTEXT = b"weightvault test context"


def _sealed(size: int) -> tuple[bytes, bytes]:
    plain = os.urandom(size)
    out = io.BytesIO()
    chunked.encrypt(KEY, CONTEXT, io.BytesIO(plain), out)
    return plain, out.getvalue()


class Reader:
    """A ranged reader over in-memory ciphertext that counts what it served."""

    def __init__(self, ct: bytes) -> None:
        self.ct = ct
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> bytes:
        self.calls.append((offset, length))
        return self.ct[offset : offset + length]

    @property
    def fetched(self) -> int:
        return sum(n for _, n in self.calls)


def _range(ct: bytes, size: int, start: int, end: int, key: bytes = KEY) -> tuple[bytes, Reader]:
    reader = Reader(ct)
    out = io.BytesIO()
    n = chunked.decrypt_range(key, CONTEXT, reader, size, start, end, out)
    assert n == end - start
    return out.getvalue(), reader


SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 5 * CHUNK_SIZE + 77]


@pytest.mark.parametrize("size", SIZES)
def test_every_edge_range_matches_full_decrypt(size: int) -> None:
    plain, ct = _sealed(size)
    full = io.BytesIO()
    chunked.decrypt(KEY, CONTEXT, io.BytesIO(ct), full)
    assert full.getvalue() == plain
    points = sorted(
        {0, 1, size, max(size - 1, 0)}
        | {p for k in range(size // CHUNK_SIZE + 1) for p in (k * CHUNK_SIZE - 1, k * CHUNK_SIZE)}
    )
    points = [p for p in points if 0 <= p <= size]
    for start in points:
        for end in points:
            if start <= end:
                got, _ = _range(ct, size, start, end)
                assert got == plain[start:end], (start, end)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_ranges_match(data: st.DataObject) -> None:
    size = data.draw(st.integers(0, 6 * CHUNK_SIZE + 5))
    plain, ct = _sealed(size)
    start = data.draw(st.integers(0, size))
    end = data.draw(st.integers(start, size))
    got, _ = _range(ct, size, start, end)
    assert got == plain[start:end]


def test_only_covering_chunks_are_read() -> None:
    size = 10 * CHUNK_SIZE + 100
    plain, ct = _sealed(size)
    # Crosses the boundary between chunk 3 and chunk 4: header + exactly those two chunks.
    got, reader = _range(ct, size, 4 * CHUNK_SIZE - 10, 4 * CHUNK_SIZE + 10)
    assert got == plain[4 * CHUNK_SIZE - 10 : 4 * CHUNK_SIZE + 10]
    assert reader.calls == [(0, HEADER_SIZE), (HEADER_SIZE + 3 * SEALED_CHUNK, 2 * SEALED_CHUNK)]
    # The first bytes: the header and chunk 0 in one read.
    _, reader = _range(ct, size, 0, 8)
    assert reader.calls == [(0, HEADER_SIZE + SEALED_CHUNK)]
    # The last byte: the short final chunk only.
    got, reader = _range(ct, size, size - 1, size)
    assert got == plain[-1:]
    assert reader.calls[-1] == (HEADER_SIZE + 10 * SEALED_CHUNK, 100 + 16)
    assert reader.fetched == HEADER_SIZE + 116
    # An empty range reads nothing.
    _, reader = _range(ct, size, 5, 5)
    assert reader.calls == []


def test_large_range_reads_in_bounded_batches() -> None:
    n = chunked.RANGE_READ_CHUNKS + 3
    size = n * CHUNK_SIZE + 1
    plain, ct = _sealed(size)
    got, reader = _range(ct, size, 1, size)
    assert got == plain[1:]
    assert len(reader.calls) == 2
    assert max(length for _, length in reader.calls) <= (
        HEADER_SIZE + chunked.RANGE_READ_CHUNKS * SEALED_CHUNK
    )
    assert reader.fetched == len(ct)


@pytest.mark.parametrize("where", ["first", "covered", "final", "header"])
def test_tampered_chunk_fails(where: str) -> None:
    size = 4 * CHUNK_SIZE + 9
    _, ct = _sealed(size)
    offset = {
        "first": HEADER_SIZE + 3,
        "covered": HEADER_SIZE + 2 * SEALED_CHUNK + 100,
        "final": len(ct) - 1,
        "header": 5,
    }[where]
    bad = bytearray(ct)
    bad[offset] ^= 1
    start, end = {
        "first": (0, 10),
        "covered": (2 * CHUNK_SIZE, 3 * CHUNK_SIZE),
        "final": (size - 3, size),
        "header": (CHUNK_SIZE, CHUNK_SIZE + 1),
    }[where]
    out = io.BytesIO()
    with pytest.raises(IntegrityError):
        chunked.decrypt_range(KEY, CONTEXT, Reader(bytes(bad)), size, start, end, out)
    assert out.getvalue() == b""


def test_tamper_outside_the_range_is_not_read() -> None:
    size = 4 * CHUNK_SIZE
    plain, ct = _sealed(size)
    bad = bytearray(ct)
    bad[HEADER_SIZE + 3 * SEALED_CHUNK + 5] ^= 1
    got, _ = _range(bytes(bad), size, 0, CHUNK_SIZE)
    assert got == plain[:CHUNK_SIZE]


def test_swapped_chunks_and_wrong_size_fail() -> None:
    size = 3 * CHUNK_SIZE + 50
    _, ct = _sealed(size)
    c0 = ct[HEADER_SIZE : HEADER_SIZE + SEALED_CHUNK]
    c1 = ct[HEADER_SIZE + SEALED_CHUNK : HEADER_SIZE + 2 * SEALED_CHUNK]
    swapped = ct[:HEADER_SIZE] + c1 + c0 + ct[HEADER_SIZE + 2 * SEALED_CHUNK :]
    with pytest.raises(IntegrityError):
        chunked.decrypt_range(KEY, CONTEXT, Reader(swapped), size, 0, 10, io.BytesIO())
    # A plaintext size that is not the message's: the final chunk is misread.
    with pytest.raises(IntegrityError):
        chunked.decrypt_range(KEY, CONTEXT, Reader(ct), size - 1, size - 10, size - 1, io.BytesIO())
    # A truncated object.
    with pytest.raises(IntegrityError, match="truncated"):
        chunked.decrypt_range(KEY, CONTEXT, Reader(ct[:-1]), size, size - 10, size, io.BytesIO())


def test_wrong_key_or_context_fails_before_any_chunk() -> None:
    size = 2 * CHUNK_SIZE
    _, ct = _sealed(size)
    with pytest.raises(IntegrityError, match="commitment"):
        _range(ct, size, CHUNK_SIZE, CHUNK_SIZE + 1, key=bytes(32))
    with pytest.raises(IntegrityError, match="commitment"):
        chunked.decrypt_range(KEY, b"other", Reader(ct), size, 0, 1, io.BytesIO())


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (3, 2), (0, 101)])
def test_bad_ranges_are_invalid_input(start: int, end: int) -> None:
    _, ct = _sealed(100)
    with pytest.raises(InvalidInputError):
        chunked.decrypt_range(KEY, CONTEXT, Reader(ct), 100, start, end, io.BytesIO())


def test_a_header_read_before_is_reused_and_still_checked() -> None:
    size = 3 * CHUNK_SIZE
    plain, ct = _sealed(size)
    reader = Reader(ct)
    out = io.BytesIO()
    header = ct[:HEADER_SIZE]
    chunked.decrypt_range(
        KEY, CONTEXT, reader, size, CHUNK_SIZE, CHUNK_SIZE + 5, out, header=header
    )
    assert out.getvalue() == plain[CHUNK_SIZE : CHUNK_SIZE + 5]
    assert reader.calls == [(HEADER_SIZE + SEALED_CHUNK, SEALED_CHUNK)]
    bad = bytes([header[0] ^ 1]) + header[1:]
    with pytest.raises(IntegrityError, match="commitment"):
        chunked.decrypt_range(KEY, CONTEXT, reader, size, 0, 5, io.BytesIO(), header=bad)
    with pytest.raises(IntegrityError):
        chunked.decrypt_range(KEY, CONTEXT, reader, size, 0, 5, io.BytesIO(), header=header[:-1])
