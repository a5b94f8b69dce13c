"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

Proofs are built from any :class:`HashReader` that returns the Merkle Tree Hash
of a range of leaves (the tiles give one); verification needs only hashes.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from weightvault.errors import IntegrityError

HASH_SIZE = 32


class ProofError(IntegrityError):
    """An inclusion or consistency proof does not verify, or was asked of impossible sizes."""


class HashReader(Protocol):
    """The Merkle Tree Hash of leaves ``[start, end)`` of one tree."""

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end])."""
        ...


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    """The root of the empty tree: SHA-256 of nothing."""
    return hashlib.sha256(b"").digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(hashes: list[bytes]) -> bytes:
    """MTH over a list of leaf (or same-height node) hashes."""
    if not hashes:
        return empty_root()
    if len(hashes) == 1:
        return hashes[0]
    k = split_point(len(hashes))
    return node_hash(root_of(hashes[:k]), root_of(hashes[k:]))


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves, leaf's sibling first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    return _path(index, 0, size, reader)


def _path(m: int, lo: int, hi: int, reader: HashReader) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return [*_path(m, lo, lo + k, reader), reader.subtree(lo + k, hi)]
    return [*_path(m - k, lo + k, hi, reader), reader.subtree(lo, lo + k)]


def consistency_proof(old: int, new: int, reader: HashReader) -> list[bytes]:
    """The proof that the tree of ``old`` leaves is a prefix of the tree of ``new``."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to {new}")
    if old == new:
        return []
    return _subproof(old, 0, new, True, reader)


def _subproof(m: int, lo: int, hi: int, whole: bool, reader: HashReader) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if whole else [reader.subtree(lo, hi)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, lo, lo + k, whole, reader), reader.subtree(lo + k, hi)]
    return [*_subproof(m - k, lo + k, hi, False, reader), reader.subtree(lo, lo + k)]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """The root that ``proof`` makes of ``leaf`` at ``index`` (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """Raise ProofError unless ``proof`` puts ``leaf`` at ``index`` under ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"leaf {index} is not included under the root of size {size}")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    """Raise ProofError unless ``proof`` shows ``old_root`` is a prefix of ``new_root``.

    RFC 9162 section 2.1.4.2.
    """
    if not 0 <= old <= new:
        raise ProofError(f"size {new} is smaller than {old}: the log went back")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError(f"two different roots for the same size {new}: a forked log")
        return
    if old == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node
        path.insert(0, old_root)
    fr, sr = _consistency_roots(old, new, path)
    if fr != old_root or sr != new_root:
        raise ProofError(f"the tree of size {new} does not extend the tree of size {old}")


def _consistency_roots(old: int, new: int, path: list[bytes]) -> tuple[bytes, bytes]:
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    return fr, sr
