"""ObjectStore.read_range: one ranged GET, the object's size, the same error translation."""

from __future__ import annotations

import os

import pytest

from weightvault.artifacts import Vault
from weightvault.errors import InvalidInputError, NotFoundError, StoreError


def test_ranged_reads(vault: Vault) -> None:
    bucket = vault.bucket("hot")
    data = os.urandom(100_000)
    vault.store.put_bytes(bucket, "ranged/obj", data)
    got = vault.store.read_range(bucket, "ranged/obj", 0, 10)
    assert bytes(got.data) == data[:10]
    assert got.total == len(data)
    got = vault.store.read_range(bucket, "ranged/obj", 99_990, 10)
    assert bytes(got.data) == data[-10:]
    # Past the end: what the object has, never more.
    got = vault.store.read_range(bucket, "ranged/obj", 99_995, 10)
    assert bytes(got.data) == data[-5:]
    with pytest.raises(StoreError, match="InvalidRange"):
        vault.store.read_range(bucket, "ranged/obj", 200_000, 10)
    with pytest.raises(NotFoundError):
        vault.store.read_range(bucket, "ranged/missing", 0, 10)
    with pytest.raises(InvalidInputError):
        vault.store.read_range(bucket, "ranged/obj", 0, 0)
    with pytest.raises(InvalidInputError):
        vault.store.read_range(bucket, "ranged/obj", -1, 5)
