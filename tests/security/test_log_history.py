"""``Vault.history``: an artifact's operations as the signed log records them. The catalog's
index only finds them: a forged index row is refused, and rows nobody indexed (another
process's appends) are caught up from the log's tiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, update

from tests.conftest import make_tree
from weightvault._json import canonical_json
from weightvault.artifacts import Vault
from weightvault.catalog._catalog import log_entries
from weightvault.errors import IntegrityError
from weightvault.lifecycle import ingest, quarantine


def _artifact(vault: Vault, tmp_path: Path) -> str:
    src = make_tree(tmp_path / "m", {"model.bin": b"w" * 2048})
    artifact_id = ingest.put(vault, src, "m").artifact_id
    vault.verify(artifact_id)
    return artifact_id


def test_history_lists_ok_outcomes_proved_in_the_log(vault: Vault, tmp_path: Path) -> None:
    artifact_id = _artifact(vault, tmp_path)
    quarantine.quarantine(vault, artifact_id, reason="drill")
    kinds = [e.event.kind for e in vault.history(artifact_id)]
    assert kinds == ["artifact.ingested", "artifact.verified", "artifact.quarantined"]
    only = vault.history(artifact_id, {"artifact.quarantined"})
    assert [e.event.details["reason"] for e in only] == ["drill"]
    assert all(e.event.phase == "outcome" and e.event.outcome == "ok" for e in only)


def test_a_forged_index_row_is_refused(vault: Vault, tmp_path: Path) -> None:
    artifact_id = _artifact(vault, tmp_path)
    quarantine.quarantine(vault, artifact_id, reason="incident 7")
    (row,) = vault.catalog.log_search(
        artifact_id=artifact_id, kind="artifact.quarantined", phase="outcome"
    )
    forged = row["entry"]
    forged["details"]["reason"] = "nothing to see"
    with vault.catalog.engine.begin() as conn:
        conn.execute(
            update(log_entries)
            .where(log_entries.c.idx == row["idx"])
            .values(entry=canonical_json(forged).decode())
        )
    with pytest.raises(IntegrityError, match=f"index of the log was tampered with.*{row['idx']}"):
        vault.history(artifact_id)


def test_unindexed_entries_are_caught_up_from_the_log(vault: Vault, tmp_path: Path) -> None:
    artifact_id = _artifact(vault, tmp_path)
    quarantine.quarantine(vault, artifact_id, reason="incident 8")
    with vault.catalog.engine.begin() as conn:
        conn.execute(delete(log_entries).where(log_entries.c.artifact_id == artifact_id))
    kinds = [e.event.kind for e in vault.history(artifact_id)]
    assert kinds == ["artifact.ingested", "artifact.verified", "artifact.quarantined"]
    size = vault.tlog.checkpoint().checkpoint.size
    assert vault.catalog.log_indexes(size)[1] is None
