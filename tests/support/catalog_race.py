"""Child process bodies for the catalog's multi-process tests (kept light: spawn imports it)."""

from __future__ import annotations

from typing import Any

from weightvault.catalog import Catalog
from weightvault.errors import ConflictError


def open_catalog(url: str, barrier: Any, out: Any) -> None:
    """Wait for the others, then open (and so migrate) the catalog at ``url``."""
    barrier.wait(timeout=60)
    try:
        Catalog(url)
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(f"{type(exc).__name__}: {exc}")
        return
    out.put("ok")


def claim(url: str, artifact_id: str, barrier: Any, out: Any) -> None:
    """Wait for the others, then try to claim ``artifact_id`` from hot to warm."""
    catalog = Catalog(url)
    barrier.wait(timeout=60)
    try:
        out.put(catalog.claim(artifact_id, "hot", "warm"))
    except ConflictError:
        out.put("conflict")


def add_artifact(url: str, rows: dict[str, Any], barrier: Any, out: Any) -> None:
    """Wait for the others, then insert the same artifact."""
    catalog = Catalog(url)
    barrier.wait(timeout=60)
    try:
        with catalog.transaction() as conn:
            catalog.add_artifact(
                conn, rows["artifact"], rows["files"], rows["placement"], rows["envelope"]
            )
    except ConflictError:
        out.put("conflict")
        return
    out.put("ok")


def index_log(url: str, log_rows: list[dict[str, Any]], barrier: Any, out: Any) -> None:
    """Wait for the others, then index every entry of ``log_rows`` and an event each."""
    catalog = Catalog(url)
    barrier.wait(timeout=60)
    for row in log_rows:
        with catalog.transaction() as conn:
            catalog.add_log_entry(conn, row)
            catalog.add_event(
                conn,
                {
                    "id": row["id"],
                    "ts": row["ts"],
                    "kind": row["kind"],
                    "artifact_id": row["artifact_id"],
                    "actor": row["principal"],
                    "details": "{}",
                },
            )
    out.put("ok")
