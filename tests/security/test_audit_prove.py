"""`weightvault audit prove` and `audit check-proof` through the real CLI: a proof of an
operation's outcome checks offline (with the log's vkeys, a trust root, and the
independent RFC 6962 / signed-note verifier of the tests); a tampered entry, a
tampered proof, another log's key and an edited catalog index are each refused."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.conftest import make_tree
from tests.support.durable_store import CLI, cli, cli_json
from tests.support.rfc6962_proofs import ref_check_tlog_proof
from weightvault.artifacts import Vault
from weightvault.catalog._catalog import log_entries
from weightvault.crypto.notes import Ed25519NoteSigner
from weightvault.errors import LogVerificationError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.trust import init_root


def _put(vault: Vault, tmp_path: Path) -> str:
    src = make_tree(tmp_path / "m", {"model.bin": b"w" * 4096})
    return ingest.put(vault, src, "m").artifact_id


def _vkeys() -> list[str]:
    keys = cli_json("audit", "log-key")
    return [keys["ed25519"], keys["mldsa44"]]


def _check(proof: Path, entry: Path, *keys: str) -> subprocess.CompletedProcess[str]:
    flags = [a for k in keys for a in ("--vkey", k)]
    return cli("audit", "check-proof", str(proof), "--entry", str(entry), *flags)


def _refused(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode == LogVerificationError.exit_code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert text in proc.stderr, proc.stderr


@pytest.fixture
def proved(vault: Vault, tmp_path: Path) -> tuple[Path, Path, dict[str, object]]:
    artifact_id = _put(vault, tmp_path)
    op = vault.catalog.log_search(artifact_id=artifact_id, kind="artifact.ingested")[0]["op"]
    proof, entry = tmp_path / "put.tlog-proof", tmp_path / "put.entry"
    shown = cli_json("audit", "prove", op, "--out", str(proof), "--entry", str(entry))
    assert shown["event"]["op"] == op
    assert shown["event"]["phase"] == "outcome"
    assert shown["event"]["artifact_id"] == artifact_id
    assert proof.read_text() == shown["proof"]
    return proof, entry, shown


def test_a_proved_outcome_checks_offline_and_with_an_independent_verifier(
    vault: Vault, proved: tuple[Path, Path, dict[str, object]]
) -> None:
    proof, entry, shown = proved
    ed, ml = _vkeys()
    checked = json.loads(_check(proof, entry, ed, ml).stdout)
    assert checked["ok"] is True
    assert checked["index"] == shown["index"]
    assert checked["size"] == vault.tlog.checkpoint().checkpoint.size
    assert checked["event"]["op"] == shown["event"]["op"]  # type: ignore[index]
    origin, size, root = ref_check_tlog_proof(proof.read_text(), entry.read_bytes(), ed)
    assert origin == checked["origin"]
    assert size == checked["size"]
    assert base64.b64encode(root).decode() == checked["root"]
    # Without --out the proof goes to stdout, byte for byte; #INDEX names the same entry.
    plain = subprocess.run(
        [*CLI, "audit", "prove", f"#{shown['index']}"], capture_output=True, check=False
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == proof.read_bytes()


def test_check_proof_takes_the_log_keys_from_a_trust_root(
    vault: Vault, proved: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    proof, entry, _ = proved
    init_root(vault)
    root = tmp_path / "root.json"
    assert cli("trust", "export", str(root)).returncode == 0
    args = ("audit", "check-proof", str(proof), "--entry", str(entry), "--trust-root", str(root))
    assert cli_json(*args)["ok"] is True


def test_a_tampered_entry_or_proof_or_another_logs_key_is_refused(
    proved: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    proof, entry, _ = proved
    ed, ml = _vkeys()
    forged_entry = tmp_path / "forged.entry"
    forged_entry.write_bytes(entry.read_bytes().replace(b'"outcome":"ok"', b'"outcome":"no"'))
    assert forged_entry.read_bytes() != entry.read_bytes()
    _refused(_check(proof, forged_entry, ed, ml), "does not verify")
    head, _, note = proof.read_text().partition("\n\n")
    lines = head.split("\n")
    assert len(lines) > 2, "a proof with at least one hash"
    digest = bytearray(base64.b64decode(lines[2]))
    digest[0] ^= 1
    lines[2] = base64.b64encode(bytes(digest)).decode()
    forged_proof = tmp_path / "forged.tlog-proof"
    forged_proof.write_text("\n".join(lines) + "\n\n" + note)
    _refused(_check(forged_proof, entry, ed, ml), "does not verify")
    origin = ed.split("+", 1)[0]
    other = Ed25519NoteSigner.from_seed(origin, b"\x07" * 32).vkey
    _refused(_check(proof, entry, other), "does not verify")


def test_prove_refuses_an_entry_the_edited_index_points_to(vault: Vault, tmp_path: Path) -> None:
    artifact_id = _put(vault, tmp_path)
    row = vault.catalog.log_search(artifact_id=artifact_id, phase="outcome")[0]
    # The index claims the outcome's event id sits at the intent's index.
    with vault.catalog.engine.begin() as conn:
        conn.execute(update(log_entries).where(log_entries.c.idx == row["idx"]).values(id="x"))
        conn.execute(
            update(log_entries).where(log_entries.c.idx == row["idx"] - 1).values(id=row["id"])
        )
    _refused(cli("audit", "prove", row["id"]), f"log entry {row['idx'] - 1} is not {row['id']}")
