"""The catalog's first schema: artifacts, files, placements, envelopes, events, log index,
claims, damage.

A catalog made before migrations existed has exactly these tables; it is stamped at
this revision when first opened (sizes were INTEGER there, which SQLite stores as 64-bit
like BIGINT).

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table of the catalog."""
    op.create_table(
        "artifacts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, index=True),
        sa.Column("content_digest", sa.String(80), nullable=False, index=True),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("creator", sa.Text, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("total_size", sa.BigInteger, nullable=False),
        sa.Column("signed_by", sa.Text, nullable=True),
        sa.Column("validation_status", sa.String(16), nullable=True),
        sa.Column("validation_sha256", sa.String(64), nullable=True),
    )
    op.create_table(
        "files",
        sa.Column("artifact_id", sa.String(64), sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("ciphertext_size", sa.BigInteger, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
    )
    op.create_table(
        "placements",
        sa.Column("artifact_id", sa.String(64), sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("bucket", sa.Text, nullable=False),
        sa.Column("since", sa.String(40), nullable=False),
        sa.Column("retain_until", sa.String(40), nullable=True),
        sa.Column("legal_hold", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("pending", sa.String(16), nullable=True),
    )
    op.create_table(
        "envelopes",
        sa.Column("artifact_id", sa.String(64), sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("tier", sa.String(16), primary_key=True),
        sa.Column("kek_id", sa.String(64), nullable=False, index=True),
        sa.Column("kek_version", sa.Integer, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.String(40), nullable=False, index=True),
        sa.Column("kind", sa.Text, nullable=False, index=True),
        sa.Column("artifact_id", sa.String(64), nullable=True, index=True),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_table(
        "log_entries",
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("ts", sa.String(40), nullable=False, index=True),
        sa.Column("kind", sa.Text, nullable=False, index=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("op", sa.Text, nullable=False, index=True),
        sa.Column("principal", sa.Text, nullable=False, index=True),
        sa.Column("artifact_id", sa.String(64), nullable=True, index=True),
        sa.Column("tier", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("entry", sa.Text, nullable=False),
    )
    op.create_table(
        "claims",
        sa.Column("artifact_id", sa.String(64), sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("lease_until", sa.String(40), nullable=False),
    )
    op.create_table(
        "damage",
        sa.Column("artifact_id", sa.String(64), sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop every table of the catalog."""
    for table in (
        "damage",
        "claims",
        "log_entries",
        "events",
        "envelopes",
        "placements",
        "files",
        "artifacts",
    ):
        op.drop_table(table)
