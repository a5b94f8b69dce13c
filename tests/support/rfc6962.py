"""An RFC 6962 Merkle Tree Hash written from the RFC (section 2.1), independent of the product.

The tests check the product's hashing, proofs and tiles against it; it shares
no code with ``weightvault.tlog``.
"""

from __future__ import annotations

import hashlib


def largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k, as RFC 6962 splits a list of n > 1 entries."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_leaf(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def ref_mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) by the RFC's recursive definition."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return ref_leaf(entries[0])
    k = largest_power_of_two_below(len(entries))
    return ref_node(ref_mth(entries[:k]), ref_mth(entries[k:]))
