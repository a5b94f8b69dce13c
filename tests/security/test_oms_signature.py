"""Every put carries an OpenSSF model signing (OMS) signature; `get --out` writes it as
model.sig beside the files and export bundles carry it. model_signing's own verifier
checks a fetched artifact with the key `trust show --signing-key-pem` prints; a tampered
file fails it, and a stored signature that is not the one the log recorded is never
handed out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_signing._signing import sign_sigstore_pb as sigstore_pb

from tests.conftest import REPO, make_tree
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.errors import IntegrityError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.escrow import split_escrow_key
from weightvault.lifecycle.export import export_bundle, verify_bundle
from weightvault.lifecycle.trust import init_root
from weightvault.provenance import OMS_SIGNATURE_NAME, Ed25519Verifier, sign_oms, verify_model
from weightvault.store.layout import oms_signature_key

CLI = [sys.executable, "-m", "weightvault.cli"]
FILES = {"model.safetensors": os.urandom(50_000), "config.json": b'{"layers": 2}'}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, check=False
    )


def public_pem(tmp_path: Path) -> Path:
    proc = run("trust", "show", "--signing-key-pem")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    path = tmp_path / "vault.pub"
    path.write_text(proc.stdout)
    return path


def test_a_fetched_artifact_verifies_with_model_signing_and_a_tampered_file_fails(
    vault: Vault, tmp_path: Path
) -> None:
    init_root(vault)
    src = make_tree(tmp_path / "src", {**FILES, "sub/tokenizer.json": b"{}"})
    artifact_id = ingest.put(vault, src, "oms-model").artifact_id
    out = tmp_path / "out"
    proc = run("get", artifact_id, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / OMS_SIGNATURE_NAME).is_file()
    pem = public_pem(tmp_path)
    verify_model(out, out / OMS_SIGNATURE_NAME, pem.read_bytes())
    # The signed files are the artifact's, path for path.
    signed = Ed25519Verifier(pem.read_bytes()).verify(
        sigstore_pb.Signature.read(out / OMS_SIGNATURE_NAME)
    )
    assert sorted(d.identifier for d in signed.resource_descriptors()) == [
        "config.json",
        "model.safetensors",
        "sub/tokenizer.json",
    ]
    (out / "config.json").write_bytes(b'{"layers": 20}')
    with pytest.raises(ValueError, match=r"Hash mismatch for 'config\.json'"):
        verify_model(out, out / OMS_SIGNATURE_NAME, pem.read_bytes())
    # The put's outcome names the signature it stored, by key and sha256.
    put = vault.history(artifact_id, {"artifact.ingested"})[0]
    assert put.event.details["oms_signature"]["key"] == oms_signature_key(artifact_id)


def test_a_replaced_stored_signature_is_refused_and_nothing_is_written(
    vault: Vault, tmp_path: Path
) -> None:
    """An attacker with write access to the bucket swaps model.sig for one of their own
    (validly signed, even by the vault's own key, but over their files): the read refuses."""
    src = make_tree(tmp_path / "src", FILES)
    artifact_id = ingest.put(vault, src, "oms-swap").artifact_id
    bucket, key = vault.bucket("hot"), oms_signature_key(artifact_id)
    from weightvault.provenance import signing_key

    forged = sign_oms(signing_key(vault.keys), "x", [("model.safetensors", "00" * 32)])
    vault.store.put_bytes(bucket, key, forged)
    with pytest.raises(IntegrityError, match="not the one the log recorded"):
        vault.get(artifact_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    vault.store.remove(bucket, key)
    proc = run("get", artifact_id, "--out", str(tmp_path / "out2"))
    assert proc.returncode == IntegrityError.exit_code
    assert "OMS signature is missing" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out2").exists()


def test_promotion_carries_it_and_the_export_bundle_holds_it(vault: Vault, tmp_path: Path) -> None:
    split_escrow_key(vault.keys)
    src = make_tree(tmp_path / "src", FILES)
    artifact_id = stored_in(vault, src, "oms-release", "cold")
    root = init_root(vault).root
    pem = public_pem(tmp_path).read_bytes()
    out = tmp_path / "out"
    vault.get(artifact_id, out)
    verify_model(out, out / OMS_SIGNATURE_NAME, pem)
    bundle = export_bundle(vault, artifact_id, tmp_path / "bundle")
    assert (bundle / OMS_SIGNATURE_NAME).read_bytes() == (out / OMS_SIGNATURE_NAME).read_bytes()
    listed = {f["path"] for f in json.loads((bundle / "bundle.json").read_bytes())["files"]}
    assert OMS_SIGNATURE_NAME in listed
    assert verify_bundle(bundle, root).oms_signature
    # The bundle's model.sig verifies with model_signing over the bundle's own manifest.
    signed = Ed25519Verifier(pem).verify(sigstore_pb.Signature.read(bundle / OMS_SIGNATURE_NAME))
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    assert {d.identifier: d.digest.digest_hex for d in signed.resource_descriptors()} == {
        f["path"]: f["sha256"] for f in manifest["files"] if "role" not in f
    }
    (bundle / OMS_SIGNATURE_NAME).write_bytes(sign_oms_other(bundle))
    with pytest.raises(IntegrityError):
        verify_bundle(bundle, root)


def sign_oms_other(bundle: Path) -> bytes:
    """A well-formed OMS signature by another key over the bundle's files."""
    from weightvault.crypto.signing import HybridSigningKey

    manifest = json.loads((bundle / "manifest.json").read_bytes())
    files = [(f["path"], f["sha256"]) for f in manifest["files"]]
    return sign_oms(HybridSigningKey.generate("attacker", 1), "x", files)
