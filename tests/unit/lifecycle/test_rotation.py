"""Key rotation core: rewrap without touching ciphertext, resume after a crash, retire, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO, make_tree
from tests.support.artifacts import envelope_versions, put_many, stored_objects
from weightvault._json import parse_canonical
from weightvault.artifacts import Vault
from weightvault.config import Settings
from weightvault.errors import InvalidInputError, KeyStateError
from weightvault.keys import KeyState, LocalKeyStore
from weightvault.lifecycle import ingest
from weightvault.lifecycle.rotation import (
    TRUST_ROOT_KEY,
    due_keys,
    load_policy,
    parse_key_ref,
    pending_envelopes,
    rotate,
    rotate_tier,
    rotating_keys,
    scan_store,
    start_rotation,
)
from weightvault.provenance import SIGNING_KEY_ID
from weightvault.store.layout import envelope_key

CLI = [sys.executable, "-m", "weightvault.cli"]


class SimulatedCrashError(Exception):
    """Simulated kill in the middle of a rotation."""


def test_rotation_of_50_artifacts_rewraps_only_envelopes(vault: Vault, tmp_path: Path) -> None:
    ids = put_many(vault, tmp_path, 50)
    before = stored_objects(vault, "hot", ids)
    old = vault.keys.active_kek("hot")
    outcome = rotate_tier(vault, "hot", batch_size=16, workers=8, verify=3)
    assert outcome.rotation.created
    assert outcome.stats.rewrapped == 50
    assert len(outcome.verified) == 3
    new = vault.keys.active_kek("hot")
    assert new.version == old.version + 1
    # No envelope remains on the old version, in the catalog or in the store.
    assert vault.catalog.envelopes_on(old.key_id, old.version) == []
    assert envelope_versions(vault, ids) == {new.version}
    assert scan_store(vault, outcome.rotation).strays == ()
    # The old version is retired: it can no longer unwrap anything.
    assert rotating_keys(vault).get(old.key_id, old.version).state == KeyState.RETIRED
    assert outcome.retire.retired == (old.ref,)
    # Every artifact still decrypts, and no ciphertext object changed.
    for artifact_id in ids:
        assert vault.verify(artifact_id).files == 2
    assert stored_objects(vault, "hot", ids) == before


def test_killed_rotation_resumes_without_a_second_version(vault: Vault, tmp_path: Path) -> None:
    ids = put_many(vault, tmp_path, 30)
    old = vault.keys.active_kek("hot")
    seen: list[int] = []

    def crash_after_two_batches(stats: object) -> None:
        seen.append(1)
        if len(seen) == 2:
            raise SimulatedCrashError

    with pytest.raises(SimulatedCrashError):
        rotate_tier(vault, "hot", batch_size=5, workers=4, on_batch=crash_after_two_batches)
    keys = rotating_keys(vault)
    versions = keys.versions("kek-hot")
    assert [r.state for r in versions] == [KeyState.DECRYPT_ONLY, KeyState.ACTIVE]
    target = versions[-1]
    assert len(vault.catalog.envelopes_on("kek-hot", target.version)) == 10
    assert len(vault.catalog.envelopes_on("kek-hot", old.version)) == 20
    # Half-rotated: every artifact still decrypts (old and new versions both unwrap).
    for artifact_id in ids[:3] + ids[-3:]:
        vault.verify(artifact_id)
    # The scheduled run sees the unfinished rotation and finishes it, reusing the version.
    policy = load_policy(vault)
    due = due_keys(vault, policy, datetime.now(UTC))
    assert any(d.key_id == "kek-hot" and d.reason.startswith("unfinished") for d in due)
    report = rotate(vault, datetime.now(UTC), force_tiers=["hot"])
    assert [r.version for r in keys.versions("kek-hot")] == [old.version, target.version]
    hot = next(t for t in report.tiers if t.rotation.tier == "hot")
    assert not hot.rotation.created
    assert hot.stats.rewrapped == 20
    assert envelope_versions(vault, ids) == {target.version}
    assert keys.get("kek-hot", old.version).state == KeyState.RETIRED
    for artifact_id in ids:
        vault.verify(artifact_id)


def test_crash_between_object_write_and_catalog_update_is_repaired(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = put_many(vault, tmp_path, 6)
    real = vault.catalog.update_envelope_versions

    def fail(conn: object, rows: object) -> int:
        raise SimulatedCrashError

    monkeypatch.setattr(vault.catalog, "update_envelope_versions", fail)
    with pytest.raises(SimulatedCrashError):
        rotate_tier(vault, "hot", batch_size=100)
    monkeypatch.setattr(vault.catalog, "update_envelope_versions", real)
    target = vault.keys.active_kek("hot")
    assert envelope_versions(vault, ids) == {target.version}  # objects moved...
    assert vault.catalog.envelopes_on("kek-hot", target.version) == []  # ...catalog did not
    outcome = rotate_tier(vault, "hot")
    assert not outcome.rotation.created
    assert outcome.stats.already == 6
    assert outcome.stats.rewrapped == 0
    assert len(vault.catalog.envelopes_on("kek-hot", target.version)) == 6
    assert outcome.retire.retired


def test_uncommitted_envelope_on_the_old_version_is_rewrapped_before_retiring(
    vault: Vault, tmp_path: Path
) -> None:
    ids = put_many(vault, tmp_path, 2)
    stray = "wv-20260101-00000000deadbeef"
    vault.create_envelope(stray, "hot")  # a put in flight: envelope but no commit yet
    old = vault.keys.active_kek("hot")
    outcome = rotate_tier(vault, "hot")
    assert outcome.retire.strays_rewrapped == 1
    assert vault.load_envelope(stray, "hot").kek_version == old.version + 1
    assert outcome.retire.retired == (old.ref,)
    assert envelope_versions(vault, ids) == {old.version + 1}


def test_store_scan_catches_envelopes_the_catalog_pass_missed(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = put_many(vault, tmp_path, 3)
    rot = start_rotation(vault, "hot")
    refs = pending_envelopes(vault, rot)
    from weightvault.lifecycle import rotation

    monkeypatch.setattr(rotation, "pending_envelopes", lambda v, r: refs[:1])
    outcome = rotate_tier(vault, "hot")
    assert outcome.stats.rewrapped == 1
    assert outcome.retire.strays_rewrapped == 2
    assert outcome.retire.retired == (f"kek-hot@v{rot.old_versions[0]}",)
    assert envelope_versions(vault, ids) == {rot.target_version}


def test_retire_is_deferred_while_the_catalog_still_references_the_version(
    vault: Vault, tmp_path: Path
) -> None:
    ids = put_many(vault, tmp_path, 3)
    vault.store.remove(vault.bucket("envelopes"), envelope_key(ids[0], "hot"))
    old = vault.keys.active_kek("hot")
    outcome = rotate_tier(vault, "hot", verify=0)
    assert outcome.stats.missing == 1
    assert outcome.retire.retired == ()
    assert outcome.retire.kept == {old.ref: 1}
    assert rotating_keys(vault).get(old.key_id, old.version).state == KeyState.DECRYPT_ONLY


def test_due_keys_follow_the_lifetime_policy(vault: Vault) -> None:
    policy = load_policy(vault)
    now = datetime.now(UTC)
    assert due_keys(vault, policy, now) == []
    # Hot KEKs live 30 days (lead 3 days): due after 27 days, warm (90 * 0.75) later.
    due = {d.key_id: d.reason for d in due_keys(vault, policy, now + timedelta(days=28))}
    assert due == {"kek-hot": "near the end of its lifetime"}
    due = {d.key_id: d.reason for d in due_keys(vault, policy, now + timedelta(days=400))}
    assert {"kek-hot", "kek-warm", "kek-cold", "kek-quarantine"} <= set(due)
    assert due["kek-hot"] == "expired"
    forced = due_keys(vault, policy, now, force_tiers=["warm"])
    assert [(d.key_id, d.reason) for d in forced] == [("kek-warm", "forced")]
    with pytest.raises(InvalidInputError):
        due_keys(vault, policy, now, force_tiers=["lukewarm"])


def test_scheduled_run_rotates_only_what_is_due(vault: Vault, tmp_path: Path) -> None:
    put_many(vault, tmp_path, 2)
    before = {r.key_id: r.version for r in rotating_keys(vault).records()}
    report = rotate(vault, datetime.now(UTC))
    assert report.tiers == []
    assert {r.key_id: r.version for r in rotating_keys(vault).records()} == before
    report = rotate(vault, datetime.now(UTC) + timedelta(days=28))
    assert [t.rotation.target_ref for t in report.tiers] == [f"kek-hot@v{before['kek-hot'] + 1}"]


def test_signing_rotation_keeps_old_signatures_verifiable(vault: Vault, tmp_path: Path) -> None:
    first = put_many(vault, tmp_path, 1)[0]
    report = rotate(vault, datetime.now(UTC), force_signing=True)
    assert report.signing == f"{SIGNING_KEY_ID}@v2"
    root = parse_canonical(vault.store.get_bytes(vault.bucket("audit"), TRUST_ROOT_KEY), "root")
    assert [(k["key_id"], k["version"]) for k in root["keys"]] == [
        (SIGNING_KEY_ID, 1),
        (SIGNING_KEY_ID, 2),
    ]
    assert "material" not in json.dumps(root)
    vault.verify(first)  # signed by v1
    src = make_tree(tmp_path / "later", {"w.bin": b"after rotation"})
    later = ingest.put(vault, src, "later").artifact
    assert later.signed_by == f"{SIGNING_KEY_ID}@v2"
    vault.verify(later.id)


def test_wrap_refuses_every_non_active_state(vault: Vault) -> None:
    keys = rotating_keys(vault)
    old = keys.active_kek("warm")
    keys.rotate_kek("warm")
    for state in (KeyState.DECRYPT_ONLY, KeyState.RETIRED, KeyState.COMPROMISED):
        rec = keys.set_state(old.key_id, old.version, state)
        with pytest.raises(KeyStateError):
            keys.wrap_with(rec, "warm", "wv-20260101-0000000000000001", os.urandom(32))


def test_parse_key_ref() -> None:
    assert parse_key_ref("kek-hot") == ("kek-hot", None)
    assert parse_key_ref("kek-hot@v12") == ("kek-hot", 12)
    for bad in ("", "kek hot", "kek-hot@12", "kek-hot@v", "../x"):
        with pytest.raises(InvalidInputError):
            parse_key_ref(bad)


# -- the CLI ----------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, check=False
    )


def test_cli_rotate_plan_and_errors(vault_settings: Settings, tmp_path: Path) -> None:
    vault = Vault.open(vault_settings)
    ids = put_many(vault, tmp_path, 3)
    dry = run("keys", "rotate", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == []
    proc = run("keys", "rotate", "--tier", "hot", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["rewrapped"] == 3
    assert report["tiers"][0]["retired"] == ["kek-hot@v1"]
    assert envelope_versions(vault, ids) == {2}
    plan = run("keys", "plan", "--key", "kek-hot")
    assert plan.returncode == 0, plan.stderr
    assert "kek-hot@v2" in plan.stdout
    assert "max lifetime" in plan.stdout
    assert "reasons:" in plan.stdout
    bad = run("keys", "compromise", "no such key")
    assert bad.returncode == InvalidInputError.exit_code
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_cli_rotation_killed_mid_way_resumes(vault_settings: Settings, tmp_path: Path) -> None:
    vault = Vault.open(vault_settings)
    ids = put_many(vault, tmp_path, 40)
    proc = subprocess.Popen(
        [*CLI, "keys", "rotate", "--tier", "hot", "--batch-size", "1", "--workers", "1"],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(vault.catalog.envelopes_on("kek-hot", 2)) >= 5:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    moved = len(vault.catalog.envelopes_on("kek-hot", 2))
    assert [r.version for r in rotating_keys(vault).versions("kek-hot")] == [1, 2]
    again = run("keys", "rotate", "--json")  # the schedule: nothing forced, resumes anyway
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    if moved < 40:
        assert report["tiers"][0]["created"] is False
    assert [r.version for r in rotating_keys(vault).versions("kek-hot")] == [1, 2]
    assert envelope_versions(vault, ids) == {2}
    assert rotating_keys(vault).get("kek-hot", 1).state == KeyState.RETIRED
    for artifact_id in ids[:5]:
        vault.verify(artifact_id)


def test_keystore_is_never_printed(vault_settings: Settings, tmp_path: Path) -> None:
    vault = Vault.open(vault_settings)
    put_many(vault, tmp_path, 1)
    out = run("keys", "rotate", "--tier", "hot", "--signing", "--json").stdout
    out += run("keys", "plan", "--json").stdout
    keys = LocalKeyStore(vault_settings.keystore_path, b"\0" * 32)
    del keys
    for rec in rotating_keys(vault).records():
        assert rec.material.hex() not in out
        import base64

        assert base64.b64encode(rec.material).decode() not in out


# -- compromise and re-encryption (core) ---------------------------------------------


def file_keys(vault: Vault, artifact_id: str) -> list[str]:
    return [f["object_key"] for f in vault.catalog.files_of(artifact_id)]


def test_compromise_stops_wraps_and_lists_what_the_key_protects(
    vault: Vault, tmp_path: Path
) -> None:
    from weightvault.lifecycle.compromise import compromise_key

    ids = put_many(vault, tmp_path, 3)
    since = datetime.now(UTC)
    vault.verify(ids[1])  # accessed inside the exposure window
    old = vault.keys.active_kek("hot")
    report = compromise_key(vault, "kek-hot", since=since, exposed=[ids[2]])
    assert report.key == old.ref
    assert report.newly_marked
    assert report.replacement == f"kek-hot@v{old.version + 1}"
    actions = {p.artifact_id: p.action for p in report.protected}
    assert actions == {ids[0]: "rewrap", ids[1]: "re-encrypt", ids[2]: "re-encrypt"}
    keys = rotating_keys(vault)
    compromised = keys.get(old.key_id, old.version)
    assert compromised.state == KeyState.COMPROMISED
    with pytest.raises(KeyStateError):
        keys.wrap_with(compromised, "hot", ids[0], os.urandom(32))
    # New puts go to the fresh version at once; a rotation leaves compromised envelopes alone.
    later = put_many(vault, tmp_path / "later", 1)[0]
    assert vault.load_envelope(later, "hot").kek_version == old.version + 1
    assert rotate_tier(vault, "hot", new_version=False).stats.total == 0
    assert len(vault.catalog.envelopes_on(old.key_id, old.version)) == 3
    # Running it again only lists.
    again = compromise_key(vault, old.ref)
    assert not again.newly_marked
    assert len(keys.versions("kek-hot")) == 2


def test_reencrypt_killed_before_its_journal_is_swept_and_redone(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weightvault.lifecycle import rekey

    artifact_id = put_many(vault, tmp_path, 1)[0]
    before = file_keys(vault, artifact_id)
    old_dek = vault.dek(artifact_id, "hot")
    real = rekey.resign_statement

    def crash(*args: object, **kwargs: object) -> tuple[bytes, str]:
        raise SimulatedCrashError

    monkeypatch.setattr(rekey, "resign_statement", crash)
    with pytest.raises(SimulatedCrashError):
        rekey.reencrypt_artifact(vault, artifact_id)
    listed = [
        o.key for o in vault.store.list(vault.bucket("hot"), f"artifacts/{artifact_id}/files/")
    ]
    assert len(listed) == 4  # two old files, two orphans of the dead attempt
    vault.verify(artifact_id)  # nothing it relies on changed
    assert vault.catalog.placement(artifact_id)["pending"] == rekey.CLAIM
    monkeypatch.setattr(rekey, "resign_statement", real)
    result = rekey.reencrypt_artifact(vault, artifact_id)
    assert not result.resumed
    after = file_keys(vault, artifact_id)
    listed = [
        o.key for o in vault.store.list(vault.bucket("hot"), f"artifacts/{artifact_id}/files/")
    ]
    assert sorted(listed) == sorted(after)
    assert not set(after) & set(before)
    assert vault.dek(artifact_id, "hot") != old_dek
    assert vault.catalog.placement(artifact_id)["pending"] is None
    vault.verify(artifact_id)


def test_reencrypt_killed_after_its_journal_is_rolled_forward(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weightvault.lifecycle import rekey

    artifact_id, src = put_many(vault, tmp_path, 1)[0], tmp_path / "a0"
    real = vault.catalog.replace_files

    def crash(*args: object, **kwargs: object) -> None:
        raise SimulatedCrashError

    monkeypatch.setattr(vault.catalog, "replace_files", crash)
    with pytest.raises(SimulatedCrashError):
        rekey.reencrypt_artifact(vault, artifact_id)
    monkeypatch.setattr(vault.catalog, "replace_files", real)
    assert rekey.pending_journals(vault) == [(artifact_id, "hot")]
    result = rekey.reencrypt_artifact(vault, artifact_id)
    assert result.resumed
    assert result.old_objects_removed == 2
    assert rekey.pending_journals(vault) == []
    out = tmp_path / "out"
    vault.get(artifact_id, out)
    assert (out / "w.bin").read_bytes() == (src / "w.bin").read_bytes()
