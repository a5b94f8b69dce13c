"""`weightvault audit verify` against the real store and CLI: a clean vault verifies; an
edited catalog index row, an edited entry bundle in the bucket and a rolled-back
checkpoint are each detected and named."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from tests.conftest import make_tree
from tests.support.durable_store import CLI, cli
from weightvault.artifacts import Vault
from weightvault.catalog._catalog import log_entries
from weightvault.errors import LogForkError, LogVerificationError
from weightvault.lifecycle import ingest, quarantine
from weightvault.lifecycle.audit import verify_audit
from weightvault.store.layout import (
    STATEMENTS_PREFIX,
    envelope_key,
    log_checkpoint_key,
    log_tile_key,
    manifest_key,
)
from weightvault.tlog import entries_path


def _lifecycle(vault: Vault, tmp_path: Path) -> str:
    src = make_tree(tmp_path / "m", {"model.bin": b"w" * 4096, "config.json": b'{"a": 1}'})
    artifact_id = ingest.put(vault, src, "m").artifact_id
    vault.verify(artifact_id)
    vault.get(artifact_id, tmp_path / "out")
    return artifact_id


def _errors(proc: subprocess.CompletedProcess[str], code: int) -> list[str]:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("{")]
    assert lines, proc.stderr
    assert all(ln.startswith("weightvault: error: log ") for ln in lines), lines
    return lines


def test_a_clean_vault_verifies(vault: Vault, tmp_path: Path) -> None:
    _lifecycle(vault, tmp_path)
    size = vault.tlog.checkpoint().checkpoint.size
    proc = cli("audit", "verify")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["size"] == size >= 6  # put, verify, get: an intent and an outcome each
    assert report["index"] == {"rows": size, "agree": size, "pending": 0}
    assert report["checkpoint_time"] is not None
    assert vault.settings.last_checkpoint_path.is_file()
    human = subprocess.run([*CLI, "audit", "verify"], capture_output=True, text=True, check=False)
    assert human.returncode == 0, human.stderr
    assert f"size {size}, root {report['root']}" in human.stdout
    assert "witnesses: none required" in human.stdout


def test_an_edited_missing_or_extra_catalog_row_is_named(vault: Vault, tmp_path: Path) -> None:
    _lifecycle(vault, tmp_path)
    size = vault.tlog.checkpoint().checkpoint.size
    with vault.catalog.engine.begin() as conn:
        # Forge a read by someone else, drop an entry from the index, add one of no entry.
        conn.execute(update(log_entries).where(log_entries.c.idx == 1).values(principal="mallory"))
        row = conn.execute(select(log_entries).where(log_entries.c.idx == 2)).one()._asdict()
        conn.execute(delete(log_entries).where(log_entries.c.idx == 2))
        forged = {**row, "idx": size + 5, "id": "forged-id"}
        conn.execute(insert(log_entries), [forged])
    proc = cli("audit", "verify")
    lines = _errors(proc, LogVerificationError.exit_code)
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    joined = "\n".join(lines)
    assert "catalog log_entries row 1: differs from log entry 1 in principal" in joined
    assert "log entry 2: is missing from the catalog's index" in joined
    assert f"catalog log_entries row {size + 5}: indexes no log entry" in joined
    assert len(lines) == 3


def test_an_edited_entry_in_the_entry_bundle_is_named(vault: Vault, tmp_path: Path) -> None:
    _lifecycle(vault, tmp_path)
    audit = vault.bucket("audit")
    size = vault.tlog.checkpoint().checkpoint.size
    key = log_tile_key(entries_path(0, size))
    bundle = vault.store.get_bytes(audit, key)
    edited = bundle.replace(b'"outcome":"ok"', b'"outcome":"no"', 1)
    assert edited != bundle
    vault.store.put_bytes(audit, key, edited)
    lines = _errors(cli("audit", "verify"), LogVerificationError.exit_code)
    joined = "\n".join(lines)
    assert "does not match its hash in log/tile/0/" in joined
    assert "not the signed root" in joined


def test_a_rolled_back_checkpoint_is_a_fork_error(vault: Vault, tmp_path: Path) -> None:
    _lifecycle(vault, tmp_path)
    audit = vault.bucket("audit")
    old_note = vault.store.get_bytes(audit, log_checkpoint_key())
    src = make_tree(tmp_path / "later", {"w.bin": b"l" * 2048})
    ingest.put(vault, src, "later")
    # This host sees the grown log, then the attacker restores the older checkpoint.
    assert cli("audit", "verify").returncode == 0
    vault.store.put_bytes(audit, log_checkpoint_key(), old_note)
    proc = cli("audit", "verify")
    lines = _errors(proc, LogForkError.exit_code)
    assert any("the log was rolled back" in ln for ln in lines), lines
    # The host's last-seen checkpoint is kept, so the rollback stays detected.
    assert _errors(cli("audit", "verify"), LogForkError.exit_code)


def test_the_store_is_checked_against_the_log(vault: Vault, tmp_path: Path) -> None:
    """An envelope swapped for another artifact's, a signed statement deleted, and an
    artifact the log never recorded: each named by `audit verify`, nothing else."""
    first = _lifecycle(vault, tmp_path)
    src = make_tree(tmp_path / "second", {"w.bin": b"s" * 2048})
    second = ingest.put(vault, src, "second").artifact_id
    quarantine.quarantine(vault, second, reason="drill")
    assert "store: 2 artifacts hold the objects" in " ".join(verify_audit(vault)[0].checked)

    envelopes, audit, hot = vault.bucket("envelopes"), vault.bucket("audit"), vault.bucket("hot")
    other = vault.store.get_bytes(envelopes, envelope_key(second, "hot"))
    vault.store.put_bytes(envelopes, envelope_key(first, "hot"), other)
    (statement,) = [o.key for o in vault.store.list(audit, STATEMENTS_PREFIX)]
    vault.store.remove(audit, statement)
    stray = "0" * 8 + first[8:]
    manifest = vault.store.get_bytes(hot, manifest_key(first))
    vault.store.put_bytes(hot, manifest_key(stray), manifest)

    lines = _errors(cli("audit", "verify"), LogVerificationError.exit_code)
    joined = "\n".join(lines)
    assert f"artifact {first}: its envelope in hot is not the one log entry" in joined
    assert f"names signed statement {statement}, which is missing from the store" in joined
    assert f"artifact {stray}: committed in hot but the log records no state of it" in joined
    assert len(lines) == 3
