"""The catalog on both of its backends: SQLite and a real PostgreSQL.

Every test here runs twice, against a SQLite file and against a database of its own
on the PostgreSQL cluster the session starts. The schema comes from the Alembic
migrations (compared column by column with the tables the code uses), and the
concurrency guarantees (one winner per claim, one row per artifact id, every log
entry and event indexed once) are shown with several processes at once.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, insert, select, text

from tests.support import catalog_race
from tests.support.postgres import PostgresServer
from tests.support.spawned import in_processes
from weightvault._database import database_url
from weightvault.catalog import Catalog
from weightvault.catalog._migrate import _MIGRATIONS, HEAD
from weightvault.catalog._schema import alembic_version, artifacts, metadata
from weightvault.errors import (
    AmbiguousIdError,
    CatalogSchemaError,
    ConflictError,
    DatabaseConfigError,
    DatabaseUnavailableError,
    NotFoundError,
)

FIVE_GIB = 5 * 1024**3
PROCESSES = 6


# PostgreSQL is a service the test session starts: not in the fast tier.
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty catalog database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database("catalog_" + uuid.uuid4().hex[:12])


def _engine_url(url: str) -> str:
    return database_url(url, "catalog").render_as_string(hide_password=False)


def _alembic(conn: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def artifact_rows(artifact_id: str, *, digest: str = "sha256:" + "ab" * 32) -> dict[str, Any]:
    """The rows of one hot artifact with a 5 GiB file (past 32-bit sizes)."""
    return {
        "artifact": {
            "id": artifact_id,
            "name": "model-" + "x" * 300,  # longer than any VARCHAR(255)
            "content_digest": digest,
            "manifest_sha256": "cd" * 32,
            "created_at": "2026-12-03T08:00:00Z",
            "creator": "ci@example",
            "tier": "hot",
            "file_count": 1,
            "total_size": FIVE_GIB,
            "signed_by": "vault-signing@v1",
            "validation_status": None,
            "validation_sha256": None,
        },
        "files": [
            {
                "artifact_id": artifact_id,
                "idx": 0,
                "path": "model.safetensors",
                "size": FIVE_GIB,
                "sha256": "ef" * 32,
                "ciphertext_size": FIVE_GIB + 4096,
                "object_key": f"{artifact_id}/0",
            }
        ],
        "placement": {
            "artifact_id": artifact_id,
            "tier": "hot",
            "bucket": "weightvault-hot",
            "since": "2026-12-03T08:00:00Z",
            "retain_until": None,
            "legal_hold": 0,
            "generation": 0,
            "pending": None,
        },
        "envelope": {
            "artifact_id": artifact_id,
            "tier": "hot",
            "kek_id": "kek-hot",
            "kek_version": 1,
            "object_key": f"{artifact_id}/envelope",
        },
    }


def log_row(idx: int, artifact_id: str) -> dict[str, Any]:
    """A log index row of entry ``idx`` about ``artifact_id``."""
    return {
        "idx": idx,
        "id": f"entry-{idx:06d}",
        "ts": f"2026-12-03T08:{idx // 60 % 60:02d}:{idx % 60:02d}Z",
        "kind": "artifact.read",
        "phase": "outcome",
        "op": f"op-{idx}",
        "principal": "alice@example",
        "artifact_id": artifact_id,
        "tier": "hot",
        "outcome": "ok",
        "reason": None,
        "entry": f'{{"idx":{idx},"kind":"artifact.read"}}',
    }


def add(catalog: Catalog, rows: dict[str, Any]) -> None:
    with catalog.transaction() as conn:
        catalog.add_artifact(
            conn, rows["artifact"], rows["files"], rows["placement"], rows["envelope"]
        )


# -- the schema ----------------------------------------------------------------------------


def test_head_is_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD]


def test_the_migrations_build_exactly_the_schema_the_code_uses(url: str) -> None:
    engine = create_engine(_engine_url(url))
    with engine.connect() as conn:
        command.upgrade(_alembic(conn), "head")
        conn.commit()
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(select(alembic_version.c.version_num)).scalars().all() == [HEAD]
    engine.dispose()
    # A catalog opened on the migrated database takes it as current.
    catalog = Catalog(url)
    add(catalog, artifact_rows("wv-migrated"))
    assert catalog.artifact("wv-migrated").total_size == FIVE_GIB


def test_a_new_catalog_is_created_at_head(url: str) -> None:
    catalog = Catalog(url)
    with catalog.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(select(alembic_version.c.version_num)).scalars().all() == [HEAD]


def test_a_catalog_made_before_migrations_is_adopted_with_its_rows(url: str) -> None:
    engine = create_engine(_engine_url(url))
    metadata.create_all(engine)  # what every catalog before migrations was
    rows = artifact_rows("wv-legacy0001")
    with engine.begin() as conn:
        conn.execute(insert(artifacts), [rows["artifact"]])
    with engine.connect() as conn:
        assert "alembic_version" not in set(conn.dialect.get_table_names(conn))
    engine.dispose()
    catalog = Catalog(url)
    assert catalog.artifact("wv-legacy0001").name.startswith("model-")
    with catalog.engine.connect() as conn:
        assert conn.execute(select(alembic_version.c.version_num)).scalars().all() == [HEAD]


def test_a_catalog_from_a_newer_weightvault_is_refused_untouched(url: str) -> None:
    catalog = Catalog(url)
    add(catalog, artifact_rows("wv-newer00001"))
    with catalog.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    catalog.engine.dispose()
    with pytest.raises(CatalogSchemaError, match="revision 9999") as err:
        Catalog(url)
    assert err.value.exit_code == 74
    engine = create_engine(_engine_url(url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM artifacts")).scalar_one() == 1
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "9999"
    engine.dispose()


# -- reads and writes ----------------------------------------------------------------------


def test_rows_round_trip(url: str) -> None:
    catalog = Catalog(url)
    rows = artifact_rows("wv-aaaa00000001")
    add(catalog, rows)
    add(catalog, artifact_rows("wv-aaaa00000002", digest="sha256:" + "01" * 32))
    with pytest.raises(ConflictError, match="already in the catalog"):
        add(catalog, rows)
    row = catalog.artifact("wv-aaaa00000001")
    assert row.total_size == FIVE_GIB
    assert row.name == rows["artifact"]["name"]
    assert catalog.files_of(row.id)[0]["size"] == FIVE_GIB
    assert [a.id for a in catalog.find_by_digest(rows["artifact"]["content_digest"])] == [row.id]
    with pytest.raises(AmbiguousIdError):
        catalog.artifact("wv-aaaa")
    with pytest.raises(NotFoundError):
        catalog.artifact("wv-nothere")
    with catalog.transaction() as conn:
        catalog.set_envelope(conn, row.id, "warm", "kek-warm", 3, f"{row.id}/warm-envelope")
    assert catalog.envelope_counts() == {("kek-hot", 1): 2, ("kek-warm", 3): 1}
    with catalog.transaction() as conn:
        updated = catalog.update_envelope_versions(
            conn, [{"artifact_id": row.id, "tier": "hot", "kek_id": "kek-hot", "kek_version": 2}]
        )
    assert updated == 1
    assert [e["artifact_id"] for e in catalog.envelopes_on("kek-hot", 2)] == [row.id]
    catalog.set_validation(row.id, "passed", "12" * 32)
    assert catalog.artifact(row.id).validation_status == "passed"
    assert catalog.signed_counts() == {"vault-signing@v1": 2}
    with catalog.transaction() as conn:
        for i in range(3):
            catalog.add_log_entry(conn, log_row(i, row.id))
            catalog.add_log_entry(conn, log_row(i, row.id))  # idempotent
    assert catalog.log_indexes(3) == (3, None)
    assert [i for i, _ in catalog.log_history(row.id, 10)] == [0, 1, 2]
    assert [i for i, _ in catalog.log_mentions("artifact.read", '"idx":1', -1)] == [1]
    assert [r["idx"] for r in catalog.iter_log_rows(batch=2)] == [0, 1, 2]
    assert len(catalog.log_search(principal="alice@example", ref="2")) == 1
    before = catalog.dump()
    with catalog.transaction() as conn:
        catalog.remove_artifact(conn, "wv-aaaa00000002")
    assert [a.id for a in catalog.list_artifacts()] == [row.id]
    assert catalog.dump() != before


def test_replace_all_swaps_the_whole_index_or_nothing(url: str) -> None:
    from weightvault.catalog import IndexedArtifact

    catalog = Catalog(url)
    add(catalog, artifact_rows("wv-old000000001"))
    items = [
        IndexedArtifact(
            r["artifact"], tuple(r["files"]), r["placement"], (r["envelope"],), damage=d
        )
        for r, d in (
            (artifact_rows("wv-new000000001"), None),
            (artifact_rows("wv-new000000002"), "envelope gone"),
        )
    ]
    catalog.replace_all([], items, [log_row(0, "wv-new000000001")])
    assert sorted(a.id for a in catalog.list_artifacts()) == ["wv-new000000001", "wv-new000000002"]
    assert catalog.damaged() == {"wv-new000000002": "envelope gone"}
    snapshot = catalog.dump()
    with pytest.raises(ConflictError, match="indexed twice"):
        catalog.replace_all([], [items[0], items[0]])
    assert catalog.dump() == snapshot


# -- several processes at once ---------------------------------------------------------------


@pytest.mark.slow  # spawns processes
def test_concurrent_first_opens_migrate_once(url: str) -> None:
    assert in_processes(PROCESSES, catalog_race.open_catalog, url) == ["ok"] * PROCESSES
    catalog = Catalog(url)
    with catalog.engine.connect() as conn:
        assert conn.execute(select(alembic_version.c.version_num)).scalars().all() == [HEAD]


@pytest.mark.slow  # spawns processes
def test_one_process_wins_a_claim(url: str) -> None:
    catalog = Catalog(url)
    add(catalog, artifact_rows("wv-claimed00001"))
    results = in_processes(PROCESSES, catalog_race.claim, url, "wv-claimed00001")
    assert sorted(map(str, results)) == ["1"] + ["conflict"] * (PROCESSES - 1)
    holder = catalog.claim_holder("wv-claimed00001")
    assert holder is not None
    assert holder.generation == 1
    assert holder.target == "warm"


@pytest.mark.slow  # spawns processes
def test_one_process_inserts_an_artifact_id(url: str) -> None:
    Catalog(url)
    results = in_processes(
        PROCESSES, catalog_race.add_artifact, url, artifact_rows("wv-raced000001")
    )
    assert sorted(results) == ["conflict"] * (PROCESSES - 1) + ["ok"]
    catalog = Catalog(url)
    assert len(catalog.files_of("wv-raced000001")) == 1


@pytest.mark.slow  # spawns processes
def test_log_entries_and_events_indexed_by_several_processes_are_there_once(url: str) -> None:
    catalog = Catalog(url)
    add(catalog, artifact_rows("wv-logged00001"))
    entries = [log_row(i, "wv-logged00001") for i in range(40)]
    assert in_processes(PROCESSES, catalog_race.index_log, url, entries) == ["ok"] * PROCESSES
    assert [r["idx"] for r in catalog.iter_log_rows()] == list(range(40))
    assert len(catalog.events_of("wv-logged00001")) == 40


# -- what a misconfigured or unreachable database says -----------------------------------------


def test_an_unreachable_database_is_a_one_line_transient_error() -> None:
    from weightvault.store import free_ports

    secret = "pw" + os.urandom(8).hex()
    with pytest.raises(DatabaseUnavailableError) as err:
        Catalog(f"postgresql://weightvault:{secret}@127.0.0.1:{free_ports(1)[0]}/catalog")
    assert err.value.exit_code == 72
    message = str(err.value)
    assert "\n" not in message
    assert secret not in message
    assert "127.0.0.1" in message
    assert "refused" in message.lower()


@pytest.mark.slow
def test_wrong_credentials_or_database_are_one_line_config_errors(postgres: PostgresServer) -> None:
    secret = "pw" + os.urandom(8).hex()
    wrong = f"postgresql://{postgres.user}:{secret}@{postgres.host}:{postgres.port}/postgres"
    with pytest.raises(DatabaseConfigError, match="password authentication failed") as err:
        Catalog(wrong)
    assert err.value.exit_code == 73
    assert secret not in str(err.value)
    assert postgres.password not in str(err.value)
    missing = postgres.url(database="no_such_catalog")
    with pytest.raises(DatabaseConfigError, match="no_such_catalog") as err:
        Catalog(missing)
    assert postgres.password not in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "bad",
    ["postgresql+asyncpg://u:p@h/db", "mysql://u@h/db", "not a url", "postgresql+psycopg2://u@h/d"],
)
def test_urls_the_catalog_cannot_use_are_refused_by_name(bad: str) -> None:
    with pytest.raises(DatabaseConfigError) as err:
        Catalog(bad)
    assert err.value.exit_code == 73
    assert "\n" not in str(err.value)
