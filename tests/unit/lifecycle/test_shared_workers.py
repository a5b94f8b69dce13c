"""Two workers of one vault on two homes: one store, one PostgreSQL catalog, one shared
keystore (`WEIGHTVAULT_KEYSTORE_URL`), the master key from the environment.

What one worker stores the other reads; either rotates and rekeys, and the other
follows; two rotations started together by both make one new KEK version each at most
(one between them when they overlap); afterwards
no envelope is on a retired key and every artifact verifies from both.
"""

from __future__ import annotations

import base64
import os
import threading
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.artifacts import envelope_versions, put_many
from tests.support.postgres import PostgresServer
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.keys import KeyState, SharedKeyStore
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.rekey import reencrypt_artifact
from weightvault.lifecycle.rotation import rotate_tier
from weightvault.store import EmbeddedStore


@pytest.fixture
def workers(
    s3_server: EmbeddedStore,
    postgres: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Settings, Settings]:
    """The settings of worker A and worker B (B's home never holds a key)."""
    creds = s3_server.credentials()
    env = {
        "WEIGHTVAULT_S3_ENDPOINT": s3_server.endpoint(),
        "WEIGHTVAULT_S3_ACCESS_KEY": creds.access_key,
        "WEIGHTVAULT_S3_SECRET_KEY": creds.secret_key,
        "WEIGHTVAULT_BUCKET_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "WEIGHTVAULT_CERTIFICATE_TIERS": "none",
        "WEIGHTVAULT_CATALOG_URL": postgres.create_database("cat_" + uuid.uuid4().hex[:10]),
        "WEIGHTVAULT_KEYSTORE_URL": postgres.create_database("keys_" + uuid.uuid4().hex[:10]),
        "WEIGHTVAULT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "worker-a"))
    a = load_settings(REPO / "config")
    init_vault(a)
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "worker-b"))
    b = load_settings(REPO / "config")
    return a, b


def test_workers_share_keys_catalog_and_rotations(
    workers: tuple[Settings, Settings], tmp_path: Path
) -> None:
    a_settings, b_settings = workers
    a, b = Vault.open(a_settings), Vault.open(b_settings)
    assert isinstance(a.keys, SharedKeyStore)
    assert not (b_settings.home / "keystore.sealed").exists()
    ids = put_many(a, tmp_path / "from-a", 4)
    for artifact_id in ids:  # B unwraps what A wrapped
        assert b.verify(artifact_id).files == 2
    first = b.keys.active_kek("hot")

    outcome = rotate_tier(b, "hot", verify=2)  # B rotates what A stored
    assert outcome.rotation.created
    assert outcome.stats.rewrapped == len(ids)
    assert a.keys.active_kek("hot").version == first.version + 1
    assert envelope_versions(a, ids) == {first.version + 1}

    # Both start a rotation at the same moment: one new version between them.
    barrier = threading.Barrier(2)
    created: list[bool] = []

    def rotate(settings: Settings) -> None:
        vault = Vault.open(settings)
        barrier.wait(timeout=60)
        created.append(rotate_tier(vault, "hot", verify=1).rotation.created)

    threads = [threading.Thread(target=rotate, args=(s,)) for s in (a_settings, b_settings)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    # Overlapping, they agree on one new version; if one finished before the other
    # began (a loaded machine), the second is a rotation of its own. Never more, and
    # never a lost one (six processes racing at once: tests/unit/keys).
    assert len(created) == 2
    assert created.count(True) >= 1
    versions = {r.version: r.state for r in a.keys.versions("kek-hot")}
    newest = max(versions)
    assert newest == first.version + 1 + created.count(True)
    assert {v for v, s in versions.items() if s == KeyState.ACTIVE} == {newest}
    assert versions[first.version] == KeyState.RETIRED

    reencrypt_artifact(a, ids[0])  # A rekeys; B reads the new ciphertext
    for artifact_id in ids:
        assert b.verify(artifact_id).files == 2
        assert a.verify(artifact_id).files == 2
    live = {(r.key_id, r.version) for r in a.keys.records() if r.state != KeyState.RETIRED}
    assert set(a.catalog.envelope_counts()) <= live  # no envelope on a retired key
    assert envelope_versions(b, ids) == {newest}
