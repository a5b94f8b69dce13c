"""c2sp.org/chunked-encryption, instantiation Cobblestone-256.

AES-256-GCM over 16 KiB chunks, with key, base nonce and a 32-byte key
commitment derived by HKDF-Expand-SHA-512 from the input key, a random 24-byte
salt and the caller's context. The ciphertext is ``salt || commitment ||
chunk_0 || ... || chunk_n`` where the final chunk is always shorter than 16 KiB
(possibly empty), which authenticates the message length.

Both directions stream with constant memory, and any plaintext range can be
decrypted alone (:func:`decrypt_range`): it needs the header and only the chunks
that cover the range, each authenticated under its own index. Decryption checks the commitment
before touching any chunk and writes a chunk's plaintext only after that chunk
authenticates; any failure raises :class:`~weightvault.errors.IntegrityError`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "CHUNK_SIZE",
    "HEADER_SIZE",
    "KEY_SIZE",
    "ChunkSpan",
    "EncryptingReader",
    "chunk_span",
    "ciphertext_size",
    "decrypt",
    "decrypt_range",
    "encrypt",
    "plaintext_size",
]

AEAD_NAME = b"AEAD_AES_256_GCM"
INFO_PREFIX = b"c2sp.org/chunked-encryption@v1+"
KEY_SIZE = 32
NONCE_SIZE = 12
SALT_SIZE = 24
COMMITMENT_SIZE = 32
HEADER_SIZE = SALT_SIZE + COMMITMENT_SIZE
CHUNK_SIZE = 16 * 1024
TAG_SIZE = 16
SEALED_CHUNK = CHUNK_SIZE + TAG_SIZE
MAX_CHUNKS = 1 << 38
# Chunks processed per read or write call: 1 MiB of plaintext keeps syscalls
# and Python overhead small while memory stays constant.
BLOCK_CHUNKS = 64


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Writable(Protocol):
    def write(self, data: Any, /) -> int | None: ...


def ciphertext_size(plaintext_len: int) -> int:
    """Exact ciphertext length for a plaintext of ``plaintext_len`` bytes."""
    return HEADER_SIZE + plaintext_len + TAG_SIZE * (plaintext_len // CHUNK_SIZE + 1)


def plaintext_size(ciphertext_len: int) -> int:
    """Plaintext length of a well-formed ciphertext; IntegrityError if no message has it."""
    body = ciphertext_len - HEADER_SIZE
    if body < TAG_SIZE:
        raise IntegrityError("ciphertext is truncated")
    full, last = divmod(body, SEALED_CHUNK)
    if last < TAG_SIZE:
        raise IntegrityError("ciphertext is truncated")
    return full * CHUNK_SIZE + last - TAG_SIZE


class _Keys:
    """Per-message AEAD key, base nonce and commitment."""

    __slots__ = ("aead", "base_nonce", "commitment")

    def __init__(self, key: bytes, salt: bytes, context: bytes) -> None:
        okm = HKDFExpand(
            algorithm=hashes.SHA512(),
            length=KEY_SIZE + NONCE_SIZE + COMMITMENT_SIZE,
            info=INFO_PREFIX + AEAD_NAME + b"\x00" + salt + context,
        ).derive(key)
        self.aead = AESGCM(okm[:KEY_SIZE])
        self.base_nonce = int.from_bytes(okm[KEY_SIZE : KEY_SIZE + NONCE_SIZE], "big")
        self.commitment = okm[KEY_SIZE + NONCE_SIZE :]

    def nonce(self, counter: int) -> bytes:
        if counter >= MAX_CHUNKS:
            raise IntegrityError("message exceeds the maximum chunk count")
        return (self.base_nonce ^ counter).to_bytes(NONCE_SIZE, "big")

    def __repr__(self) -> str:
        return "_Keys(<redacted>)"


def _check_key(key: bytes, error: type[Exception]) -> None:
    if not isinstance(key, bytes | bytearray | memoryview) or len(key) != KEY_SIZE:
        raise error(f"chunked encryption key must be {KEY_SIZE} bytes")


def _read_full(src: IO[bytes] | _Readable, view: memoryview) -> int:
    """Fill ``view`` from ``src`` until it is full or the stream ends."""
    filled = 0
    readinto = getattr(src, "readinto", None)
    while filled < len(view):
        if readinto is not None:
            n = readinto(view[filled:])
        else:
            data = src.read(len(view) - filled)
            n = len(data)
            view[filled : filled + n] = data
        if not n:
            break
        filled += n
    return filled


class EncryptingReader(io.RawIOBase):
    """A readable stream of ciphertext produced from a plaintext stream.

    It hashes the plaintext with SHA-256 as it goes, so one pass over the data
    yields the ciphertext for upload, the plaintext digest and its size.
    """

    def __init__(
        self,
        src: IO[bytes] | _Readable,
        key: bytes,
        context: bytes,
        *,
        salt: bytes | None = None,
        hash_plaintext: bool = True,
    ) -> None:
        super().__init__()
        _check_key(key, InvalidInputError)
        salt = os.urandom(SALT_SIZE) if salt is None else salt
        if len(salt) != SALT_SIZE:
            raise InvalidInputError(f"salt must be {SALT_SIZE} bytes")
        self._src = src
        self._keys = _Keys(bytes(key), salt, context)
        self._plain = bytearray(BLOCK_CHUNKS * CHUNK_SIZE)
        self._out = bytearray(BLOCK_CHUNKS * SEALED_CHUNK + HEADER_SIZE)
        self._out[:HEADER_SIZE] = salt + self._keys.commitment
        self._out_view = memoryview(self._out)
        self._out_len = HEADER_SIZE
        self._out_pos = 0
        self._counter = 0
        self._done = False
        self._hash = hash_plaintext
        self._work = bytearray()
        self.sha256 = hashlib.sha256()
        self.plaintext_len = 0

    def readable(self) -> bool:
        """Always true."""
        return True

    def _refill(self) -> None:
        plain = memoryview(self._plain)
        out = memoryview(self._out)
        n = _read_full(self._src, plain)
        if self._hash:
            self.sha256.update(plain[:n])
        self.plaintext_len += n
        keys = self._keys
        if self._counter + BLOCK_CHUNKS + 1 > MAX_CHUNKS:
            raise InvalidInputError("message exceeds the maximum chunk count")
        seal = keys.aead.encrypt_into
        base = keys.base_nonce
        counter = self._counter
        pos = 0
        written = 0
        while pos + CHUNK_SIZE <= n:
            seal(
                (base ^ counter).to_bytes(NONCE_SIZE, "big"),
                plain[pos : pos + CHUNK_SIZE],
                None,
                out[written : written + SEALED_CHUNK],
            )
            counter += 1
            pos += CHUNK_SIZE
            written += SEALED_CHUNK
        if n < len(plain):
            # The source ended: seal the short final chunk, possibly empty.
            last = n - pos
            seal(
                (base ^ counter).to_bytes(NONCE_SIZE, "big"),
                plain[pos:n],
                None,
                out[written : written + last + TAG_SIZE],
            )
            counter += 1
            written += last + TAG_SIZE
            self._done = True
        self._counter = counter
        self._out_len = written
        self._out_pos = 0

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` with the next ciphertext bytes; 0 at the end."""
        view = memoryview(buffer).cast("B")
        total = 0
        while total < len(view):
            if self._out_pos == self._out_len:
                if self._done:
                    break
                self._refill()
            take = min(len(view) - total, self._out_len - self._out_pos)
            view[total : total + take] = self._out_view[self._out_pos : self._out_pos + take]
            self._out_pos += take
            total += take
        return total

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` ciphertext bytes (all remaining if negative)."""
        if size is None or size < 0:
            chunks = []
            while data := self.read(1 << 20):
                chunks.append(data)
            return b"".join(chunks)
        # One reused work buffer: a part-sized read costs one copy, like file.read().
        if len(self._work) < size:
            self._work = bytearray(size)
        view = memoryview(self._work)[:size]
        n = self.readinto(view)
        return bytes(view[:n])

    def blocks(self) -> Iterator[memoryview]:
        """Yield the ciphertext block by block, without copying (views are reused)."""
        out = memoryview(self._out)
        while True:
            if self._out_pos < self._out_len:
                yield out[self._out_pos : self._out_len]
                self._out_pos = self._out_len
            if self._done:
                return
            self._refill()

    @property
    def hexdigest(self) -> str:
        """SHA-256 of the plaintext read so far, as hex."""
        return self.sha256.hexdigest()


def encrypt(
    key: bytes, context: bytes, src: IO[bytes] | _Readable, dst: IO[bytes] | _Writable
) -> int:
    """Encrypt ``src`` into ``dst``; return the number of plaintext bytes."""
    reader = EncryptingReader(src, key, context, hash_plaintext=False)
    for block in reader.blocks():
        dst.write(block)
    return reader.plaintext_len


def decrypt(
    key: bytes, context: bytes, src: IO[bytes] | _Readable, dst: IO[bytes] | _Writable
) -> int:
    """Decrypt ``src`` into ``dst``; return the number of plaintext bytes.

    Raises IntegrityError on a wrong key size, key, context, commitment, any
    modified, reordered, truncated or extended chunk. Plaintext of a chunk is
    written only after the chunk authenticates, so ``dst`` may hold a valid
    prefix when an error is raised; callers that need all-or-nothing write
    to a temporary file.
    """
    _check_key(key, IntegrityError)
    header = bytearray(HEADER_SIZE)
    if _read_full(src, memoryview(header)) != HEADER_SIZE:
        raise IntegrityError("ciphertext is truncated: header incomplete")
    keys = _Keys(bytes(key), bytes(header[:SALT_SIZE]), context)
    if not hmac.compare_digest(keys.commitment, bytes(header[SALT_SIZE:])):
        raise IntegrityError("key commitment mismatch: wrong key or context, or modified header")

    block = BLOCK_CHUNKS * SEALED_CHUNK
    buf = bytearray(block + SEALED_CHUNK)
    view = memoryview(buf)
    plain = bytearray(BLOCK_CHUNKS * CHUNK_SIZE + CHUNK_SIZE)
    pview = memoryview(plain)
    open_into = keys.aead.decrypt_into
    base = keys.base_nonce
    counter = 0
    total = 0
    filled = 0
    while True:
        filled += _read_full(src, view[filled:])
        eof = filled < len(buf)
        pos = 0
        out = 0
        if counter + BLOCK_CHUNKS + 2 > MAX_CHUNKS:
            raise IntegrityError("message exceeds the maximum chunk count")
        try:
            # A sealed chunk followed by more bytes is a full, non-final chunk.
            while filled - pos > SEALED_CHUNK:
                open_into(
                    (base ^ counter).to_bytes(NONCE_SIZE, "big"),
                    view[pos : pos + SEALED_CHUNK],
                    None,
                    pview[out : out + CHUNK_SIZE],
                )
                counter += 1
                pos += SEALED_CHUNK
                out += CHUNK_SIZE
            if eof:
                last = filled - pos
                if last < TAG_SIZE or last == SEALED_CHUNK:
                    raise IntegrityError("ciphertext is truncated")
                keys.aead.decrypt_into(
                    keys.nonce(counter),
                    view[pos:filled],
                    None,
                    pview[out : out + last - TAG_SIZE],
                )
                out += last - TAG_SIZE
        except InvalidTag:
            if out:
                dst.write(pview[:out])
            raise IntegrityError(f"chunk {counter} failed authentication") from None
        if out:
            dst.write(pview[:out])
            total += out
        if eof:
            return total
        rest = filled - pos
        view[:rest] = view[pos:filled]
        filled = rest


# Chunks fetched per ranged read in :func:`decrypt_range`: 16 MiB of ciphertext at most,
# so a large range streams in bounded memory while a tensor of a few MiB is one read.
RANGE_READ_CHUNKS = 1024


@dataclass(frozen=True)
class ChunkSpan:
    """The ciphertext chunks that cover plaintext ``[start, end)`` of a message.

    ``first`` is the index of the first chunk, ``count`` how many; ``offset`` and
    ``length`` are where those sealed chunks lie in the ciphertext (after the
    header); ``final`` is the index of the message's final chunk.
    """

    start: int
    end: int
    first: int
    count: int
    offset: int
    length: int
    final: int


def _sealed_len(index: int, final: int, plaintext_len: int) -> int:
    """Length of sealed chunk ``index``; the final chunk holds the short remainder."""
    if index < final:
        return SEALED_CHUNK
    return plaintext_len - final * CHUNK_SIZE + TAG_SIZE


def chunk_span(plaintext_len: int, start: int, end: int) -> ChunkSpan:
    """The chunks covering plaintext ``[start, end)`` of a ``plaintext_len``-byte message.

    InvalidInputError unless ``0 <= start <= end <= plaintext_len``. An empty range
    covers no chunk.
    """
    if plaintext_len < 0 or not 0 <= start <= end <= plaintext_len:
        raise InvalidInputError(
            f"range {start}:{end} is not within the {plaintext_len}-byte plaintext"
        )
    final = plaintext_len // CHUNK_SIZE
    if final >= MAX_CHUNKS:
        raise InvalidInputError("message exceeds the maximum chunk count")
    if start == end:
        return ChunkSpan(start, end, start // CHUNK_SIZE, 0, HEADER_SIZE, 0, final)
    first = start // CHUNK_SIZE
    last = (end - 1) // CHUNK_SIZE
    offset = HEADER_SIZE + first * SEALED_CHUNK
    length = (last - first) * SEALED_CHUNK + _sealed_len(last, final, plaintext_len)
    return ChunkSpan(start, end, first, last - first + 1, offset, length, final)


def _first_read(
    fetch: Callable[[int, int], bytes | bytearray | memoryview],
    span: ChunkSpan,
    header: bytes | None,
    length: int,
) -> tuple[bytes | bytearray | memoryview, memoryview]:
    """The payload header (``header`` when given) and the first ``length`` sealed bytes."""
    if header is not None:
        if len(header) != HEADER_SIZE:
            raise IntegrityError("ciphertext is truncated: header incomplete")
        return header, memoryview(fetch(span.offset, length))
    if span.first == 0:
        # One read for the header and the first chunks.
        data = memoryview(fetch(0, HEADER_SIZE + length))
        return data[:HEADER_SIZE], data[HEADER_SIZE:]
    head = fetch(0, HEADER_SIZE)
    return head, memoryview(fetch(span.offset, length))


def decrypt_range(
    key: bytes,
    context: bytes,
    read: Callable[[int, int], bytes | bytearray | memoryview],
    plaintext_len: int,
    start: int,
    end: int,
    dst: IO[bytes] | _Writable,
    *,
    header: bytes | None = None,
) -> int:
    """Decrypt plaintext ``[start, end)`` of a message into ``dst``; return the bytes written.

    ``read(offset, length)`` returns exactly ``length`` ciphertext bytes from
    ``offset`` (a ranged GET); fewer means the ciphertext is truncated.
    ``plaintext_len`` is the message's plaintext length from a trusted source (the
    authenticated manifest): it says which chunk is final and how long it is, so a
    truncated, extended or reordered ciphertext fails as it does for :func:`decrypt`.

    Only the header and the chunks that cover the range are read: the header's key
    commitment is checked (constant time) before any chunk, every chunk is
    authenticated under its own index, and plaintext of a chunk reaches ``dst`` only
    after it authenticates. Chunks are read ``RANGE_READ_CHUNKS`` at a time; the header
    is read together with the first of them when the range starts in chunk 0, or not
    at all when the caller passes the ``header`` it read before (its commitment is
    checked all the same, so a wrong one fails like a modified one). Raises
    IntegrityError on any failure (``dst`` may then hold a valid prefix of the range),
    InvalidInputError on a range outside the message.
    """
    _check_key(key, IntegrityError)
    span = chunk_span(plaintext_len, start, end)
    if span.count == 0:
        return 0

    def fetch(offset: int, length: int) -> bytes | bytearray | memoryview:
        data = read(offset, length)
        if len(data) != length:
            raise IntegrityError("ciphertext is truncated")
        return data

    index = span.first
    stop = span.first + span.count
    batch = min(stop - index, RANGE_READ_CHUNKS)

    def batch_len(first: int, n: int) -> int:
        return (n - 1) * SEALED_CHUNK + _sealed_len(first + n - 1, span.final, plaintext_len)

    head, sealed = _first_read(fetch, span, header, batch_len(index, batch))
    keys = _Keys(bytes(key), bytes(head[:SALT_SIZE]), context)
    if not hmac.compare_digest(keys.commitment, bytes(head[SALT_SIZE:])):
        raise IntegrityError("key commitment mismatch: wrong key or context, or modified header")

    plain = bytearray(batch * CHUNK_SIZE)
    pview = memoryview(plain)
    open_into = keys.aead.decrypt_into
    written = 0
    while True:
        pos = 0
        out = 0
        try:
            for i in range(index, index + batch):
                n = _sealed_len(i, span.final, plaintext_len)
                open_into(
                    keys.nonce(i), sealed[pos : pos + n], None, pview[out : out + n - TAG_SIZE]
                )
                pos += n
                out += n - TAG_SIZE
        except InvalidTag:
            raise IntegrityError(f"chunk {i} failed authentication") from None
        # Plaintext of this batch is [index * CHUNK_SIZE, index * CHUNK_SIZE + out).
        base = index * CHUNK_SIZE
        lo = max(start, base) - base
        hi = min(end, base + out) - base
        dst.write(pview[lo:hi])
        written += hi - lo
        index += batch
        if index >= stop:
            return written
        batch = min(stop - index, RANGE_READ_CHUNKS)
        offset = HEADER_SIZE + index * SEALED_CHUNK
        sealed = memoryview(fetch(offset, batch_len(index, batch)))
