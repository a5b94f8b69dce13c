"""Red-team tests of durability (issue 10, defects 2, 5 and 6), against the real store and CLI.

2. A plain S3 DELETE on a cold manifest (allowed under COMPLIANCE: it only adds
   a delete marker) followed by ``gc --grace-minutes 0`` must not destroy the
   cold envelopes: they are retained like the ciphertext, and gc keeps
   everything of an artifact that still has retained object versions.
5. One stray object (a manifest copied under another id, a malformed event)
   must not empty ``catalog rebuild``; a cold artifact whose envelope is gone
   is reported damaged, never dropped.
6. A promotion killed with SIGKILL must not be stuck for ever: re-running it
   takes the dead owner's claim over and converges.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.durable_store import (
    cli,
    cli_json,
    delete_markers,
    remove_delete_markers,
)
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import RetentionError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.escrow import escrow_decrypt, split_escrow_key
from weightvault.store.layout import (
    artifact_prefix,
    envelope_key,
    envelope_prefix,
    escrow_envelope_key,
    manifest_key,
)

# -- defect 2: cold keys destroyable through gc ---------------------------------------


def _cold_artifact(vault: Vault, tmp_path: Path) -> tuple[str, Path]:
    src = make_tree(
        tmp_path / "release",
        {"model.safetensors": os.urandom(90_000), "config.json": b'{"layers": 2}'},
    )
    return ingest.put(vault, src, "release", "cold").artifact_id, src


def test_cold_envelopes_are_retained_like_their_ciphertext(vault: Vault, tmp_path: Path) -> None:
    split_escrow_key(vault.keys, threshold=2, shares=3)
    artifact_id, _src = _cold_artifact(vault, tmp_path)
    cold, envelopes = vault.bucket("cold"), vault.bucket("envelopes")
    manifest_retention = vault.store.retention(cold, manifest_key(artifact_id))
    assert manifest_retention is not None
    for key in (envelope_key(artifact_id, "cold"), escrow_envelope_key(artifact_id)):
        assert vault.store.retention(envelopes, key) == manifest_retention
        # COMPLIANCE: not even the store's admin credentials delete a retained version.
        version = vault.store.stat(envelopes, key).version_id
        with pytest.raises(RetentionError):
            vault.store.remove(envelopes, key, version_id=version)
        assert vault.store.exists(envelopes, key)
    # A hot envelope stays deletable (nothing of hot is retained).
    hot_src = make_tree(tmp_path / "hot", {"w.bin": os.urandom(300)})
    hot_id = ingest.put(vault, hot_src, "scratch").artifact_id
    assert vault.store.retention(envelopes, envelope_key(hot_id, "hot")) is None


def test_plain_delete_then_gc_keeps_cold_keys_and_the_artifact_restorable(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    split = split_escrow_key(vault.keys, threshold=2, shares=3)
    artifact_id, src = _cold_artifact(vault, tmp_path)
    cold, envelopes = vault.bucket("cold"), vault.bucket("envelopes")
    cold_keys = sorted(o.key for o in vault.store.list(cold, artifact_prefix(artifact_id)))
    envelope_keys = [envelope_key(artifact_id, "cold"), escrow_envelope_key(artifact_id)]

    # The attack: plain DELETEs (no version id), allowed under COMPLIANCE, hide the
    # manifest and both envelopes behind delete markers; then gc with no grace.
    for bucket, key in [
        (cold, manifest_key(artifact_id)),
        *[(envelopes, k) for k in envelope_keys],
    ]:
        vault.store.remove(bucket, key)
        assert not vault.store.exists(bucket, key)
    assert artifact_id not in vault.committed_ids("cold")
    gc = cli_json("gc", "--grace-minutes", "0")
    assert not [r for r in gc["removed"] if artifact_id in r], gc

    # Nothing of the artifact was removed or hidden by gc: the ciphertext and the
    # statement are current, only the attacker's three delete markers exist.
    assert sorted(o.key for o in vault.store.list(cold, artifact_prefix(artifact_id))) == [
        k for k in cold_keys if k != manifest_key(artifact_id)
    ]
    assert set(delete_markers(vault.store, cold, artifact_prefix(artifact_id))) == {
        manifest_key(artifact_id)
    }
    assert set(delete_markers(vault.store, envelopes, envelope_prefix(artifact_id))) == set(
        envelope_keys
    )
    # The retained versions of the envelopes are still there and still locked.
    for version in vault.store.list(envelopes, envelope_prefix(artifact_id), versions=True):
        if not version.delete_marker:
            with pytest.raises(RetentionError):
                vault.store.remove(envelopes, version.key, version_id=version.version_id)

    # Restoration: drop the delete markers; the artifact verifies and decrypts again,
    # through the tier key and through the escrow shares.
    assert remove_delete_markers(vault.store, cold, artifact_prefix(artifact_id)) == 1
    assert remove_delete_markers(vault.store, envelopes, envelope_prefix(artifact_id)) == 2
    assert cli_json("verify", artifact_id)["files"] == 2
    out = tmp_path / "out"
    proc = cli("get", artifact_id, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("model.safetensors", "config.json"):
        assert (out / name).read_bytes() == (src / name).read_bytes()
    restored = escrow_decrypt(vault_settings, artifact_id, list(split.shares[:2]), tmp_path / "e")
    assert restored.files == 2
    assert (tmp_path / "e" / "model.safetensors").read_bytes() == (
        src / "model.safetensors"
    ).read_bytes()


def test_gc_still_removes_unretained_orphans(vault: Vault, tmp_path: Path) -> None:
    """The guard keeps retained artifacts only: a hot orphan is still collected."""
    src = make_tree(tmp_path / "m", {"w.bin": os.urandom(500)})
    artifact_id = ingest.put(vault, src, "orphan").artifact_id
    hot = vault.bucket("hot")
    vault.store.remove(hot, manifest_key(artifact_id))
    removed = cli_json("gc", "--grace-minutes", "0")["removed"]
    assert f"{vault.bucket('envelopes')}/{envelope_key(artifact_id, 'hot')}" in removed
    assert list(vault.store.list(hot, artifact_prefix(artifact_id))) == []
