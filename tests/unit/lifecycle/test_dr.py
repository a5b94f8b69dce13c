"""Unit tests of the home-restore helpers that need no store."""

from __future__ import annotations

import os

import pytest

from weightvault.keys import recover_seed, split_seed
from weightvault.lifecycle.dr import MasterSplit, master_check, parse_shares
from weightvault.store.layout import (
    keystore_backup_key,
    keystore_version_key,
    parse_keystore_backup_key,
    parse_keystore_version_key,
)


def test_backup_keys_sort_by_version_and_parse_back() -> None:
    keys = [keystore_backup_key(v) for v in (1, 9, 10, 123456)]
    assert keys == sorted(keys)
    assert [parse_keystore_backup_key(k) for k in keys] == [1, 9, 10, 123456]
    assert parse_keystore_backup_key(keystore_version_key(3)) is None
    assert parse_keystore_version_key(keystore_backup_key(3)) is None
    assert parse_keystore_backup_key("keystore/backups/1.sealed") is None


def test_parse_shares_one_per_line_whitespace_normalised() -> None:
    assert parse_shares("  a  b c \n\n d\te \n") == ["a b c", "d e"]
    assert parse_shares("") == []


def test_master_check_identifies_the_key_without_revealing_it() -> None:
    key = os.urandom(32)
    check = master_check(key)
    assert check == master_check(key)
    assert check != master_check(os.urandom(32))
    assert key.hex() not in check


@pytest.mark.parametrize(("k", "n"), [(2, 3), (3, 5)])
def test_a_32_byte_master_key_round_trips_through_slip39(k: int, n: int) -> None:
    key = os.urandom(32)
    shares = split_seed(key, threshold=k, shares=n)
    assert recover_seed(shares[-k:]) == key


def test_split_repr_hides_the_shares() -> None:
    split = MasterSplit(2, ("secret words one", "secret words two"), replaced=False)
    assert "secret" not in repr(split)
