"""Alembic's environment for the catalog: run on the connection the catalog hands over.

The catalog calls Alembic itself (``weightvault.catalog._migrate``), always with an
open connection in ``config.attributes["connection"]``; there is no offline mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover - misuse
    raise TypeError("the catalog migrations run only through weightvault.catalog")
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
