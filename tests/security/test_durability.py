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
import signal
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO, make_tree
from tests.support.artifacts import put_many, rebuildable_rows
from tests.support.durable_store import (
    CLI,
    allow_all_promotions,
    big_tree,
    cli,
    cli_json,
    delete_markers,
    kill_when,
    remove_delete_markers,
    start_cli,
)
from tests.support.payloads import weights
from tests.support.tiers import stored_in
from weightvault._time import iso_seconds, utcnow
from weightvault.artifacts import Vault
from weightvault.catalog import ClaimOwner, IndexedArtifact
from weightvault.config import TIERS, Settings, load_settings
from weightvault.errors import ConflictError, RetentionError
from weightvault.lifecycle import claims, ingest
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.escrow import escrow_decrypt, split_escrow_key
from weightvault.store import connect
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
        {"model.safetensors": weights(90_000), "config.json": b'{"layers": 2}'},
    )
    return stored_in(vault, src, "release", "cold"), src


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
    hot_src = make_tree(tmp_path / "hot", {"w.bin": weights(300)})
    hot_id = ingest.put(vault, hot_src, "scratch").artifact_id
    assert vault.store.retention(envelopes, envelope_key(hot_id, "hot")) is None


def test_init_makes_an_old_envelopes_bucket_versioned_and_lockable(
    vault_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A vault made before this fix has a plain envelopes bucket: the next init upgrades it."""
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", f"t{uuid.uuid4().hex[:10]}")
    settings = load_settings(REPO / "config")
    store = connect(settings)
    envelopes = settings.store.bucket("envelopes")
    store.ensure_bucket(envelopes, versioned=False, object_lock=False)  # as before the fix
    assert not store.object_lock_enabled(envelopes)
    init_vault(settings)
    assert store.object_lock_enabled(envelopes)
    assert store.client.get_bucket_versioning(envelopes).status == "Enabled"
    vault = Vault.open(settings, identity="alice")
    artifact_id, _src = _cold_artifact(vault, tmp_path)
    assert vault.store.retention(envelopes, envelope_key(artifact_id, "cold")) is not None


def test_plain_delete_then_gc_keeps_cold_keys_and_the_artifact_restorable(
    vault: Vault, vault_settings: Settings, tmp_path: Path
) -> None:
    split = split_escrow_key(vault.keys, threshold=2, shares=3)
    artifact_id, src = _cold_artifact(vault, tmp_path)
    cold, envelopes = vault.bucket("cold"), vault.bucket("envelopes")
    cold_keys = sorted(o.key for o in vault.store.list(cold, artifact_prefix(artifact_id)))
    envelope_keys = [envelope_key(artifact_id, "cold"), escrow_envelope_key(artifact_id)]
    # The promotion through hot and warm removed the envelopes it left behind.
    promoted = set(delete_markers(vault.store, envelopes, envelope_prefix(artifact_id)))

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
    assert set(delete_markers(vault.store, envelopes, envelope_prefix(artifact_id))) == (
        promoted | set(envelope_keys)
    )
    # The retained versions of the envelopes are still there and still locked.
    for version in vault.store.list(envelopes, envelope_prefix(artifact_id), versions=True):
        if not version.delete_marker and version.key in envelope_keys:
            with pytest.raises(RetentionError):
                vault.store.remove(envelopes, version.key, version_id=version.version_id)

    # Restoration: drop the delete markers; the artifact verifies and decrypts again,
    # through the tier key and through the escrow shares.
    assert remove_delete_markers(vault.store, cold, artifact_prefix(artifact_id)) == 1
    # The attacker's markers only (the promotion's stay).
    assert sum(remove_delete_markers(vault.store, envelopes, k) for k in envelope_keys) == 2
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
    src = make_tree(tmp_path / "m", {"w.bin": weights(500)})
    artifact_id = ingest.put(vault, src, "orphan").artifact_id
    hot = vault.bucket("hot")
    vault.store.remove(hot, manifest_key(artifact_id))
    removed = cli_json("gc", "--grace-minutes", "0")["removed"]
    assert f"{vault.bucket('envelopes')}/{envelope_key(artifact_id, 'hot')}" in removed
    assert list(vault.store.list(hot, artifact_prefix(artifact_id))) == []


# -- defect 5: catalog rebuild emptied by one stray object ---------------------------


def _six_artifacts(vault: Vault, tmp_path: Path) -> list[str]:
    ids = put_many(vault, tmp_path / "hot", 4)
    ids += put_many(vault, tmp_path / "warm", 1, "warm")
    ids.append(_cold_artifact(vault, tmp_path)[0])
    return ids


def test_rebuild_skips_and_reports_stray_objects_instead_of_emptying_the_catalog(
    vault: Vault, tmp_path: Path
) -> None:
    ids = _six_artifacts(vault, tmp_path)
    before = rebuildable_rows(vault)
    assert len(before["artifacts"]) == 6
    hot, audit = vault.bucket("hot"), vault.bucket("audit")
    # The strays: a real manifest copied under another id, and a malformed event object
    # (events/ objects are unsigned: the rebuild ignores them and says how many).
    fake_id = "wv-20261201-00000000deadbeef"
    copied = manifest_key(fake_id)
    vault.store.put_bytes(hot, copied, vault.store.get_bytes(hot, manifest_key(ids[0])))
    bogus_event = "events/2026/12/01/not-an-event.json"
    vault.store.put_bytes(audit, bogus_event, b'{"type": "nonsense"')

    report = cli_json("catalog", "rebuild")
    assert report["artifacts"] == 6
    assert report["skipped"] == 1
    assert report["ignored_unsigned"] == 1
    assert {u["object"] for u in report["untrusted"]} == {f"{hot}/{copied}"}
    assert any("another artifact" in u["reason"] for u in report["untrusted"])
    assert report["damaged"] == 0
    assert rebuildable_rows(vault) == before
    assert sorted(a["id"] for a in cli_json("ls")) == sorted(ids)
    # The human output names the stray, and says the unsigned event was ignored.
    proc = subprocess.run(
        [*CLI, "catalog", "rebuild"], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert f"skipped {hot}/{copied}:" in proc.stdout
    assert "ignored 1 unsigned events/ object" in proc.stdout


def test_rebuild_skips_a_manifest_whose_mac_fails(vault: Vault, tmp_path: Path) -> None:
    ids = put_many(vault, tmp_path, 2)
    hot = vault.bucket("hot")
    body = vault.store.get_bytes(hot, manifest_key(ids[0]))
    forged = body.replace(b'"model-0"', b'"model-X"')
    assert forged != body
    vault.store.put_bytes(hot, manifest_key(ids[0]), forged)
    report = cli_json("catalog", "rebuild")
    assert [u["object"] for u in report["untrusted"]] == [f"{hot}/{manifest_key(ids[0])}"]
    assert [a.id for a in vault.catalog.list_artifacts()] == [ids[1]]


def test_a_retained_cold_artifact_without_its_envelope_is_kept_as_damaged(
    vault: Vault, tmp_path: Path
) -> None:
    ids = _six_artifacts(vault, tmp_path)
    cold_id = ids[-1]
    envelopes = vault.bucket("envelopes")
    vault.store.remove(envelopes, envelope_key(cold_id, "cold"))  # a plain DELETE
    report = cli_json("catalog", "rebuild")
    assert report["artifacts"] == 6
    [damaged] = report["damaged_artifacts"]
    assert damaged["artifact_id"] == cold_id
    assert damaged["tier"] == "cold"
    assert "missing" in damaged["reason"]
    assert "retained until" in damaged["reason"]
    assert cold_id in vault.catalog.damaged()
    assert "missing" in cli_json("show", cold_id)["damage"]
    assert vault.catalog.artifact(cold_id).tier == "cold"
    assert vault.catalog.placement(cold_id)["retain_until"] is not None
    # Restored from its retained version, the next rebuild finds it whole and readable.
    assert remove_delete_markers(vault.store, envelopes, envelope_key(cold_id, "cold")) == 1
    report = cli_json("catalog", "rebuild")
    assert (report["artifacts"], report["damaged"]) == (6, 0)
    assert vault.catalog.damaged() == {}
    assert cli_json("show", cold_id)["damage"] is None
    assert cli_json("verify", cold_id)["files"] == 2


def test_rebuild_swap_is_all_or_nothing(vault: Vault, tmp_path: Path) -> None:
    ids = put_many(vault, tmp_path, 2)
    before = rebuildable_rows(vault)
    item = IndexedArtifact(
        artifact=dict(vault.catalog.artifact(ids[0]).__dict__),
        files=(),
        placement={**vault.catalog.placement(ids[0])},
        envelopes=(),
    )
    # The same artifact twice fails half-way through the swap: nothing changes.
    with pytest.raises(ConflictError, match="indexed twice"):
        vault.catalog.replace_all([], [item, item])
    assert rebuildable_rows(vault) == before


# -- defect 6: a killed promotion is stuck for ever ----------------------------------


def _tiers_holding(vault: Vault, artifact_id: str) -> list[str]:
    return [t for t in TIERS if artifact_id in vault.committed_ids(t)]


def _objects(vault: Vault, tier: str, artifact_id: str) -> list[str]:
    return [o.key for o in vault.store.list(vault.bucket(tier), artifact_prefix(artifact_id))]


def _events(vault: Vault, artifact_id: str, kind: str) -> list[dict[str, object]]:
    return [e for e in vault.catalog.events_of(artifact_id) if e["kind"] == kind]


def _promotions_into(vault: Vault, artifact_id: str, target: str) -> list[dict[str, object]]:
    """The artifact's promotions into ``target`` (a warm one was promoted from hot first)."""
    events = _events(vault, artifact_id, "artifact.promoted")
    return [e for e in events if e["details"]["tier"] == target]  # type: ignore[index]


def _promote_args(artifact_id: str, target: str) -> list[str]:
    return ["promote", artifact_id, "--to", target, "--justification", "go"]


@pytest.mark.parametrize(("source", "target"), [("hot", "warm"), ("warm", "cold")])
def test_promotion_killed_mid_copy_is_resumed_by_the_next_run(
    vault_settings: Settings, tmp_path: Path, source: str, target: str
) -> None:
    settings = allow_all_promotions(vault_settings)
    vault = Vault.open(settings, identity="alice")
    src = big_tree(tmp_path / "model", files=24, mib=4)
    artifact_id = stored_in(vault, src, "big", source)

    # The crash: the real CLI promotion, SIGKILLed once its first copy is in the target.
    proc = start_cli(*_promote_args(artifact_id, target))
    kill_when(proc, f"the first object in {target}", lambda: _objects(vault, target, artifact_id))

    # What it left: a claim of the dead process, copies in the target, no move.
    holder = vault.catalog.claim_holder(artifact_id)
    assert holder is not None
    assert holder.target == target
    assert holder.owner is not None
    assert holder.owner.pid == proc.pid
    assert vault.catalog.artifact(artifact_id).tier == source
    assert _objects(vault, target, artifact_id)

    # The next run recognises the dead owner, takes the claim over and finishes the move.
    result = cli_json(*_promote_args(artifact_id, target))
    assert (result["source"], result["target"]) == (source, target)
    [takeover] = _events(vault, artifact_id, claims.TAKEN_OVER)
    assert "is gone" in str(takeover["details"]["reason"])  # type: ignore[index]
    assert takeover["details"]["previous_owner"].startswith(f"pid {proc.pid} ")  # type: ignore[index]
    assert len(_promotions_into(vault, artifact_id, target)) == 1

    # Consistent: one tier, the catalog agrees, no claim, no leftovers, reads verify.
    assert _tiers_holding(vault, artifact_id) == [target]
    assert _objects(vault, source, artifact_id) == []
    assert not vault.store.exists(vault.bucket("envelopes"), envelope_key(artifact_id, source))
    assert vault.catalog.artifact(artifact_id).tier == target
    assert vault.catalog.placement(artifact_id)["pending"] is None
    assert vault.catalog.claim_holder(artifact_id) is None
    assert cli_json("verify", artifact_id)["files"] == 24
    out = tmp_path / "out"
    assert cli("get", artifact_id, "--out", str(out)).returncode == 0
    assert (out / "shard-007.safetensors").read_bytes() == (
        src / "shard-007.safetensors"
    ).read_bytes()
    if target == "cold":
        # Every cold object (the dead run's unlocked copies too) and the envelope are locked.
        for key in _objects(vault, "cold", artifact_id):
            assert vault.store.retention(vault.bucket("cold"), key) is not None, key
        assert (
            vault.store.retention(vault.bucket("envelopes"), envelope_key(artifact_id, "cold"))
            is not None
        )
    assert not [r for r in cli_json("gc", "--grace-minutes", "0")["removed"] if artifact_id in r]
    assert cli_json("verify", artifact_id)["files"] == 24


def _later(vault: Vault, *, hours: int) -> Vault:
    """The same vault with its clock ``hours`` ahead."""
    return Vault(
        vault.settings,
        vault.store,
        vault.keys,
        vault.catalog,
        identity=vault.identity,
        clock=lambda: utcnow() + timedelta(hours=hours),
    )


_HOLD_CLAIM = """
import sys, time
from pathlib import Path
from weightvault.artifacts import Vault
from weightvault.config import load_settings
from weightvault.lifecycle import claims
vault = Vault.open(load_settings(Path(sys.argv[1])))
claims.take(vault, sys.argv[2], "hot", "warm")
print("held", flush=True)
time.sleep(600)
"""


def test_a_live_claim_is_respected_and_taken_over_once_its_owner_is_gone(
    vault_settings: Settings, tmp_path: Path
) -> None:
    settings = allow_all_promotions(vault_settings)
    vault = Vault.open(settings, identity="alice")
    src = make_tree(tmp_path / "m", {"w.safetensors": weights(4000)})
    artifact_id = ingest.put(vault, src, "small").artifact_id
    holder = subprocess.Popen(
        [CLI[0], "-c", _HOLD_CLAIM, str(REPO / "config"), artifact_id],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        # A live owner's claim is respected: one line, ConflictError's exit code.
        proc = cli(*_promote_args(artifact_id, "warm"))
        assert proc.returncode == ConflictError.exit_code, proc.stderr
        assert "being moved by another operation" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert vault.catalog.artifact(artifact_id).tier == "hot"
        # Even past its lease: a live owner on this host is never taken over.
        with pytest.raises(ConflictError, match="being moved by another operation"):
            claims.take(_later(vault, hours=2), artifact_id, "hot", "warm")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=60)
    # Its owner gone, the claim is taken over by the next run.
    assert cli_json(*_promote_args(artifact_id, "warm"))["target"] == "warm"
    [takeover] = _events(vault, artifact_id, claims.TAKEN_OVER)
    assert takeover["details"]["previous_owner"].startswith(f"pid {holder.pid} ")  # type: ignore[index]
    assert _tiers_holding(vault, artifact_id) == ["warm"]


def test_a_claim_whose_lease_expired_is_taken_over(vault: Vault, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "m", {"w.safetensors": weights(4000)})
    artifact_id = ingest.put(vault, src, "small").artifact_id
    # A claim of a process on another host: its liveness cannot be checked, its lease can.
    lease = iso_seconds(utcnow() + timedelta(hours=1))
    elsewhere = ClaimOwner("another-host.example", 4242, 1.0, lease)
    stale_generation = vault.catalog.claim(artifact_id, "hot", "warm", elsewhere)
    with pytest.raises(ConflictError, match="being moved by another operation"):
        claims.take(vault, artifact_id, "hot", "warm")
    # Two hours later the lease has expired: the claim is taken over.
    later = _later(vault, hours=2)
    taken = claims.take(later, artifact_id, "hot", "warm")
    assert taken.generation == stale_generation + 1
    holder = vault.catalog.claim_holder(artifact_id)
    assert holder is not None
    assert holder.owner is not None
    assert holder.owner.pid == os.getpid()
    [takeover] = _events(vault, artifact_id, claims.TAKEN_OVER)
    assert "lease expired" in str(takeover["details"]["reason"])  # type: ignore[index]
    # The old holder has lost it: its next step stops, its release drops nothing.
    old = claims.Claim(artifact_id, "hot", "warm", stale_generation)
    with pytest.raises(ConflictError, match="no longer claimed"):
        claims.held(vault, old)
    assert claims.release(vault, old) is False
    assert claims.held(vault, taken) is True
    # A stale claim is taken over only by the same move.
    with pytest.raises(ConflictError):
        claims.take(later, artifact_id, "hot", "cold")


_DIE_AFTER_COMMIT_POINT = """
import os, signal, sys
from pathlib import Path
from weightvault.artifacts import Vault
from weightvault.config import load_settings
from weightvault.lifecycle import promote as promotion
from weightvault.store.layout import manifest_key
vault = Vault.open(load_settings(Path(sys.argv[1])), identity="alice")
p = promotion.plan(vault, sys.argv[2], sys.argv[3], justification="go")
held = promotion.claim(vault, p)
promotion.copy(vault, p, held)
promotion.rewrap(vault, p, held)
# What commit() does first: the manifest copy, the commit point. Then the process dies.
key = manifest_key(p.artifact_id)
vault.store.copy(vault.bucket(p.source), key, vault.bucket(p.target), key)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize(("source", "target"), [("hot", "warm"), ("warm", "cold")])
def test_promotion_killed_past_its_commit_point_rolls_forward(
    vault_settings: Settings, tmp_path: Path, source: str, target: str
) -> None:
    settings = allow_all_promotions(vault_settings)
    vault = Vault.open(settings, identity="alice")
    src = make_tree(tmp_path / "m", {"a.safetensors": weights(5000), "b.json": b"{}"})
    artifact_id = stored_in(vault, src, "small", source)
    proc = subprocess.run(
        [CLI[0], "-c", _DIE_AFTER_COMMIT_POINT, str(REPO / "config"), artifact_id, target],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # Manifests in both tiers, the claim of a dead process: every retry used to be refused.
    assert _tiers_holding(vault, artifact_id) == [source, target]
    assert vault.catalog.placement(artifact_id)["pending"] == target

    result = cli_json(*_promote_args(artifact_id, target))
    assert result["target"] == target
    assert _tiers_holding(vault, artifact_id) == [target]
    assert _objects(vault, source, artifact_id) == []
    assert vault.catalog.artifact(artifact_id).tier == target
    assert vault.catalog.claim_holder(artifact_id) is None
    assert len(_promotions_into(vault, artifact_id, target)) == 1
    assert len(_events(vault, artifact_id, claims.TAKEN_OVER)) == 1
    if target == "cold":
        for key in _objects(vault, "cold", artifact_id):
            assert vault.store.retention(vault.bucket("cold"), key) is not None, key
    assert cli_json("verify", artifact_id)["files"] == 2


def test_gc_removes_the_source_copy_a_promotion_left_after_its_move(
    vault_settings: Settings, tmp_path: Path
) -> None:
    settings = allow_all_promotions(vault_settings)
    vault = Vault.open(settings, identity="alice")
    src = make_tree(tmp_path / "m", {"a.safetensors": weights(5000)})
    artifact_id = ingest.put(vault, src, "small").artifact_id
    hot_keys = _objects(vault, "hot", artifact_id)
    hot_envelope = vault.store.get_bytes(
        vault.bucket("envelopes"), envelope_key(artifact_id, "hot")
    )
    assert cli_json(*_promote_args(artifact_id, "warm"))["target"] == "warm"
    # The state of a crash between the move's catalog update and its source clean-up:
    # the source objects (manifest included) and envelope are still there.
    for key in hot_keys:
        vault.store.copy(vault.bucket("warm"), key, vault.bucket("hot"), key)
    vault.store.put_bytes(vault.bucket("envelopes"), envelope_key(artifact_id, "hot"), hot_envelope)
    assert _tiers_holding(vault, artifact_id) == ["hot", "warm"]

    removed = cli_json("gc", "--grace-minutes", "0")["removed"]
    assert removed[0] == f"{vault.bucket('hot')}/{manifest_key(artifact_id)}"  # commit point first
    assert len(removed) == len(hot_keys) + 1
    assert _tiers_holding(vault, artifact_id) == ["warm"]
    assert _objects(vault, "hot", artifact_id) == []
    assert not vault.store.exists(vault.bucket("envelopes"), envelope_key(artifact_id, "hot"))
    assert cli_json("verify", artifact_id)["files"] == 1
    # A crash later in the clean-up (source objects gone) leaves only the source envelope.
    vault.store.put_bytes(vault.bucket("envelopes"), envelope_key(artifact_id, "hot"), hot_envelope)
    removed = cli_json("gc", "--grace-minutes", "0")["removed"]
    assert removed == [f"{vault.bucket('envelopes')}/{envelope_key(artifact_id, 'hot')}"]
    assert vault.store.exists(vault.bucket("envelopes"), envelope_key(artifact_id, "warm"))
    assert cli_json("verify", artifact_id)["files"] == 1


def test_the_promote_flow_resumes_a_killed_cli_promotion(
    vault_settings: Settings, prefect_api: None, tmp_path: Path
) -> None:
    """The flow runs the same steps: it takes the dead CLI run's claim over and finishes."""
    from flows.promote import promote as promote_flow

    settings = allow_all_promotions(vault_settings)
    vault = Vault.open(settings, identity="alice")
    src = big_tree(tmp_path / "model", files=24, mib=4)
    artifact_id = ingest.put(vault, src, "big").artifact_id
    proc = start_cli(*_promote_args(artifact_id, "warm"))
    kill_when(proc, "the first object in warm", lambda: _objects(vault, "warm", artifact_id))
    assert vault.catalog.placement(artifact_id)["pending"] == "warm"

    state = promote_flow(
        artifact_id=artifact_id, target_tier="warm", justification="resume", return_state=True
    )
    assert state.is_completed(), state.message
    [takeover] = _events(vault, artifact_id, claims.TAKEN_OVER)
    assert takeover["details"]["previous_owner"].startswith(f"pid {proc.pid} ")  # type: ignore[index]
    assert _tiers_holding(vault, artifact_id) == ["warm"]
    assert _objects(vault, "hot", artifact_id) == []
    assert vault.catalog.claim_holder(artifact_id) is None
    assert vault.verify(artifact_id).files == 24
