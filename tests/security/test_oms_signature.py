"""Every put carries an OpenSSF model signing (OMS) signature; `get --out` writes it as
model.sig beside the files and export bundles carry it. The stock `model_signing verify
key` command checks a fetched artifact with the ECDSA P-256 key `trust show
--signing-key-pem` prints; one changed byte fails it, and a stored signature that is not
the one the log recorded is never handed out. A vault made before it had an OMS key keeps
verifying its Ed25519-signed artifacts and gets the key on `trust rotate`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from model_signing._signing import sign_ec_key
from model_signing._signing import sign_sigstore_pb as sigstore_pb

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.errors import IntegrityError
from weightvault.lifecycle import ingest, trust
from weightvault.lifecycle.escrow import split_escrow_key
from weightvault.lifecycle.export import export_bundle, verify_bundle
from weightvault.lifecycle.trust import init_root, rotate_root
from weightvault.provenance import (
    OMS_ALGORITHM,
    OMS_SIGNATURE_NAME,
    Ed25519Verifier,
    sign_oms,
    signing_key,
    verify_model,
)
from weightvault.store.layout import oms_signature_key

CLI = [sys.executable, "-m", "weightvault.cli"]
STOCK_CLI = Path(sys.executable).parent / "model_signing"
FILES = {"model.safetensors": weights(50_000), "config.json": b'{"layers": 2}'}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, check=False
    )


def public_pem(tmp_path: Path, *keyid: str) -> Path:
    proc = run("trust", "show", "--signing-key-pem", *keyid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    path = tmp_path / "vault.pub"
    path.write_text(proc.stdout)
    return path


def stock_verify(model: Path, pem: Path) -> subprocess.CompletedProcess[str]:
    """model-signing's own CLI, exactly as a user runs it on a fetched artifact."""
    return subprocess.run(
        [
            *(str(STOCK_CLI), "verify", "key", "--signature", str(model / OMS_SIGNATURE_NAME)),
            *("--public_key", str(pem), str(model)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


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
    assert b"PRIVATE" not in pem.read_bytes()
    proc = stock_verify(out, pem)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Verification succeeded" in proc.stdout
    verify_model(out, out / OMS_SIGNATURE_NAME, pem.read_bytes())
    # The signed files are the artifact's, path for path.
    signed = sign_ec_key.Verifier(pem).verify(sigstore_pb.Signature.read(out / OMS_SIGNATURE_NAME))
    assert sorted(d.identifier for d in signed.resource_descriptors()) == [
        "config.json",
        "model.safetensors",
        "sub/tokenizer.json",
    ]
    # One byte of one file changed: the stock command fails, naming the file.
    weights = bytearray((out / "model.safetensors").read_bytes())
    weights[12345] ^= 0x01
    (out / "model.safetensors").write_bytes(bytes(weights))
    proc = stock_verify(out, pem)
    assert proc.returncode != 0
    # The CLI and the library give the repr of their list of mismatches: whether (and
    # how often) the quotes around the name come escaped depends on the digest bytes.
    mismatch = r"Hash mismatch for \\*'model\.safetensors\\*'"
    assert re.search(mismatch, proc.stdout + proc.stderr)
    with pytest.raises(ValueError, match=mismatch):
        verify_model(out, out / OMS_SIGNATURE_NAME, pem.read_bytes())
    # The put's outcome names the signature it stored, by key and sha256, and the key
    # is the OMS key the signed trust root lists (never its material).
    put = vault.history(artifact_id, {"artifact.ingested"})[0]
    ref = put.event.details["oms_signature"]
    assert ref["key"] == oms_signature_key(artifact_id)
    assert ref["algorithm"] == OMS_ALGORITHM
    shown = json.loads(run("trust", "show", "--json").stdout)
    assert [e["keyid"] for e in shown["oms"] if e["state"] == "active"] == [ref["keyid"]]
    record = vault.keys.active("vault-oms")
    assert record is not None
    assert record.material.hex() not in json.dumps(shown)


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
    root = init_root(vault).root
    src = make_tree(tmp_path / "src", FILES)
    artifact_id = stored_in(vault, src, "oms-release", "cold")
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
    signed = sign_ec_key.Verifier(public_pem(tmp_path)).verify(
        sigstore_pb.Signature.read(bundle / OMS_SIGNATURE_NAME)
    )
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


def test_a_vault_made_before_the_oms_key_keeps_verifying_and_gets_it_on_rotate(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trust root v1 as the previous release published it (no ``oms`` field): puts sign
    with the Ed25519 half; `trust rotate` adds the P-256 key; the old artifact still
    verifies on get and in a bundle, the new one with the stock command."""
    with monkeypatch.context() as old_release:
        old_release.setattr(trust, "ensure_oms_key", lambda _keys: None)
        v1 = init_root(vault).root
    assert "oms" not in v1.signed
    assert vault.keys.active("vault-oms") is None
    split_escrow_key(vault.keys)
    old_id = stored_in(vault, make_tree(tmp_path / "old", FILES), "oms-old", "cold")
    old_ref = vault.history(old_id, {"artifact.ingested"})[0].event.details["oms_signature"]
    assert old_ref["algorithm"] == "Ed25519"
    assert old_ref["keyid"] == signing_key(vault.keys).keyid
    # Without an OMS key in the root, --signing-key-pem gives the Ed25519 half that signed.
    old_out = tmp_path / "old-out"
    vault.get(old_id, old_out)
    ed_pem = public_pem(tmp_path).read_bytes()
    Ed25519Verifier(ed_pem).verify(sigstore_pb.Signature.read(old_out / OMS_SIGNATURE_NAME))
    verify_model(old_out, old_out / OMS_SIGNATURE_NAME, ed_pem)

    v2 = rotate_root(vault).root
    assert v2.version == 2
    assert [e.state for e in v2.oms] == ["active"]
    new_id = ingest.put(
        vault, make_tree(tmp_path / "new", {**FILES, "extra.json": b"[]"}), "oms-new"
    ).artifact_id
    new_ref = vault.history(new_id, {"artifact.ingested"})[0].event.details["oms_signature"]
    assert new_ref["algorithm"] == OMS_ALGORITHM
    assert new_ref["keyid"] == v2.oms[0].keyid
    new_out = tmp_path / "new-out"
    proc = run("get", new_id, "--out", str(new_out))
    assert proc.returncode == 0, proc.stderr
    proc = stock_verify(new_out, public_pem(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The old artifact still reads (its Ed25519 model.sig checked) and verifies with the
    # key its put names, which `--signing-key-pem KEYID` prints.
    again = tmp_path / "old-again"
    proc = run("get", old_id, "--out", str(again))
    assert proc.returncode == 0, proc.stderr
    pem = public_pem(tmp_path, old_ref["keyid"][:16]).read_bytes()
    assert pem == ed_pem
    verify_model(again, again / OMS_SIGNATURE_NAME, pem)
    assert stock_verify(again, public_pem(tmp_path)).returncode != 0
    bundle = export_bundle(vault, old_id, tmp_path / "bundle")
    assert verify_bundle(bundle, v2).oms_signature


def test_the_oms_key_is_inventoried_and_a_compromise_refuses_what_it_signed_since(
    vault: Vault, tmp_path: Path
) -> None:
    from weightvault._time import utcnow
    from weightvault.keys import build_cbom, cbom_json
    from weightvault.lifecycle.compromise import compromise_key
    from weightvault.lifecycle.rotation import inventory_rows

    init_root(vault)
    before = utcnow()
    artifact_id = ingest.put(vault, make_tree(tmp_path / "a", FILES), "oms-burnt").artifact_id
    rows = [r for r in inventory_rows(vault, utcnow()) if r.key_id == "vault-oms"]
    assert [(r.version, r.algorithm, r.state) for r in rows] == [(1, OMS_ALGORITHM, "active")]
    assert rows[0].expires is not None
    record = vault.keys.active("vault-oms")
    assert record is not None
    bom = cbom_json(build_cbom(inventory_rows(vault, utcnow()), utcnow()))
    assert "ECDSA-P256" in bom
    assert "1.2.840.10045.4.3.2" in bom
    assert record.material.hex() not in bom
    # Marked compromised from before the put: what it signed from then on is refused.
    report = compromise_key(vault, "vault-oms@v1", since=before)
    assert report.replacement == "vault-oms@v2"
    with pytest.raises(IntegrityError, match="vault-oms@v1 is not trusted: compromised since"):
        vault.get(artifact_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # New puts sign with the replacement, which verifies.
    fresh = ingest.put(vault, make_tree(tmp_path / "b", {"w.bin": b"fresh"}), "oms-fresh")
    ref = vault.history(fresh.artifact_id, {"artifact.ingested"})[0].event.details
    replacement = vault.keys.active("vault-oms")
    assert replacement is not None
    assert ref["oms_signature"]["keyid"] == replacement.meta["keyid"]
    vault.get(fresh.artifact_id, tmp_path / "fresh")
    assert (tmp_path / "fresh" / OMS_SIGNATURE_NAME).is_file()


def test_a_signing_key_rotation_makes_a_new_oms_version_and_old_artifacts_still_verify(
    vault: Vault, tmp_path: Path
) -> None:
    """The OMS key follows the signing key's cadence: after a forced rotation new puts sign
    with v2, which the active PEM verifies; an artifact v1 signed verifies with the PEM
    `--signing-key-pem KEYID` prints for v1, with the stock command, and not with v2's."""
    from datetime import UTC, datetime

    from weightvault.lifecycle.rotation import rotate

    init_root(vault)
    old_id = ingest.put(vault, make_tree(tmp_path / "old", FILES), "oms-before").artifact_id
    old_ref = vault.history(old_id, {"artifact.ingested"})[0].event.details["oms_signature"]
    report = rotate(vault, datetime.now(UTC), force_signing=True)
    assert report.signing is not None
    root = trust.current_root(vault)
    assert root is not None
    # The old version stays listed (it verifies what it signed), in the state its signing
    # key sibling has.
    old_signing = next(e for e in root.signing if e.ref.endswith("@v1"))
    assert [(e.version, e.state) for e in root.oms] == [(1, old_signing.state), (2, "active")]
    assert old_signing.state != "active"
    assert root.oms[0].keyid == old_ref["keyid"]
    new_id = ingest.put(
        vault, make_tree(tmp_path / "new", {**FILES, "more.json": b"{}"}), "oms-after"
    ).artifact_id
    new_ref = vault.history(new_id, {"artifact.ingested"})[0].event.details["oms_signature"]
    assert new_ref["keyid"] == root.oms[1].keyid != old_ref["keyid"]
    new_out, old_out = tmp_path / "new-out", tmp_path / "old-out"
    for artifact_id, out in ((new_id, new_out), (old_id, old_out)):
        proc = run("get", artifact_id, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
    active = public_pem(tmp_path)
    assert stock_verify(new_out, active).returncode == 0
    assert stock_verify(old_out, active).returncode != 0
    old_pem = tmp_path / "v1.pub"
    old_pem.write_bytes(public_pem(tmp_path, old_ref["keyid"][:16]).read_bytes())
    proc = stock_verify(old_out, old_pem)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_trust_show_lists_the_oms_keys_in_plain_text(vault: Vault) -> None:
    init_root(vault)
    proc = run("trust", "show")
    assert proc.returncode == 0, proc.stderr
    record = vault.keys.active("vault-oms")
    assert record is not None
    lines = proc.stdout.splitlines()
    heading = lines.index("  OMS keys (ECDSA-P256, for `model_signing verify key`):")
    assert lines[heading + 1].split() == ["vault-oms@v1", record.meta["keyid"][:16], "active"]
    assert record.material.hex() not in proc.stdout
