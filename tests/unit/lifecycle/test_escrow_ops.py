"""Cold-tier escrow: k-of-n split, escrow envelopes, decrypting with shares and no keystore."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.crypto import hpke as hpke_wrap
from weightvault.errors import ConflictError, IntegrityError, InvalidInputError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.escrow import (
    ESCROW_KEY_ID,
    ESCROW_TIER,
    escrow_decrypt,
    split_escrow_key,
)
from weightvault.store.layout import escrow_envelope_key

CLI = [sys.executable, "-m", "weightvault.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, check=False
    )


def same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def cold_artifact(vault: Vault, tmp_path: Path, name: str = "release") -> tuple[str, Path]:
    src = make_tree(
        tmp_path / name,
        {"model.safetensors": weights(70_000), "config.json": b'{"layers": 2}'},
    )
    return stored_in(vault, src, name, "cold"), src


def test_split_keeps_only_the_public_key(vault: Vault) -> None:
    split = split_escrow_key(vault.keys)
    assert split.threshold == 3
    assert len(split.shares) == 5
    assert "redacted" in repr(split)
    assert split.shares[0] not in repr(split)
    record = vault.keys.active(ESCROW_KEY_ID)
    assert record is not None
    assert record.purpose == "escrow_kem"
    assert record.algorithm == hpke_wrap.ALGORITHM
    # The material is the public key (1216 bytes), never a seed or private key.
    assert hpke_wrap.load_public(record.material).fingerprint == split.fingerprint
    with pytest.raises(ConflictError):
        split_escrow_key(vault.keys)


def test_cold_put_is_escrowed_and_decrypts_with_k_shares_only(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    split = split_escrow_key(vault.keys, threshold=3, shares=5)
    artifact_id, src = cold_artifact(vault, tmp_path)
    hot = ingest.put(vault, make_tree(tmp_path / "h", {"x": b"hot"}), "hot-one").artifact_id
    envelopes = vault.bucket("envelopes")
    assert vault.store.exists(envelopes, escrow_envelope_key(artifact_id))
    assert not vault.store.exists(envelopes, escrow_envelope_key(hot))
    rows = [e for e in vault.catalog.envelopes_of(artifact_id) if e["tier"] == ESCROW_TIER]
    assert rows == [
        {
            "artifact_id": artifact_id,
            "tier": ESCROW_TIER,
            "kek_id": ESCROW_KEY_ID,
            "kek_version": 1,
            "object_key": escrow_envelope_key(artifact_id),
        }
    ]
    # The keystore is lost: its file and the master key are gone.
    vault_settings.keystore_path.unlink()
    vault_settings.master_key_path.unlink()
    shares = list(split.shares)
    out = tmp_path / "restored"
    restored = escrow_decrypt(vault_settings, artifact_id, [shares[4], shares[0], shares[2]], out)
    assert restored.files == 2
    assert same_tree(src, out)
    # k - 1 shares recover nothing, and write nothing.
    with pytest.raises(InvalidInputError, match="too few escrow shares"):
        escrow_decrypt(vault_settings, artifact_id, shares[:2], tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_shares_of_another_split_do_not_decrypt(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    split_escrow_key(vault.keys)
    artifact_id, _ = cold_artifact(vault, tmp_path)
    from weightvault.keys import generate_escrow_seed, split_seed

    other = split_seed(generate_escrow_seed(), 3, 5)
    with pytest.raises(IntegrityError, match="escrowed to another key"):
        escrow_decrypt(vault_settings, artifact_id, other[:3], tmp_path / "o")


def test_tampered_escrow_envelope_fails(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    split = split_escrow_key(vault.keys)
    first, _ = cold_artifact(vault, tmp_path, "one")
    second, _ = cold_artifact(vault, tmp_path, "two")
    bucket = vault.bucket("envelopes")
    # The envelope of one artifact moved onto another does not unwrap (info binds the id).
    doc = json.loads(vault.store.get_bytes(bucket, escrow_envelope_key(first)))
    doc["artifact_id"] = second
    from weightvault._json import canonical_json

    vault.store.put_bytes(bucket, escrow_envelope_key(second), canonical_json(doc))
    with pytest.raises(IntegrityError):
        escrow_decrypt(vault_settings, second, list(split.shares[:3]), tmp_path / "o")


def test_split_escrows_cold_artifacts_made_before_it(vault: Vault, tmp_path: Path) -> None:
    artifact_id, _ = cold_artifact(vault, tmp_path)
    envelopes = vault.bucket("envelopes")
    assert not vault.store.exists(envelopes, escrow_envelope_key(artifact_id))
    shares_dir = tmp_path / "custodians"
    proc = run(
        "escrow",
        "split",
        "--json",
        "--threshold",
        "2",
        "--shares",
        "3",
        "--out-dir",
        str(shares_dir),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["cold_escrowed"] == 1
    assert "mnemonics" not in data
    assert len(data["files"]) == 3
    assert vault.store.exists(envelopes, escrow_envelope_key(artifact_id))


def test_cli_split_recover_decrypt_without_keystore(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    shares_dir = tmp_path / "custodians"
    proc = run("escrow", "split", "--out-dir", str(shares_dir))
    assert proc.returncode == 0, proc.stderr
    files = sorted(shares_dir.iterdir())
    assert len(files) == 5
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        # Mnemonics only in the files: no two consecutive words of one reach stdout. (A
        # single word is no evidence: the first word was once "finger", in "fingerprint".)
        words = f.read_text().split()
        printed = " ".join(proc.stdout.split())
        assert not any(f"{a} {b}" in printed for a, b in itertools.pairwise(words))
    artifact_id, src = cold_artifact(vault, tmp_path)
    three = [arg for f in files[1:4] for arg in ("--share", str(f))]
    recover = run("escrow", "recover", *three, "--artifact", artifact_id, "--json")
    assert recover.returncode == 0, recover.stderr
    assert json.loads(recover.stdout)["matches"] == [f"{ESCROW_KEY_ID}@v1"]
    vault_settings.keystore_path.unlink()
    vault_settings.master_key_path.unlink()
    out = tmp_path / "out"
    proc = run("escrow", "decrypt", artifact_id, *three, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert same_tree(src, out)
    two = [arg for f in files[:2] for arg in ("--share", str(f))]
    proc = run("escrow", "decrypt", artifact_id, *two, "--out", str(tmp_path / "o2"))
    assert proc.returncode == InvalidInputError.exit_code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "too few escrow shares" in lines[0]
    for f in files:
        assert f.read_text().strip() not in proc.stderr
    assert not (tmp_path / "o2").exists()
