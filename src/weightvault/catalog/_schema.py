"""The catalog's tables as the code reads and writes them.

The migrations (``migrations/versions``) build exactly this schema; a test compares
the two on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False, index=True),
    Column("content_digest", String(80), nullable=False, index=True),
    Column("manifest_sha256", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("creator", Text, nullable=False),
    Column("tier", String(16), nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("signed_by", Text, nullable=True),
    Column("validation_status", String(16), nullable=True),
    Column("validation_sha256", String(64), nullable=True),
)

files = Table(
    "files",
    metadata,
    Column("artifact_id", String(64), ForeignKey("artifacts.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("ciphertext_size", BigInteger, nullable=False),
    Column("object_key", Text, nullable=False),
)

placements = Table(
    "placements",
    metadata,
    Column("artifact_id", String(64), ForeignKey("artifacts.id"), primary_key=True),
    Column("tier", String(16), nullable=False),
    Column("bucket", Text, nullable=False),
    Column("since", String(40), nullable=False),
    Column("retain_until", String(40), nullable=True),
    Column("legal_hold", Integer, nullable=False, default=0),
    Column("generation", Integer, nullable=False, default=0),
    # Set while a promotion or quarantine holds the artifact: the claim that
    # makes concurrent moves of one artifact exclusive.
    Column("pending", String(16), nullable=True),
)

envelopes = Table(
    "envelopes",
    metadata,
    Column("artifact_id", String(64), ForeignKey("artifacts.id"), primary_key=True),
    Column("tier", String(16), primary_key=True),
    Column("kek_id", String(64), nullable=False, index=True),
    Column("kek_version", Integer, nullable=False),
    Column("object_key", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("ts", String(40), nullable=False, index=True),
    Column("kind", Text, nullable=False, index=True),
    Column("artifact_id", String(64), nullable=True, index=True),
    Column("actor", Text, nullable=False),
    Column("details", Text, nullable=False),
)

# Every transparency-log entry (intents and outcomes), indexed for ``audit show|search``;
# ``entry`` is the entry's exact bytes. The log is the truth; this is its index.
log_entries = Table(
    "log_entries",
    metadata,
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("id", String(64), nullable=False, unique=True),
    Column("ts", String(40), nullable=False, index=True),
    Column("kind", Text, nullable=False, index=True),
    Column("phase", String(16), nullable=False),
    Column("op", Text, nullable=False, index=True),
    Column("principal", Text, nullable=False, index=True),
    Column("artifact_id", String(64), nullable=True, index=True),
    Column("tier", String(32), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("reason", Text, nullable=True),
    Column("entry", Text, nullable=False),
)

# Who holds a placement's claim (``placements.pending``) and until when: a claim
# whose owner process is gone, or whose lease expired, may be taken over.
claims = Table(
    "claims",
    metadata,
    Column("artifact_id", String(64), ForeignKey("artifacts.id"), primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started", Float, nullable=False),
    Column("lease_until", String(40), nullable=False),
)

# Artifacts a rebuild found committed but damaged (e.g. a retained cold artifact whose
# envelope is gone): indexed so they are never silently dropped, with the reason.
damage = Table(
    "damage",
    metadata,
    Column("artifact_id", String(64), ForeignKey("artifacts.id"), primary_key=True),
    Column("reason", Text, nullable=False),
)

TABLES = (artifacts, files, placements, envelopes, events, log_entries, claims, damage)

# Alembic's own bookkeeping table, as Alembic defines it: the schema's revision.
alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
