"""The sealed keystore in PostgreSQL, shared by every worker and host of a vault.

The keystore's logic (sealing, versions, version records, backups, wrap counts) is
:class:`~weightvault.keys.SealedKeyStore`'s; this is only where its sealed bytes
live: one row of the table ``weightvault_keystore``, read and written by any number
of processes on any number of hosts. A change is a read-modify-write under the row's
lock (``SELECT ... FOR UPDATE``), so two rotations started at once serialise and
the second sees the first's new version. The row also carries the sealed version,
and a write that would not raise it is refused: a stale writer cannot roll it back.
The database holds only ciphertext sealed under the master key, which never leaves
the workers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Unpack

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    LargeBinary,
    MetaData,
    Table,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from weightvault._database import POSTGRESQL, backend, database_url, open_engine, shown
from weightvault.errors import ConfigError, KeystoreRollbackError
from weightvault.keys._keystore import KeystoreOptions, SealedKeyStore

_metadata = MetaData()
keystore_rows = Table(
    "weightvault_keystore",
    _metadata,
    Column("name", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("sealed", LargeBinary, nullable=True),
)
_CREATE_LOCK = 0x7765_6B73  # b"weks": creating the table, once
_ROLE = "keystore"


class PostgresSealedBlob:
    """A keystore's sealed bytes in one PostgreSQL row, locked per change."""

    def __init__(self, url: str, name: str = "keystore") -> None:
        parsed = database_url(url, _ROLE)
        if backend(parsed) != POSTGRESQL:
            raise ConfigError("the shared keystore needs a postgresql:// URL")
        self.name = name
        self._where = f"{shown(parsed)} ({keystore_rows.name}/{name})"
        self._engine = open_engine(parsed, _ROLE)
        self._held = threading.local()
        with self._engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CREATE_LOCK})
            _metadata.create_all(conn)
            conn.execute(
                pg_insert(keystore_rows).on_conflict_do_nothing(index_elements=["name"]),
                [{"name": name, "version": 0, "sealed": None}],
            )
            conn.commit()

    def __str__(self) -> str:
        return self._where

    def _conn(self) -> Connection | None:
        conn: Connection | None = getattr(self._held, "conn", None)
        return conn

    def read(self) -> bytes | None:
        """The sealed bytes (inside :meth:`exclusive`: as this holder sees them)."""
        query = select(keystore_rows.c.sealed).where(keystore_rows.c.name == self.name)
        held = self._conn()
        if held is not None:
            found = held.execute(query).scalar_one_or_none()
        else:
            with self._engine.connect() as conn:
                found = conn.execute(query).scalar_one_or_none()
        return None if found is None else bytes(found)

    def write(self, blob: bytes, version: int) -> None:
        """Replace the sealed bytes by ``blob`` of ``version``; only inside :meth:`exclusive`."""
        held = self._conn()
        if held is None:
            raise RuntimeError("the shared keystore is written only under its lock")
        done = held.execute(
            update(keystore_rows)
            .where((keystore_rows.c.name == self.name) & (keystore_rows.c.version < version))
            .values(sealed=blob, version=version)
        )
        held.commit()
        if done.rowcount != 1:
            raise KeystoreRollbackError(
                f"keystore {self._where} already holds version {version} or newer: "
                "refusing to write an older one"
            )

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this keystore's lock (re-entrant in one thread) while the caller changes it."""
        if self._conn() is not None:
            yield
            return
        lock = text("SELECT pg_advisory_lock(hashtextextended(:n, 0))")
        unlock = text("SELECT pg_advisory_unlock(hashtextextended(:n, 0))")
        key = {"n": f"weightvault-keystore:{self.name}"}
        with self._engine.connect() as conn:
            conn.execute(lock, key)
            conn.commit()
            self._held.conn = conn
            try:
                yield
            finally:
                self._held.conn = None
                conn.rollback()
                conn.execute(unlock, key)
                conn.commit()


class SharedKeyStore(SealedKeyStore):
    """The keystore sealed in PostgreSQL (``WEIGHTVAULT_KEYSTORE_URL``), shared by every
    worker: rotation, rekey and unwrap work from any of them."""

    def __init__(
        self,
        url: str,
        master_key: bytes,
        *,
        name: str = "keystore",
        **options: Unpack[KeystoreOptions],
    ) -> None:
        self.url = url
        super().__init__(PostgresSealedBlob(url, name), master_key, **options)
