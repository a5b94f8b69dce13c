"""Export bundles carry c2sp tlog-proofs of the artifact's log entries; offline-verify
checks them against the pinned trust root's log keys. Each attack below holds the
vault's own bundle-signing key (so the bundle signature and file list stay valid) and
is still refused: proofs stripped, an entry edited, proofs re-signed by another log,
another artifact's proved entries swapped in."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_tree
from tests.support.approvals import self_approved
from tests.support.artifacts import ingest_model
from tests.support.bundles import resign_index
from tests.support.rfc6962_proofs import ref_check_tlog_proof
from weightvault._json import canonical_json
from weightvault.artifacts import Vault
from weightvault.crypto.notes import Ed25519NoteSigner, MLDSA44Cosigner, sign_note
from weightvault.errors import IntegrityError, LogVerificationError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.escrow import split_escrow_key
from weightvault.lifecycle.export import export_bundle, verify_bundle
from weightvault.lifecycle.promote import promote
from weightvault.lifecycle.trust import init_root
from weightvault.lifecycle.validate import validate_artifact
from weightvault.provenance import Root, signing_key
from weightvault.records import prove_entry
from weightvault.tlog import TlogProof, parse_checkpoint, parse_tlog_proof

CLI = [sys.executable, "-m", "weightvault.cli"]


def _cold(vault: Vault, model_repo: Path) -> str:
    artifact_id = ingest_model(vault, model_repo)
    assert validate_artifact(vault, artifact_id, model_repo).status == "passed"
    promote(vault, artifact_id, "warm", justification="staging")
    promote(self_approved(vault, artifact_id), artifact_id, "cold", justification="release")
    return artifact_id


def _resign(vault: Vault, bundle: Path) -> None:
    """Relist every file and re-sign bundle.json with the vault's own bundle key."""
    resign_index(bundle, signing_key(vault.keys))


def _proofs(bundle: Path) -> dict[int, tuple[bytes, str]]:
    out = {}
    for path in (bundle / "proofs").glob("*.entry"):
        index = int(path.name.removesuffix(".entry"))
        out[index] = (path.read_bytes(), (bundle / "proofs" / f"{index}.tlog-proof").read_text())
    return out


def _copy(bundle: Path, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(bundle, target)
    return target


def _offline(bundle: Path, root_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "offline-verify", str(bundle), "--trust-root", str(root_file)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=REPO,
        check=False,
    )


@pytest.fixture
def exported(vault: Vault, model_repo: Path, tmp_path: Path) -> tuple[Path, Root, str]:
    split_escrow_key(vault.keys)
    artifact_id = _cold(vault, model_repo)
    root = init_root(vault).root
    return export_bundle(vault, artifact_id, tmp_path / "bundle"), root, artifact_id


def test_a_bundle_carries_checkable_proofs_of_its_put_and_promotions(
    vault: Vault, exported: tuple[Path, Root, str], tmp_path: Path
) -> None:
    bundle, root, artifact_id = exported
    proofs = _proofs(bundle)
    events = {i: json.loads(e) for i, (e, _) in proofs.items()}
    assert all(e["artifact_id"] == artifact_id for e in events.values())
    assert all(e["phase"] == "outcome" for e in events.values())
    kinds = [(e["kind"], e["tier"]) for _, e in sorted(events.items())]
    assert ("artifact.ingested", "hot") in kinds
    assert ("artifact.promoted", "cold") in kinds
    # All under one checkpoint, and each checks with the tests' own RFC 6962 verifier.
    ed = next(v for v in root.log if base64.b64decode(v.split("+", 2)[2])[0] == 0x01)
    heads = {ref_check_tlog_proof(p, e, ed) for e, p in proofs.values()}
    assert len(heads) == 1
    report = verify_bundle(bundle, root)
    assert report.log_entries == len(proofs)
    assert report.log_size == heads.pop()[1]
    root_file = tmp_path / "root.json"
    root_file.write_bytes(root.to_bytes())
    proc = _offline(bundle, root_file)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(proofs)} log entries proved" in proc.stdout
    # The store is not needed for any of it: the proofs name only the log.
    assert vault.bucket("audit") not in proc.stdout


def test_a_bundle_with_its_proofs_stripped_is_refused(
    vault: Vault, exported: tuple[Path, Root, str], tmp_path: Path
) -> None:
    bundle, root, _ = exported
    stripped = _copy(bundle, "stripped", tmp_path)
    shutil.rmtree(stripped / "proofs")
    _resign(vault, stripped)
    with pytest.raises(IntegrityError, match="carries no transparency-log proofs"):
        verify_bundle(stripped, root)
    half = _copy(bundle, "half", tmp_path)
    put = min(_proofs(half))
    (half / "proofs" / f"{put}.tlog-proof").unlink()
    _resign(vault, half)
    with pytest.raises(IntegrityError, match=f"log entry {put} lacks its entry or its proof"):
        verify_bundle(half, root)
    # Dropping the put's pair entirely leaves no logged put.
    no_put = _copy(bundle, "no-put", tmp_path)
    for index, (entry, _) in _proofs(no_put).items():
        if json.loads(entry)["kind"] == "artifact.ingested":
            (no_put / "proofs" / f"{index}.entry").unlink()
            (no_put / "proofs" / f"{index}.tlog-proof").unlink()
    _resign(vault, no_put)
    with pytest.raises(LogVerificationError, match="no logged put"):
        verify_bundle(no_put, root)


def test_an_edited_entry_or_proof_is_refused_even_when_the_bundle_is_resigned(
    vault: Vault, exported: tuple[Path, Root, str], tmp_path: Path
) -> None:
    bundle, root, _ = exported
    proofs = _proofs(bundle)
    put = next(i for i, (e, _) in proofs.items() if json.loads(e)["kind"] == "artifact.ingested")
    edited = _copy(bundle, "edited", tmp_path)
    entry = json.loads(proofs[put][0])
    entry["principal"]["name"] = "mallory"
    (edited / "proofs" / f"{put}.entry").write_bytes(canonical_json(entry))
    _resign(vault, edited)
    with pytest.raises(LogVerificationError, match=f"bundle log entry {put}: .*does not verify"):
        verify_bundle(edited, root)
    root_file = tmp_path / "root.json"
    root_file.write_bytes(root.to_bytes())
    proc = _offline(edited, root_file)
    assert proc.returncode == LogVerificationError.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr
    moved = _copy(bundle, "moved", tmp_path)
    parsed = parse_tlog_proof(proofs[put][1])
    other = TlogProof(parsed.index + 1, parsed.proof, parsed.checkpoint)
    (moved / "proofs" / f"{put}.tlog-proof").write_text(other.encode())
    _resign(vault, moved)
    with pytest.raises(LogVerificationError, match=f"bundle log entry {put}"):
        verify_bundle(moved, root)


def test_proofs_signed_by_another_log_are_refused(
    vault: Vault, exported: tuple[Path, Root, str], tmp_path: Path
) -> None:
    bundle, root, _ = exported
    forged = _copy(bundle, "forged", tmp_path)
    first = next(iter(_proofs(forged).values()))[1]
    note = parse_tlog_proof(first).checkpoint.decode()
    body = note.split("\n\n", 1)[0] + "\n"
    origin = parse_checkpoint(body).origin
    # The attacker's log: the same origin and checkpoint, signed with keys of their own.
    signers = [
        Ed25519NoteSigner.from_seed(origin, b"\x05" * 32),
        MLDSA44Cosigner.from_seed(origin, b"\x06" * 32, lambda: 1_700_000_000.0),
    ]
    resigned = sign_note(body, signers).encode()
    for index, (_, text) in _proofs(forged).items():
        parsed = parse_tlog_proof(text)
        swapped = TlogProof(parsed.index, parsed.proof, resigned)
        (forged / "proofs" / f"{index}.tlog-proof").write_text(swapped.encode())
    _resign(vault, forged)
    with pytest.raises(LogVerificationError, match="does not verify"):
        verify_bundle(forged, root)


def test_another_artifacts_proved_entries_are_refused(
    vault: Vault, exported: tuple[Path, Root, str], tmp_path: Path
) -> None:
    bundle, root, artifact_id = exported
    src = make_tree(tmp_path / "other", {"w.bin": b"o" * 2048})
    other_id = ingest.put(vault, src, "other").artifact_id
    row = vault.catalog.log_search(artifact_id=other_id, kind="artifact.ingested")[-1]
    assert row["phase"] == "outcome"
    index = int(row["idx"])
    # A valid entry, proved under the log's real checkpoint, but of the other artifact.
    swapped = _copy(bundle, "swapped", tmp_path)
    shutil.rmtree(swapped / "proofs")
    (swapped / "proofs").mkdir()
    (swapped / "proofs" / f"{index}.entry").write_bytes(vault.tlog.entries(index, index + 1)[0])
    (swapped / "proofs" / f"{index}.tlog-proof").write_bytes(prove_entry(vault.tlog, index))
    _resign(vault, swapped)
    with pytest.raises(LogVerificationError, match=f"is not of artifact {artifact_id}"):
        verify_bundle(swapped, root)
