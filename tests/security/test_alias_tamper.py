"""An alias is what the signed log says: a tampered catalog row must not redirect it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from tests.conftest import make_tree
from tests.support.payloads import weights
from weightvault.artifacts import Vault
from weightvault.catalog._catalog import log_entries
from weightvault.errors import IntegrityError
from weightvault.lifecycle import ingest, names


def _alias_row(vault: Vault) -> tuple[int, str]:
    with vault.catalog.engine.connect() as conn:
        row = conn.execute(
            select(log_entries.c.idx, log_entries.c.entry).where(
                (log_entries.c.kind == "alias.set") & (log_entries.c.phase == "outcome")
            )
        ).one()
    return int(row[0]), str(row[1])


def test_a_tampered_index_row_does_not_move_an_alias(vault: Vault, tmp_path: Path) -> None:
    good = ingest.put(vault, make_tree(tmp_path / "g", {"w": weights(500)}), "digits")
    evil = ingest.put(vault, make_tree(tmp_path / "e", {"w": weights(500)}), "digits")
    names.set_alias(vault, "digits@champion", good.artifact_id)
    index, entry = _alias_row(vault)

    # The attacker points the indexed entry at their artifact: refused, not redirected.
    forged = entry.replace(good.artifact_id, evil.artifact_id)
    with vault.catalog.transaction() as conn:
        conn.execute(
            update(log_entries)
            .where(log_entries.c.idx == index)
            .values(entry=forged, artifact_id=evil.artifact_id)
        )
    with pytest.raises(IntegrityError, match="tampered"):
        vault.resolve("digits@champion")
    out = tmp_path / "out"
    with pytest.raises(IntegrityError):
        vault.get("digits@champion", out)
    assert not out.exists()

    # Only the column edited: the entry's own text decides.
    with vault.catalog.transaction() as conn:
        conn.execute(update(log_entries).where(log_entries.c.idx == index).values(entry=entry))
    assert vault.resolve("digits@champion").id == good.artifact_id

    # The row deleted: indexed again from the log itself.
    with vault.catalog.transaction() as conn:
        conn.execute(delete(log_entries).where(log_entries.c.idx == index))
    assert vault.resolve("digits@champion").id == good.artifact_id
