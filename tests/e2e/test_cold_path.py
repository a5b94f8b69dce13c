"""The cold path end to end on each S3 implementation (SeaweedFS and moto's AWS-faithful server).

Put or promote to cold, retention applied to every object, delete refused by the
vault and by the store, export, offline verify; and the capability probe
refusing an endpoint whose cold bucket has no Object Lock.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.approvals import self_approved
from tests.support.artifacts import ingest_model
from tests.support.cli_vault import run_repo_cli as _cli
from tests.support.payloads import weights
from tests.support.s3_peers import S3Peer
from tests.support.tiers import promote_into
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import (
    AuthorizationError,
    PolicyError,
    RetentionError,
    StoreCapabilityError,
)
from weightvault.lifecycle import ingest
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.escrow import split_escrow_key
from weightvault.lifecycle.export import export_bundle, verify_bundle
from weightvault.lifecycle.promote import delete_artifact, promote
from weightvault.lifecycle.trust import init_root
from weightvault.lifecycle.validate import validate_artifact
from weightvault.store import ObjectStore, connect
from weightvault.store.layout import ARTIFACTS_PREFIX, artifact_prefix

REPO = Path(__file__).resolve().parents[2]


def _assert_every_object_retained(vault: Vault, artifact_id: str) -> int:
    bucket = vault.bucket("cold")
    objects = list(vault.store.list(bucket, artifact_prefix(artifact_id)))
    assert objects, "nothing in cold"
    for obj in objects:
        version = vault.store.stat(bucket, obj.key).version_id
        assert version, obj.key
        found = vault.store.retention(bucket, obj.key, version)
        assert found is not None, obj.key
        assert found[0] == "COMPLIANCE", obj.key
        with pytest.raises(RetentionError):
            vault.store.remove(bucket, obj.key, version_id=version)
    return len(objects)


def test_promote_to_cold_export_and_offline_verify(
    peer_vault: Vault, model_repo: Path, tmp_path: Path
) -> None:
    split_escrow_key(peer_vault.keys)
    artifact_id = ingest_model(peer_vault, model_repo)
    assert validate_artifact(peer_vault, artifact_id, model_repo).status == "passed"
    promote(peer_vault, artifact_id, "warm", justification="staging")
    solo = self_approved(peer_vault, artifact_id)
    cold = promote(solo, artifact_id, "cold", justification="release 1.0")
    assert cold.retain_until is not None
    assert peer_vault.catalog.artifact(artifact_id).tier == "cold"
    assert _assert_every_object_retained(peer_vault, artifact_id) >= 3
    with pytest.raises(RetentionError):
        delete_artifact(peer_vault, artifact_id)
    peer_vault.verify(artifact_id)
    pinned = init_root(peer_vault).root
    bundle = export_bundle(peer_vault, artifact_id, tmp_path / "bundle")
    report = verify_bundle(bundle, pinned)
    assert report.artifact_id == artifact_id
    assert report.attestations == 2
    # Its put and promotions are proved in the log (on SeaweedFS and on moto alike).
    kinds = {json.loads(p.read_bytes())["kind"] for p in (bundle / "proofs").glob("*.entry")}
    assert {"artifact.ingested", "artifact.promoted"} <= kinds
    assert report.log_entries >= 3


def test_a_deduplicated_artifact_licensed_by_amendment_reaches_cold(
    peer_vault: Vault, model_repo: Path, tmp_path: Path
) -> None:
    # Stored once without a license; the same content put again under a release name.
    artifact_id = ingest_model(peer_vault, model_repo, license_=None)
    again = ingest.put(peer_vault, model_repo / "model", "digits-release")
    assert again.duplicate_of == artifact_id
    assert validate_artifact(peer_vault, artifact_id, model_repo).status == "passed"
    promote(peer_vault, artifact_id, "warm", justification="staging")
    solo = self_approved(peer_vault, artifact_id)
    with pytest.raises(PolicyError, match="license"):
        promote(solo, artifact_id, "cold", justification="release 1.0")
    assert peer_vault.catalog.artifact(artifact_id).tier == "warm"
    # The new name takes an alias; the license comes by a signed amendment, both by the CLI.
    aliased = _cli("alias", "set", "digits-release@rc", artifact_id[:12])
    assert aliased.returncode == 0, aliased.stderr
    labeled = _cli("label", "digits-release@rc", "license=apache-2.0", "--json")
    assert labeled.returncode == 0, labeled.stderr
    assert json.loads(labeled.stdout) == {
        "artifact_id": artifact_id,
        "labels": {"license": "apache-2.0"},
    }
    cold = promote(solo, "digits-release@rc", "cold", justification="release 1.0")
    assert cold.artifact_id == artifact_id
    assert peer_vault.catalog.artifact(artifact_id).tier == "cold"
    _assert_every_object_retained(peer_vault, artifact_id)
    shown = _cli("show", "digits-release@rc", "--json")
    assert shown.returncode == 0, shown.stderr
    facts = json.loads(shown.stdout)
    assert facts["artifact"]["tier"] == "cold"
    assert facts["names"] == ["digits", "digits-release"]
    assert facts["labels"] == {"license": "apache-2.0"}
    assert facts["aliases"] == ["digits-release@rc"]
    labeled_by = peer_vault.history(artifact_id, {"artifact.labeled"})
    assert [e.event.details["set"] for e in labeled_by] == [{"license": "apache-2.0"}]
    assert labeled_by[0].event.details.get("via") is None  # the amendment, not a put


def test_cli_put_into_cold_refused_multipart_promoted_get_and_delete_refused(
    peer_settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(weights(int(2.5 * peer_settings.store.part_size)))
    # Straight into cold would skip the gates: refused before anything is stored.
    direct = _cli("put", str(source), "--name", "cold-direct", "--tier", "cold", "--json")
    assert direct.returncode == AuthorizationError.exit_code, direct.stderr
    assert "put_tier" in direct.stderr
    vault = Vault.open(peer_settings, identity="alice")
    assert list(vault.store.list(vault.bucket("cold"), ARTIFACTS_PREFIX)) == []
    put = _cli("put", str(source), "--name", "cold-promoted", "--json")
    assert put.returncode == 0, put.stderr
    artifact_id = json.loads(put.stdout)["artifact_id"]
    promote_into(vault, artifact_id, "cold")
    _assert_every_object_retained(vault, artifact_id)
    out = tmp_path / "back"
    got = _cli("get", artifact_id, "--out", str(out))
    assert got.returncode == 0, got.stderr
    assert (out / source.name).read_bytes() == source.read_bytes()
    refused = _cli("delete", artifact_id, "--yes")
    assert refused.returncode == RetentionError.exit_code, refused.stderr
    assert "Traceback" not in refused.stderr
    assert _cli("verify", artifact_id).returncode == 0


def test_probe_refuses_a_cold_bucket_without_object_lock(
    s3_peer: S3Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"nolock{os.urandom(4).hex()}"
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", s3_peer.endpoint)
    monkeypatch.setenv("WEIGHTVAULT_S3_ACCESS_KEY", s3_peer.access_key)
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", s3_peer.secret_key)
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", prefix)
    raw = ObjectStore(s3_peer.endpoint, s3_peer.access_key, s3_peer.secret_key)
    raw.client.make_bucket(f"{prefix}-cold")  # created by someone else, without object lock

    init = _cli("init", "--no-store")
    assert init.returncode == StoreCapabilityError.exit_code, init.stderr
    lines = init.stderr.strip().splitlines()
    assert "Traceback" not in init.stderr
    assert all(line.startswith("weightvault: error: ") for line in lines)
    assert any(f"object-lock on {prefix}-cold" in line for line in lines)
    assert any(f"versioning on {prefix}-cold" in line for line in lines)

    check = _cli("store", "check")
    assert check.returncode == StoreCapabilityError.exit_code
    assert f"MISSING  object-lock on {prefix}-cold" in check.stdout
    assert f"ok       conditional-writes on {prefix}-audit" in check.stdout
    # Nothing was put in the unlocked bucket on the way.
    assert not list(raw.list(f"{prefix}-cold", ARTIFACTS_PREFIX))


def test_store_check_passes_on_a_good_endpoint(peer_settings: Settings) -> None:
    check = _cli("store", "check", "--json")
    assert check.returncode == 0, check.stderr
    report = json.loads(check.stdout)
    assert report["ok"] is True
    names = {(c["capability"], c["bucket"].rsplit("-", 1)[1]) for c in report["capabilities"]}
    assert {
        ("object-lock", "cold"),
        ("checksummed-locked-upload", "cold"),
        ("conditional-writes", "audit"),
        ("versioning", "warm"),
    } <= names
    # init is idempotent on a good endpoint: the day's lock probe object is reused.
    init_vault(peer_settings, start_store=False)
    probes = list(connect(peer_settings).list(peer_settings.store.bucket("cold"), "probe/"))
    assert len(probes) == 1
