"""The single-bucket layout on each S3 implementation (SeaweedFS and moto's AWS-faithful server).

One bucket, created here with Object Lock as an operator would, holds every role
of the vault under ``<role>/``: put, get and verify in hot, promotion to warm and
cold (retention on every cold object, delete refused by the vault and the store),
delete in hot, gc, ``catalog rebuild`` into a fresh catalog and ``verify`` from
the CLI. Objects of the bucket's owner outside the vault's prefixes are never
listed nor touched. A bucket without Object Lock, or missing, is refused at
``init`` with one line and exit 66, and nothing is written into it.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.cli_vault import run_repo_cli as _cli
from tests.support.payloads import weights
from tests.support.s3_peers import S3Peer
from tests.support.tiers import permissive, promote_into
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.errors import RetentionError, SingleBucketError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.audit import verify_audit
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.promote import delete_artifact, promote
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.store import ObjectStore, bucket_roles
from weightvault.store.layout import ARTIFACTS_PREFIX, artifact_prefix, manifest_key

REPO = Path(__file__).resolve().parents[2]
# The owner's own objects: one beside the vault's prefixes, one whose name starts like a
# role's ("hotter/" is not "hot/"), one at the top of the bucket.
OUTSIDERS = {
    "outside/keep.txt": b"the bucket owner's object\n",
    "hotter/artifacts/x/manifest.json": b"not a vault manifest\n",
    "README": b"top level\n",
}


@dataclass(frozen=True)
class OneBucket:
    name: str
    raw: ObjectStore  # the operator's own client on the physical bucket

    def versions(self) -> dict[str, list[str | None]]:
        found: dict[str, list[str | None]] = {}
        for info in self.raw.list(self.name, versions=True):
            found.setdefault(info.key, []).append(info.version_id)
        return found

    def outsiders_untouched(self) -> None:
        versions = self.versions()
        for key, body in OUTSIDERS.items():
            assert self.raw.get_bytes(self.name, key) == body, key
            assert len(versions[key]) == 1, f"{key}: {versions[key]}"


def _configure(peer: S3Peer, bucket: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(home))
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", peer.endpoint)
    monkeypatch.setenv("WEIGHTVAULT_S3_ACCESS_KEY", peer.access_key)
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", peer.secret_key)
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", f"t{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("WEIGHTVAULT_STORE_BUCKET", bucket)
    monkeypatch.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", "none")
    return load_settings(REPO / "config")


def _bucket(peer: S3Peer, *, object_lock: bool) -> OneBucket:
    name = f"one-{uuid.uuid4().hex[:12]}"
    raw = ObjectStore(peer.endpoint, peer.access_key, peer.secret_key)
    raw.client.make_bucket(name, object_lock=object_lock)
    for key, body in OUTSIDERS.items():
        raw.put_bytes(name, key, body)
    return OneBucket(name, raw)


@pytest.fixture
def one(s3_peer: S3Peer) -> OneBucket:
    """An existing bucket with Object Lock (hence versioning), holding the owner's objects."""
    return _bucket(s3_peer, object_lock=True)


@pytest.fixture
def single(
    s3_peer: S3Peer, one: OneBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    settings = _configure(s3_peer, one.name, tmp_path / "home", monkeypatch)
    init_vault(settings)
    return settings


def test_every_role_is_a_prefix_of_the_one_bucket_and_nothing_else_is_made(
    single: Settings, one: OneBucket
) -> None:
    assert single.store.bucket("hot") == f"{one.name}/hot"
    names = {b.name for b in one.raw.client.list_buckets()}
    assert not any(n.startswith(single.store.bucket_prefix) for n in names), names
    roots = tuple(f"{role}/" for role in bucket_roles())
    for key in one.versions():
        assert key in OUTSIDERS or key.startswith(roots), key
    # init wrote its audit records under audit/ (the log, keystore versions).
    assert any(k.startswith("audit/") for k in one.versions()), sorted(one.versions())
    one.outsiders_untouched()
    check = _cli("store", "check", "--json")
    assert check.returncode == 0, check.stderr
    report = json.loads(check.stdout)
    assert report["ok"] is True
    assert {"object-lock", "conditional-writes"} <= {
        c["capability"] for c in report["capabilities"]
    }
    assert f"{one.name}/cold" in {c["bucket"] for c in report["capabilities"]}


def test_put_get_verify_promote_to_cold_delete_and_rebuild_in_one_bucket(
    single: Settings, one: OneBucket, tmp_path: Path
) -> None:
    vault = Vault.open(single)
    files = {"model.bin": weights(3000), "config/params.json": b'{"layers": 3}\n'}
    source = make_tree(tmp_path / "model", files)
    artifact_id = ingest.put(vault, source, "one-bucket-model").artifact_id
    # Physically under hot/artifacts/<id>/; the vault lists it with the prefix stripped.
    physical = {k for k in one.versions() if k.startswith(f"hot/{artifact_prefix(artifact_id)}")}
    assert f"hot/{manifest_key(artifact_id)}" in physical
    listed = {o.key for o in vault.store.list(vault.bucket("hot"), ARTIFACTS_PREFIX)}
    assert listed == {k.removeprefix("hot/") for k in physical}
    assert all(o.bucket == f"{one.name}/hot" for o in vault.store.list(vault.bucket("hot")))
    # The owner's "hotter/" objects are not the hot tier's.
    assert not any("x/" in k for k in listed)

    out = tmp_path / "back"
    vault.get(artifact_id, out)
    for rel, body in files.items():
        assert (out / rel).read_bytes() == body
    assert vault.verify(artifact_id).files == len(files)
    # A presigned URL reads the object at its place in the one bucket.
    url = vault.store.presigned_get(
        vault.bucket("hot"), manifest_key(artifact_id), timedelta(minutes=5)
    )
    assert f"/{one.name}/hot/artifacts/" in url
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our own store
        assert response.read() == vault.store.get_bytes(
            vault.bucket("hot"), manifest_key(artifact_id)
        )

    promote_into(vault, artifact_id, "warm")
    assert vault.catalog.artifact(artifact_id).tier == "warm"
    assert not list(vault.store.list(vault.bucket("hot"), artifact_prefix(artifact_id)))
    assert vault.store.exists(vault.bucket("warm"), manifest_key(artifact_id))
    vault.verify(artifact_id)

    promote(permissive(vault), artifact_id, "cold", justification="single bucket release")
    assert vault.catalog.artifact(artifact_id).tier == "cold"
    cold = vault.bucket("cold")
    objects = list(vault.store.list(cold, artifact_prefix(artifact_id)))
    assert len(objects) >= 3
    for obj in objects:
        version = vault.store.stat(cold, obj.key).version_id
        found = vault.store.retention(cold, obj.key, version)
        assert found is not None, obj.key
        assert found[0] == "COMPLIANCE", obj.key
        with pytest.raises(RetentionError):
            vault.store.remove(cold, obj.key, version_id=version)
        # Retention is per object, so it is the cold objects' alone.
        assert one.raw.retention(one.name, f"cold/{obj.key}", version) == found
    with pytest.raises(RetentionError):
        delete_artifact(vault, artifact_id)
    # Retained in cold, while warm and hot objects stay unretained (no bucket default).
    for info in one.raw.list(one.name, versions=True):
        if info.key.startswith(("hot/", "warm/")) and not info.delete_marker:
            assert one.raw.retention(one.name, info.key, info.version_id) is None, info.key

    # A hot artifact is deleted for good.
    other = ingest.put(vault, make_tree(tmp_path / "other", {"w.bin": b"x" * 500}), "gone")
    assert delete_artifact(vault, other.artifact_id) >= 2
    assert not list(vault.store.list(vault.bucket("hot"), artifact_prefix(other.artifact_id)))
    vault.gc(timedelta(0))
    one.outsiders_untouched()

    # The catalog is rebuilt from the one bucket alone, into a fresh database.
    fresh = replace(single, catalog_url=f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuilt = Vault.open(fresh)
    report = rebuild_catalog(rebuilt)
    assert report["artifacts"] == 1, report
    assert rebuilt.catalog.artifact(artifact_id).tier == "cold"
    rebuilt.verify(artifact_id)
    verify = _cli("verify", artifact_id)
    assert verify.returncode == 0, verify.stderr
    cli_rebuild = _cli("catalog", "rebuild", "--json")
    assert cli_rebuild.returncode == 0, cli_rebuild.stderr
    # The CLI rebuilt the vault's own catalog: it indexes every entry the log holds.
    audit, _ = verify_audit(Vault.open(single))
    assert audit.problems == []
    assert audit.size > 0
    one.outsiders_untouched()


def test_a_bucket_without_object_lock_is_refused_with_exit_66(
    s3_peer: S3Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _bucket(s3_peer, object_lock=False)
    _configure(s3_peer, plain.name, tmp_path / "home", monkeypatch)
    init = _cli("init", "--no-store")
    assert init.returncode == SingleBucketError.exit_code == 66, init.stderr
    lines = init.stderr.strip().splitlines()
    assert len(lines) == 1, init.stderr
    assert "Traceback" not in init.stderr
    assert plain.name in lines[0], lines[0]
    assert "Object Lock" in lines[0], lines[0]
    # Nothing of the vault was written, and the owner's objects are as they were.
    assert set(plain.versions()) == set(OUTSIDERS)
    plain.outsiders_untouched()
    check = _cli("store", "check")
    assert check.returncode == 66, check.stderr


def test_a_missing_bucket_is_refused_never_created(
    s3_peer: S3Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"absent-{uuid.uuid4().hex[:12]}"
    _configure(s3_peer, name, tmp_path / "home", monkeypatch)
    init = _cli("init", "--no-store")
    assert init.returncode == 66, init.stderr
    assert "Traceback" not in init.stderr
    assert name in init.stderr
    assert "does not exist" in init.stderr
    raw = ObjectStore(s3_peer.endpoint, s3_peer.access_key, s3_peer.secret_key)
    assert name not in {b.name for b in raw.client.list_buckets()}
