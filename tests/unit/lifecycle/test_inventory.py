"""`weightvault keys inventory`: every key version with its counts, and the CBOM."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.conftest import REPO, make_tree
from tests.support.artifacts import put_many
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.keys._cbom import algorithm_ref, key_ref
from weightvault.lifecycle.escrow import split_escrow_key
from weightvault.lifecycle.rotation import inventory_rows, rotate_tier, rotating_keys

CLI = [sys.executable, "-m", "weightvault.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, check=False
    )


def test_inventory_counts_what_each_version_protects(vault: Vault, tmp_path: Path) -> None:
    put_many(vault, tmp_path, 3)
    split_escrow_key(vault.keys)
    stored_in(vault, make_tree(tmp_path / "c", {"w": b"cold"}), "archived", "cold")
    rotate_tier(vault, "hot", verify=0)
    rows = {(r.key_id, r.version): r for r in inventory_rows(vault, datetime.now(UTC))}
    assert rows[("kek-hot", 1)].state == "retired"
    assert rows[("kek-hot", 1)].artifacts_protected == 0
    assert rows[("kek-hot", 2)].state == "active"
    assert rows[("kek-hot", 2)].artifacts_protected == 3
    assert rows[("kek-cold", 1)].artifacts_protected == 1
    assert rows[("escrow-cold", 1)].artifacts_protected == 1
    assert rows[("escrow-cold", 1)].algorithm == "ml-kem-768+x25519"
    assert rows[("vault-signing", 1)].artifacts_protected == 4
    assert rows[("vault-signing", 1)].tier == "global"
    for row in rows.values():
        assert row.quantum_status != "unknown"
    # Symmetric KEKs are Grover-safe; cold data outlives the CRQC horizon: hybrid required.
    assert rows[("kek-hot", 2)].quantum_status == "grover-safe"
    assert rows[("vault-signing", 1)].quantum_status == "hybrid-required"
    assert rows[("escrow-cold", 1)].quantum_status == "hybrid-required"


def test_cli_inventory_prints_a_table_and_writes_a_cbom(
    vault_settings: Settings, tmp_path: Path
) -> None:
    vault = Vault.open(vault_settings)
    put_many(vault, tmp_path, 2)
    cbom = tmp_path / "out" / "cbom.json"
    proc = run("keys", "inventory", "--cbom", str(cbom))
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0]
    for column in ("KEY ID", "VER", "ALGORITHM", "TIER", "STATE", "CREATED", "EXPIRES"):
        assert column in header
    assert "QUANTUM" in header
    assert "ARTIFACTS" in header
    assert "kek-hot" in proc.stdout
    # The written file is valid against the official CycloneDX 1.6 JSON schema.
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cbom.read_text()) is None
    doc = json.loads(cbom.read_text())
    assert doc["bomFormat"] == "CycloneDX"
    assert doc["specVersion"] == "1.6"
    assert "CycloneDX 1.6 CBOM written to" in proc.stdout
    keys = [c for c in doc["components"] if c["cryptoProperties"]["assetType"] != "algorithm"]
    refs = {(c["name"], c["version"]) for c in keys}
    assert ("kek-hot", "1") in refs
    assert ("vault-signing", "1") in refs
    hot = next(c for c in keys if c["name"] == "kek-hot")
    props = {p["name"]: p["value"] for p in hot["properties"]}
    assert props["weightvault:artifacts-protected"] == "2"
    as_json = json.loads(run("keys", "inventory", "--json").stdout)
    assert {r["key_id"] for r in as_json} >= {"kek-hot", "kek-warm", "kek-cold", "vault-signing"}
    # Every key version is in the CBOM with its id, algorithm, state and dates.
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    for row in as_json:
        comp = by_ref[key_ref(row["key_id"], row["version"])]
        related = comp["cryptoProperties"]["relatedCryptoMaterialProperties"]
        assert related["id"] == row["key_id"]
        assert related["algorithmRef"] == algorithm_ref(row["algorithm"])
        assert by_ref[related["algorithmRef"]]["cryptoProperties"]["assetType"] == "algorithm"
        assert row["state"] != "active" or related["state"] == "active"
        created = datetime.fromisoformat(related["creationDate"])
        assert created == datetime.fromisoformat(row["created"])
        if row["expires"] is None:
            assert "expirationDate" not in related
        else:
            expires = datetime.fromisoformat(related["expirationDate"])
            assert expires == datetime.fromisoformat(row["expires"])
    algorithms = {r["key_id"]: algorithm_ref(r["algorithm"]) for r in as_json}
    assert algorithms["kek-hot"] == algorithm_ref("aes-256-gcm")
    assert algorithms["vault-signing"] == algorithm_ref("ed25519+ml-dsa-65")
    aes = by_ref[algorithm_ref("aes-256-gcm")]["cryptoProperties"]
    assert aes["oid"] == "2.16.840.1.101.3.4.1.46"
    assert aes["algorithmProperties"]["parameterSetIdentifier"] == "256"
    text = cbom.read_text() + proc.stdout
    for rec in rotating_keys(vault).records():
        assert rec.material.hex() not in text
        assert base64.b64encode(rec.material).decode() not in text


def test_cli_plan_explains_every_active_key(vault_settings: Settings, tmp_path: Path) -> None:
    vault = Vault.open(vault_settings)
    put_many(vault, tmp_path, 1)
    proc = run("keys", "plan", "--json")
    assert proc.returncode == 0, proc.stderr
    plans = {p["key_id"]: p for p in json.loads(proc.stdout)}
    assert {"kek-hot", "kek-warm", "kek-cold", "vault-signing"} <= set(plans)
    assert "hybrid" in plans["vault-signing"]["explanation"]
    assert "symmetric" in plans["kek-hot"]["explanation"]
    assert plans["kek-hot"]["due"] is False
    assert "material" not in json.dumps(plans)
    matrix = run("keys", "plan", "--matrix")
    assert matrix.returncode == 0
    assert matrix.stdout.count("key plan:") >= 4 + 12
