"""Bring a catalog's schema to this version's, with Alembic, exactly once at a time.

Opening a catalog checks its revision (one query when it is current). Otherwise,
under a lock that makes concurrent openers wait rather than race (a PostgreSQL
advisory lock, or an exclusive lock on a file beside a SQLite database):

- an empty database gets the current schema and is stamped at :data:`HEAD` in one
  transaction (Alembic's "create from scratch, then stamp"; a test proves the
  migrations build the same schema);
- a catalog made before migrations existed (its tables, no ``alembic_version``) is
  stamped at :data:`FIRST`, then upgraded by the migrations in
  ``weightvault/catalog/migrations``;
- a catalog at an older revision is upgraded by them;
- a catalog at a revision this version does not know (a newer weightvault migrated
  it) is refused rather than written with the wrong schema.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, inspect, select, text

from weightvault._database import POSTGRESQL, backend
from weightvault.catalog._schema import alembic_version, metadata
from weightvault.errors import CatalogSchemaError

HEAD = "0001"
"""The newest revision in ``migrations/versions`` (a test keeps the two in step)."""
FIRST = "0001"
"""The revision whose schema the catalogs made before migrations already have."""
_MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_KEY = 0x7765_6967_6874  # b"weight": one lock for every catalog migration
_VERSION_TABLE = alembic_version.name


def revision(conn: Connection) -> str | None:
    """The catalog's schema revision; ``None`` for an empty database, ``""`` for a catalog
    made before migrations."""
    tables = set(inspect(conn).get_table_names())
    if _VERSION_TABLE not in tables:
        return "" if "artifacts" in tables else None
    found = conn.execute(select(alembic_version.c.version_num)).scalars().all()
    return found[0] if len(found) == 1 else ",".join(sorted(found))


def upgrade(engine: Engine, lock_file: Path | None) -> None:
    """Migrate the catalog of ``engine`` to :data:`HEAD` (nothing when it is there)."""
    with engine.connect() as conn:
        current = revision(conn)
    if current == HEAD:
        return
    with _exclusive(engine, lock_file) as conn:
        current = revision(conn)
        if current == HEAD:
            return
        if current is None:
            conn.rollback()  # end the read's implicit transaction
            with conn.begin():
                metadata.create_all(conn)
                alembic_version.create(conn)
                conn.execute(insert(alembic_version), [{"version_num": HEAD}])
            return
        _run(conn, current)


def _run(conn: Connection, current: str) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    known = {r.revision for r in ScriptDirectory.from_config(config).walk_revisions()}
    if current and current not in known:
        raise CatalogSchemaError(
            f"the catalog's schema is at revision {current}, which this weightvault does not "
            f"know (it knows up to {HEAD}): a newer weightvault migrated it; upgrade weightvault"
        )
    if current == "":
        command.stamp(config, FIRST)
    command.upgrade(config, "head")
    conn.commit()


@contextlib.contextmanager
def _exclusive(engine: Engine, lock_file: Path | None) -> Iterator[Connection]:
    if backend(engine.url) == POSTGRESQL:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                conn.commit()
        return
    fd = None
    if lock_file is not None:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
