"""Alembic migrations of the catalog's schema (SQLite and PostgreSQL alike)."""
