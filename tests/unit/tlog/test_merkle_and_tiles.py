"""RFC 6962 hashing, proofs and c2sp tiles, checked against an independent implementation.

The reference below is written from RFC 6962 section 2.1 directly (recursive
MTH, PATH and PROOF over the list of entries); it shares no code with the product.
"""

from __future__ import annotations

import random

import pytest

from tests.support.rfc6962 import largest_power_of_two_below, ref_mth
from weightvault.errors import IntegrityError, NotFoundError
from weightvault.tlog import (
    TILE_WIDTH,
    ProofError,
    TiledHashReader,
    append_tiles,
    consistency_proof,
    decode_bundle,
    encode_bundle,
    entries_path,
    inclusion_proof,
    leaf_hash,
    tile_path,
    verify_consistency,
    verify_inclusion,
)

# -- the independent reference (RFC 6962 section 2.1) ---------------------------


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if whole else [ref_mth(entries)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], whole), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


class ListReader:
    """A HashReader over the entries themselves, via the reference MTH."""

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries

    def subtree(self, start: int, end: int) -> bytes:
        return ref_mth(self.entries[start:end])


ENTRIES = [f"entry {i}".encode() for i in range(70)]


# -- proofs ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 33, 70])
def test_inclusion_proofs_match_the_reference_and_verify(size: int) -> None:
    entries = ENTRIES[:size]
    root = ref_mth(entries)
    for index in range(size):
        proof = inclusion_proof(index, size, ListReader(entries))
        assert proof == ref_path(index, entries)
        verify_inclusion(index, size, leaf_hash(entries[index]), proof, root)


@pytest.mark.parametrize(
    ("old", "new"), [(1, 2), (1, 8), (3, 7), (4, 8), (6, 8), (5, 70), (64, 70)]
)
def test_consistency_proofs_match_the_reference_and_verify(old: int, new: int) -> None:
    proof = consistency_proof(old, new, ListReader(ENTRIES[:new]))
    assert proof == ref_subproof(old, ENTRIES[:new], True)
    verify_consistency(old, new, ref_mth(ENTRIES[:old]), ref_mth(ENTRIES[:new]), proof)


def test_tampered_proofs_are_refused() -> None:
    entries = ENTRIES[:13]
    root = ref_mth(entries)
    proof = inclusion_proof(5, 13, ListReader(entries))
    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    with pytest.raises(ProofError):
        verify_inclusion(5, 13, leaf_hash(entries[5]), bad, root)
    with pytest.raises(ProofError):
        verify_inclusion(6, 13, leaf_hash(entries[5]), proof, root)  # wrong index
    with pytest.raises(ProofError):
        verify_inclusion(5, 13, leaf_hash(entries[5]), proof[:-1], root)  # too short
    with pytest.raises(ProofError):
        verify_inclusion(5, 13, leaf_hash(b"forged"), proof, root)
    cons = consistency_proof(5, 13, ListReader(entries))
    with pytest.raises(ProofError):  # a different old tree: a fork
        verify_consistency(5, 13, ref_mth([b"x", *entries[1:5]]), root, cons)
    with pytest.raises(ProofError):
        verify_consistency(13, 5, root, ref_mth(entries[:5]), cons)  # went back
    with pytest.raises(ProofError):  # same size, different root
        verify_consistency(13, 13, root, ref_mth(ENTRIES[1:14]), [])


# -- tiles -----------------------------------------------------------------------


def test_tile_paths_follow_the_spec() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 5, 17) == "tile/2/005.p/17"
    assert entries_path(0, 1) == "tile/entries/000.p/1"
    assert entries_path(1000) == "tile/entries/x001/000"


def test_a_tree_of_70000_has_the_tiles_the_spec_lists() -> None:
    entries = [i.to_bytes(4, "big") for i in range(70_000)]
    paths = {w.path for w in append_tiles(0, entries, {}.__getitem__)}
    level0 = [p for p in paths if p.startswith("tile/0/")]
    assert len([p for p in level0 if ".p/" not in p]) == 273
    assert "tile/0/273.p/112" in paths
    assert "tile/1/000" in paths
    assert "tile/1/001.p/17" in paths
    assert "tile/2/000.p/1" in paths
    assert len([p for p in paths if p.startswith("tile/entries/")]) == 274


def test_appends_in_random_batches_give_the_reference_root_and_proofs() -> None:
    rng = random.Random(20261201)  # noqa: S311 - reproducible test data
    store: dict[str, bytes] = {}
    entries: list[bytes] = []
    while len(entries) < 1300:
        batch = [
            rng.randbytes(rng.randint(0, 40)) for _ in range(rng.choice([1, 2, 7, 255, 256, 300]))
        ]
        for write in append_tiles(len(entries), batch, store.__getitem__):
            if write.full and write.path in store:
                assert store[write.path] == write.data  # full tiles never change
            store[write.path] = write.data
        entries += batch
        reader = TiledHashReader(len(entries), store.__getitem__)
        assert reader.root() == ref_mth(entries)
    size = len(entries)
    reader = TiledHashReader(size, store.__getitem__)
    for index in [0, 1, 255, 256, 257, 1000, size - 1]:
        proof = inclusion_proof(index, size, reader)
        assert proof == ref_path(index, entries)
    for old in [1, 256, 257, 700]:
        assert consistency_proof(old, size, reader) == ref_subproof(old, entries, True)
    assert reader.entries(250, 520) == entries[250:520]


def test_reading_a_tampered_bundle_or_tile_is_refused() -> None:
    entries = [f"e{i}".encode() for i in range(300)]
    store = {w.path: w.data for w in append_tiles(0, entries, {}.__getitem__)}
    reader = TiledHashReader(300, store.__getitem__)
    bundle = decode_bundle(store[entries_path(1, 44)], 44)
    bundle[3] = b"forged"
    store[entries_path(1, 44)] = encode_bundle(bundle)
    with pytest.raises(IntegrityError):
        TiledHashReader(300, store.__getitem__).entries(256, 300)
    store[tile_path(0, 1, 44)] = store[tile_path(0, 1, 44)][:-1]
    with pytest.raises(IntegrityError):
        TiledHashReader(300, store.__getitem__).root()
    assert reader.size == 300


def test_a_missing_tile_is_not_invented() -> None:
    def source(path: str) -> bytes:
        raise NotFoundError(path)

    with pytest.raises(NotFoundError):
        TiledHashReader(5, source).root()
    assert TILE_WIDTH == 256


def test_bundles_refuse_oversized_and_cut_entries() -> None:
    with pytest.raises(Exception, match="65535"):
        encode_bundle([b"x" * 65536])
    data = encode_bundle([b"abc", b"de"])
    with pytest.raises(IntegrityError):
        decode_bundle(data[:-1], 2)
    with pytest.raises(IntegrityError):
        decode_bundle(data, 3)
