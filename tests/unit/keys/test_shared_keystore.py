"""The keystore shared in a real PostgreSQL by several workers (`SharedKeyStore`).

Two keystore objects on one database stand for two workers on two hosts: what one
wraps the other unwraps, what one rotates the other uses at once. Rotations started
by several processes at once make one new version; a writer cannot put an older
version back; the database holds only sealed bytes.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update

from tests.support import keystore_race
from tests.support.postgres import PostgresServer
from tests.support.spawned import in_processes
from weightvault.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    DatabaseUnavailableError,
    KeystoreRollbackError,
)
from weightvault.keys import KeyState, LocalKeyStore, SharedKeyStore
from weightvault.keys._shared_keystore import PostgresSealedBlob, keystore_rows

ARTIFACT = "wv-20261203-0123456789abcdef"
PROCESSES = 6


@pytest.fixture
def url(postgres: PostgresServer) -> str:
    return postgres.create_database("keys_" + uuid.uuid4().hex[:12])


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(32)


def _row(url: str) -> tuple[int, bytes | None]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        version, sealed = conn.execute(
            select(keystore_rows.c.version, keystore_rows.c.sealed)
        ).one()
    engine.dispose()
    return int(version), None if sealed is None else bytes(sealed)


def test_two_workers_share_keys_and_rotations(url: str, master_key: bytes) -> None:
    first = SharedKeyStore(url, master_key)
    second = SharedKeyStore(url, master_key)
    dek = os.urandom(32)
    wrapped = first.wrap_dek("hot", ARTIFACT, dek)
    assert second.unwrap_dek(wrapped) == dek
    rotated = second.rotate_kek("hot")
    assert rotated.version == 2
    assert first.active_kek("hot").ref == rotated.ref
    assert first.unwrap_dek(wrapped) == dek  # v1 is decrypt-only, still unwraps
    assert {r.version: r.state for r in first.versions("kek-hot")} == {
        1: KeyState.DECRYPT_ONLY,
        2: KeyState.ACTIVE,
    }
    assert first.version == second.version == _row(url)[0]


def test_concurrent_rotations_from_processes_make_one_new_version(
    url: str, master_key: bytes
) -> None:
    SharedKeyStore(url, master_key).active_kek("hot")  # v1 exists
    results = in_processes(PROCESSES, keystore_race.race_rotation, url, master_key)
    assert {ref for ref, _ in results} == {"kek-hot@v2"}
    assert sorted(created for _, created in results) == [False] * (PROCESSES - 1) + [True]
    assert [r.version for r in SharedKeyStore(url, master_key).versions("kek-hot")] == [1, 2]


def test_an_older_version_is_never_written_back(url: str, master_key: bytes) -> None:
    keys = SharedKeyStore(url, master_key)
    keys.active_kek("hot")
    version, old = _row(url)
    keys.rotate_kek("hot")
    blob = PostgresSealedBlob(url)  # the row's writer, as a stale process would call it
    with blob.exclusive(), pytest.raises(KeystoreRollbackError, match="older"):
        blob.write(old or b"", version)
    assert _row(url)[0] == version + 1
    assert keys.active_kek("hot").version == 2


def test_a_rolled_back_row_is_refused_by_the_version_records(url: str, master_key: bytes) -> None:
    records: dict[int, bytes] = {}

    class Versions:
        def newer(self, version: int) -> list[tuple[int, bytes]]:
            return [(v, b) for v, b in records.items() if v > version]

        def has(self, version: int) -> bool:
            return version in records

        def record(self, version: int, body: bytes) -> None:
            records[version] = body

    keys = SharedKeyStore(url, master_key, versions=Versions())
    keys.active_kek("hot")
    version, old = _row(url)
    keys.rotate_kek("hot")
    # Someone with write access to the database puts the older sealed row back.
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(update(keystore_rows).values(sealed=old, version=version))
    engine.dispose()
    with pytest.raises(KeystoreRollbackError, match="older copy"):
        SharedKeyStore(url, master_key, versions=Versions()).active_kek("hot")


def test_the_database_holds_only_sealed_bytes(url: str, master_key: bytes) -> None:
    keys = SharedKeyStore(url, master_key)
    kek = keys.active_kek("hot")
    _, sealed = _row(url)
    assert sealed is not None
    assert sealed.startswith(b"WVKS1\n")
    assert kek.material not in sealed
    assert kek.material.hex().encode() not in sealed
    with pytest.raises(AuthenticationError):
        SharedKeyStore(url, os.urandom(32)).active_kek("hot")
    assert "material" not in repr(keys)
    assert "@" not in str(keys) or ":***@" in str(keys)  # the URL's password is hidden


def test_a_restored_backup_goes_only_into_an_empty_keystore(
    url: str, master_key: bytes, tmp_path: Any
) -> None:
    local = LocalKeyStore(tmp_path / "keystore.sealed", master_key)
    kek = local.active_kek("hot")
    blob = (tmp_path / "keystore.sealed").read_bytes()
    shared = SharedKeyStore(url, master_key)
    assert shared.install(blob) == local.version
    assert shared.active_kek("hot").ref == kek.ref
    with pytest.raises(ConflictError, match="already holds keys"):
        shared.install(blob)
    with pytest.raises(AuthenticationError):  # a backup sealed under another master key
        SharedKeyStore(url, os.urandom(32), name="other").install(blob)


def test_bad_keystore_urls_are_one_line_errors(postgres: PostgresServer) -> None:
    from weightvault.store import free_ports

    with pytest.raises(ConfigError, match="postgresql"):
        SharedKeyStore("sqlite:///keys.db", os.urandom(32))
    secret = "pw" + os.urandom(6).hex()
    with pytest.raises(DatabaseUnavailableError) as err:
        SharedKeyStore(f"postgresql://u:{secret}@127.0.0.1:{free_ports(1)[0]}/keys", os.urandom(32))
    assert secret not in str(err.value)
    assert "keystore database" in str(err.value)
