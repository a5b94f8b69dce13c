"""The c2sp tlog-tiles layout: tile and entry-bundle paths, building them, reading hashes back.

A tile at level ``L`` holds up to 256 consecutive hashes of that level; a
level-``L`` hash is the Merkle Tree Hash of 256**L leaves. Entry bundles hold
the entries of one level-0 tile, each as a big-endian uint16 length and bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from weightvault.errors import IntegrityError, InvalidInputError
from weightvault.tlog._merkle import HASH_SIZE, leaf_hash, node_hash, root_of, split_point

TILE_WIDTH = 256
MAX_ENTRY = 0xFFFF

# Reads one tile or bundle by its path under the log prefix; raises NotFoundError if absent.
TileSource = Callable[[str], bytes]


def _index_path(index: int) -> str:
    if index < 0:
        raise InvalidInputError("a tile index is never negative")
    digits = f"{index:d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``."""
    if not 0 <= level <= 63 or not 1 <= width <= TILE_WIDTH:
        raise InvalidInputError(f"no tile at level {level} of width {width}")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{_index_path(index)}{suffix}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``."""
    if not 1 <= width <= TILE_WIDTH:
        raise InvalidInputError(f"no entry bundle of width {width}")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/entries/{_index_path(index)}{suffix}"


def _tile_width(count: int, tile: int) -> int:
    """Width of tile ``tile`` at a level holding ``count`` hashes (0 if it does not exist)."""
    return max(0, min(TILE_WIDTH, count - tile * TILE_WIDTH))


def encode_bundle(entries: list[bytes]) -> bytes:
    """Entries as a bundle of uint16-length-prefixed byte strings."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise InvalidInputError(f"a log entry is {len(entry)} bytes; the most is {MAX_ENTRY}")
        out += struct.pack(">H", len(entry)) + entry
    return bytes(out)


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    """The ``width`` entries of a bundle; IntegrityError if it is cut or has extra bytes."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise IntegrityError("an entry bundle is cut inside a length")
        (size,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + size > len(data):
            raise IntegrityError("an entry bundle is cut inside an entry")
        entries.append(data[pos : pos + size])
        pos += size
    if len(entries) != width:
        raise IntegrityError(f"an entry bundle holds {len(entries)} entries, not {width}")
    return entries


def _split_hashes(data: bytes, width: int) -> list[bytes]:
    if len(data) != width * HASH_SIZE:
        raise IntegrityError(f"a tile is {len(data)} bytes, not {width} hashes")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


@dataclass(frozen=True)
class TileWrite:
    """One tile or bundle to store: its path, bytes, and whether it is full (immutable)."""

    path: str
    data: bytes
    full: bool


def append_tiles(old_size: int, entries: list[bytes], source: TileSource) -> list[TileWrite]:
    """The tiles and bundles of the tree of ``old_size + len(entries)`` that are new or changed.

    The existing partial tiles are read from ``source``. Bundles come first, then
    tiles level by level: a reader that finds a tile finds what it covers.
    """
    if old_size < 0:
        raise InvalidInputError("a tree size is never negative")
    new_size = old_size + len(entries)
    writes: list[TileWrite] = []
    if not entries:
        return writes
    first = old_size // TILE_WIDTH
    kept = old_size % TILE_WIDTH
    old_entries = decode_bundle(source(entries_path(first, kept)), kept) if kept else []
    all_entries = old_entries + entries
    for offset in range(0, len(all_entries), TILE_WIDTH):
        chunk = all_entries[offset : offset + TILE_WIDTH]
        writes.append(
            TileWrite(
                entries_path(first + offset // TILE_WIDTH, len(chunk)),
                encode_bundle(chunk),
                len(chunk) == TILE_WIDTH,
            )
        )
    new_hashes = [leaf_hash(e) for e in entries]
    level = 0
    while True:
        span = TILE_WIDTH**level
        old_count, new_count = old_size // span, new_size // span
        if new_count in (old_count, 0):
            break
        first = old_count // TILE_WIDTH
        kept = old_count % TILE_WIDTH
        existing = _split_hashes(source(tile_path(level, first, kept)), kept) if kept else []
        hashes = existing + new_hashes
        new_hashes = []
        for offset in range(0, len(hashes), TILE_WIDTH):
            chunk = hashes[offset : offset + TILE_WIDTH]
            full = len(chunk) == TILE_WIDTH
            writes.append(
                TileWrite(
                    tile_path(level, first + offset // TILE_WIDTH, len(chunk)),
                    b"".join(chunk),
                    full,
                )
            )
            if full:
                new_hashes.append(root_of(chunk))
        level += 1
    return writes


class TiledHashReader:
    """Merkle Tree Hashes of a tree of ``size`` leaves, read from its tiles (and cached)."""

    def __init__(self, size: int, source: TileSource) -> None:
        self.size = size
        self._source = source
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def _hash(self, level: int, index: int) -> bytes:
        count = self.size // TILE_WIDTH**level
        if index >= count:
            raise IntegrityError(f"no level-{level} hash {index} in a tree of size {self.size}")
        tile = index // TILE_WIDTH
        if (level, tile) not in self._tiles:
            width = _tile_width(count, tile)
            self._tiles[level, tile] = _split_hashes(
                self._source(tile_path(level, tile, width)), width
            )
        return self._tiles[level, tile][index % TILE_WIDTH]

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for ``0 <= start < end <= size``."""
        if not 0 <= start < end <= self.size:
            raise IntegrityError(f"no subtree [{start}, {end}) in a tree of size {self.size}")
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            height = n.bit_length() - 1
            level, rest = divmod(height, 8)
            span = TILE_WIDTH**level
            first = start // span
            return root_of([self._hash(level, first + i) for i in range(1 << rest)])
        k = split_point(n)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))

    def root(self) -> bytes:
        """The root hash of the whole tree."""
        if self.size == 0:
            return root_of([])
        return self.subtree(0, self.size)

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)`` from the bundles, each checked against the level-0 tiles."""
        if not 0 <= start <= end <= self.size:
            raise IntegrityError(f"no entries [{start}, {end}) in a tree of size {self.size}")
        out: list[bytes] = []
        for bundle in range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1 if end else 0):
            width = _tile_width(self.size, bundle)
            items = decode_bundle(self._source(entries_path(bundle, width)), width)
            for i, entry in enumerate(items):
                index = bundle * TILE_WIDTH + i
                if start <= index < end:
                    if leaf_hash(entry) != self._hash(0, index):
                        raise IntegrityError(f"log entry {index} does not match its leaf hash")
                    out.append(entry)
        return out
