"""The vault's transparency log on the object store: sequenced by conditional writes, tiled.

Layout in the audit bucket (``store.layout``): ``log/seq/<index>`` entries,
``log/tile/...`` (c2sp tlog-tiles), and ``log/checkpoint``, a c2sp signed note
that needs the log's Ed25519 signature and its ML-DSA-44 cosignature.

Appending is two steps, so that concurrent writers on any number of hosts
never fork or overwrite the log:

1. **sequence**: the entry is written to ``log/seq/<n>`` with ``If-None-Match``,
   starting at the checkpoint's size. One writer wins each index; a loser tries
   the next index. Once this returns, the entry's place is fixed and durable.
2. **integrate**: every sequenced entry past the checkpoint is hashed into the
   tiles (deterministic, so racing integrators write the same bytes), and a new
   checkpoint is signed and written with ``If-Match`` on the one it extends. A
   lost race re-reads and, if the winner already covers the entries, stops.

Nothing is trusted that the signatures do not cover: the checkpoint is verified
on every read, the root is recomputed from the tiles before a new checkpoint is
signed, and the new tree is checked consistent with the old one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from weightvault.crypto.notes import NoteSigner, NoteVerifier, sign_note
from weightvault.errors import ConflictError, IntegrityError, NotFoundError
from weightvault.store import ObjectStore
from weightvault.store.layout import log_checkpoint_key, log_sequenced_key, log_tile_key
from weightvault.tlog import (
    TILE_WIDTH,
    Checkpoint,
    ProofError,
    TiledHashReader,
    TlogProof,
    append_tiles,
    consistency_proof,
    empty_root,
    inclusion_proof,
    leaf_hash,
    node_hash,
    open_checkpoint,
    root_of,
    verify_consistency,
    verify_inclusion,
)

_OCTETS = "application/octet-stream"
_NOTE = "text/plain; charset=utf-8"
_INTEGRATE_ATTEMPTS = 50
_MAX_BATCH = 4096


@dataclass(frozen=True)
class SignedCheckpoint:
    """A verified checkpoint and the exact note bytes it was read from."""

    checkpoint: Checkpoint
    note: bytes


class TransparencyLog:
    """One tiled log in ``bucket``, identified by ``origin``.

    ``verifiers`` are the keys a checkpoint must carry (all of them);
    ``signers`` (the same keys' private halves) are needed only to integrate.
    """

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        origin: str,
        *,
        verifiers: list[NoteVerifier],
        signers: list[NoteSigner] | None = None,
    ) -> None:
        if not verifiers:
            raise IntegrityError("a transparency log needs at least one checkpoint verifier")
        self.store = store
        self.bucket = bucket
        self.origin = origin
        self._verifiers = verifiers
        self._signers = signers or []
        self._next_hint = 0

    def __repr__(self) -> str:
        return f"TransparencyLog({self.origin!r} in {self.bucket})"

    @property
    def verifiers(self) -> list[NoteVerifier]:
        """The keys every checkpoint of this log must be signed by."""
        return list(self._verifiers)

    # -- reading -----------------------------------------------------------------

    def _tile(self, path: str) -> bytes:
        return self.store.get_bytes(self.bucket, log_tile_key(path), limit=1 << 24)

    def _read_checkpoint(self) -> tuple[SignedCheckpoint, str | None]:
        try:
            data, etag = self.store.get_with_etag(self.bucket, log_checkpoint_key())
        except NotFoundError:
            empty = Checkpoint(self.origin, 0, empty_root())
            return SignedCheckpoint(empty, b""), None
        checkpoint = open_checkpoint(data, self.origin, self._verifiers)
        return SignedCheckpoint(checkpoint, data), etag

    def checkpoint(self) -> SignedCheckpoint:
        """The current checkpoint, its signatures verified (size 0 for an empty log)."""
        return self._read_checkpoint()[0]

    def reader(self, size: int) -> TiledHashReader:
        """Hashes of the tree of ``size`` leaves, from the tiles."""
        return TiledHashReader(size, self._tile)

    def entries(self, start: int = 0, end: int | None = None) -> list[bytes]:
        """Entries ``[start, end)`` of the checkpointed tree, each checked against its tile."""
        size = self.checkpoint().checkpoint.size
        return self.reader(size).entries(start, size if end is None else end)

    def iter_entries(self, batch: int = 256) -> Iterator[tuple[int, bytes]]:
        """(index, entry) for the whole checkpointed tree, a bundle at a time."""
        size = self.checkpoint().checkpoint.size
        reader = self.reader(size)
        for start in range(0, size, batch):
            for offset, entry in enumerate(reader.entries(start, min(size, start + batch))):
                yield start + offset, entry

    def verified_entries(
        self, signed: SignedCheckpoint | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """(index, entry) for the whole tree of ``signed`` (default: the current checkpoint).

        Each entry is checked against its leaf hash in the tiles as it is read;
        after the last one the root recomputed from the entries themselves must
        be the signed root, so an edited tile cannot hide an edited entry. Memory
        stays O(log n); every failure is an IntegrityError naming the entries.
        """
        signed = signed or self.checkpoint()
        size = signed.checkpoint.size
        reader = self.reader(size)
        stack: list[tuple[int, bytes]] = []
        for start in range(0, size, TILE_WIDTH):
            end = min(size, start + TILE_WIDTH)
            for offset, entry in enumerate(reader.entries(start, end)):
                _push(stack, leaf_hash(entry))
                yield start + offset, entry
        if _fold(stack) != signed.checkpoint.root:
            raise IntegrityError(f"{self}: {self._first_bad_bundle(reader)}")

    def _first_bad_bundle(self, reader: TiledHashReader) -> str:
        """Which entry bundle's entries no longer hash to what the tiles above them say."""
        for start in range(0, reader.size, TILE_WIDTH):
            end = min(reader.size, start + TILE_WIDTH)
            leaves = [leaf_hash(e) for e in reader.entries(start, end)]
            if end - start == TILE_WIDTH and root_of(leaves) != reader.subtree(start, end):
                return (
                    f"log entries {start}..{end - 1} (with their tile) were edited: "
                    "they no longer hash to the signed checkpoint"
                )
        return "the log's tiles do not hash to the signed checkpoint root (a tile was edited)"

    def prove(self, index: int, signed: SignedCheckpoint | None = None) -> TlogProof:
        """A c2sp tlog-proof of entry ``index`` under ``signed`` (default: the current one)."""
        signed = signed or self.checkpoint()
        size = signed.checkpoint.size
        proof = inclusion_proof(index, size, self.reader(size))
        return TlogProof(index, tuple(proof), signed.note)

    def check_included(
        self, entries: Iterable[tuple[int, bytes]], signed: SignedCheckpoint | None = None
    ) -> SignedCheckpoint:
        """Prove every (index, entry) is in the tree of ``signed`` (default: the current one).

        Each entry's leaf hash must reach the signed root through its audit path
        read from the tiles; IntegrityError names the first entry that does not.
        Returns the checkpoint the entries were proved against.
        """
        signed = signed or self.checkpoint()
        size = signed.checkpoint.size
        reader = self.reader(size)
        for index, entry in entries:
            if not 0 <= index < size:
                raise IntegrityError(f"{self}: entry {index} is not in the signed tree of {size}")
            try:
                verify_inclusion(
                    index,
                    size,
                    leaf_hash(entry),
                    inclusion_proof(index, size, reader),
                    signed.checkpoint.root,
                )
            except ProofError:
                raise IntegrityError(
                    f"{self}: entry {index} is not the one the signed checkpoint includes"
                ) from None
        return signed

    def consistency(self, old_size: int, signed: SignedCheckpoint | None = None) -> list[bytes]:
        """The consistency proof from the tree of ``old_size`` to ``signed``'s tree."""
        signed = signed or self.checkpoint()
        return consistency_proof(
            old_size, signed.checkpoint.size, self.reader(signed.checkpoint.size)
        )

    # -- writing -----------------------------------------------------------------

    def sequence(self, entry: bytes) -> int:
        """Give ``entry`` the next free index; durable and final once this returns."""
        index = max(self.checkpoint().checkpoint.size, self._next_hint)
        while True:
            try:
                self.store.put_bytes(
                    self.bucket,
                    log_sequenced_key(index),
                    entry,
                    if_none_match=True,
                    content_type=_OCTETS,
                )
            except ConflictError:
                index = self._first_free(index + 1)
                continue
            self._next_hint = index + 1
            return index

    def _taken(self, index: int) -> bool:
        return self.store.exists(self.bucket, log_sequenced_key(index))

    def _first_free(self, start: int) -> int:
        """The first index at or after ``start`` with no sequenced entry.

        Sequenced indexes have no gaps (each is claimed only after the one before
        it), so the taken ones are a prefix: gallop, then bisect, in O(log n) reads.
        """
        if not self._taken(start):
            return start
        low, step = start, 1
        while self._taken(low + step):
            low, step = low + step, step * 2
        high = low + step  # free; low is taken
        while high - low > 1:
            mid = (low + high) // 2
            if self._taken(mid):
                low = mid
            else:
                high = mid
        return high

    def _pending(self, start: int) -> list[bytes]:
        pending: list[bytes] = []
        while len(pending) < _MAX_BATCH:
            try:
                pending.append(
                    self.store.get_bytes(self.bucket, log_sequenced_key(start + len(pending)))
                )
            except NotFoundError:
                break
        return pending

    def integrate(self, *, until: int | None = None) -> SignedCheckpoint:
        """Hash every sequenced entry into the tiles and sign a checkpoint covering them.

        Returns once the checkpoint covers ``until`` (an index from
        :meth:`sequence`) or, without it, every entry sequenced when it started.
        """
        if not self._signers:
            raise IntegrityError(f"{self}: integrating needs the log's signing keys")
        for _ in range(_INTEGRATE_ATTEMPTS):
            current, etag = self._read_checkpoint()
            old = current.checkpoint
            if until is not None and old.size > until:
                return current
            pending = self._pending(old.size)
            if not pending:
                if until is not None and old.size <= until:
                    raise IntegrityError(f"{self}: entry {until} was never sequenced")
                return current
            for write in append_tiles(old.size, pending, self._tile):
                self.store.put_bytes(
                    self.bucket, log_tile_key(write.path), write.data, content_type=_OCTETS
                )
            new_size = old.size + len(pending)
            reader = self.reader(new_size)
            new = Checkpoint(self.origin, new_size, reader.root())
            if old.size:
                verify_consistency(
                    old.size,
                    new_size,
                    old.root,
                    new.root,
                    consistency_proof(old.size, new_size, reader),
                )
            note = sign_note(new.body(), self._signers).encode()
            try:
                self.store.put_bytes(
                    self.bucket,
                    log_checkpoint_key(),
                    note,
                    content_type=_NOTE,
                    if_none_match=etag is None,
                    if_match=etag,
                )
            except ConflictError:
                continue
            signed = SignedCheckpoint(new, note)
            if until is None or new_size > until:
                return signed
        raise ConflictError(f"{self}: the checkpoint kept moving; integrate again")

    def append(self, entry: bytes) -> tuple[int, SignedCheckpoint]:
        """Sequence ``entry`` and integrate it: its index and a checkpoint that covers it."""
        index = self.sequence(entry)
        return index, self.integrate(until=index)


def _push(stack: list[tuple[int, bytes]], leaf: bytes) -> None:
    """Add a leaf to a compact range of perfect subtrees (height, hash), merging equal heights."""
    height, value = 0, leaf
    while stack and stack[-1][0] == height:
        _, left = stack.pop()
        height, value = height + 1, node_hash(left, value)
    stack.append((height, value))


def _fold(stack: list[tuple[int, bytes]]) -> bytes:
    """The RFC 6962 root of the leaves pushed so far."""
    if not stack:
        return root_of([])
    value = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        value = node_hash(left, value)
    return value
