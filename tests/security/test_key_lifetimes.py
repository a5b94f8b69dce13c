"""Red-team tests of key lifetimes (issue 10, defects 3, 4, 8 and 12).

Each test reproduces the attack or failure against the real store and the
real CLI and shows it now does no harm:

- 3: a KEK past ``expires_at`` wrapped new DEKs, and ``init`` made keys with
  no expiry at all;
- 4: restoring an old ``keystore.sealed`` brought a compromised KEK back to
  active and new puts wrapped under it;
- 12: KEK wraps (random 96-bit nonces) were not counted or capped;
- 8: ``keys rotate`` failed (exit 13) when its verification sample hit a
  quarantined artifact, leaving the old KEK version decrypt-only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.rotate_keys import rotate_keys
from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from weightvault.artifacts import BOOTSTRAP_PURPOSE, StoreKeystoreVersions, Vault, open_keystore
from weightvault.config import Settings, load_settings
from weightvault.errors import (
    IntegrityError,
    KeystoreRollbackError,
    KeyUsageError,
    QuarantinedError,
)
from weightvault.keys import (
    KeyState,
    LocalKeyStore,
    load_lifetime_policy,
    plan_key,
    policy_lifetime,
)
from weightvault.lifecycle import ingest, rotation
from weightvault.lifecycle.quarantine import quarantine
from weightvault.store.layout import ENVELOPES_PREFIX, KEYSTORE_VERSIONS_PREFIX

CLI = [sys.executable, "-m", "weightvault.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in the test's environment (home, store, bucket prefix)."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=dict(os.environ), cwd=REPO, check=False
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The CLI failed with ``code`` and one line naming every needle; returns that line."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("weightvault: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def envelope_keys(vault: Vault) -> set[str]:
    """Every object in the envelope bucket."""
    return {o.key for o in vault.store.list(vault.bucket("envelopes"), ENVELOPES_PREFIX)}


def kek_versions(settings: Settings, tier: str = "hot") -> dict[int, tuple[KeyState, int]]:
    """State and wrap count of each version of a tier KEK, read from the keystore file."""
    keys = Vault.open(settings).keys
    assert isinstance(keys, LocalKeyStore)
    return {r.version: (r.state, r.wraps) for r in keys.versions(f"kek-{tier}")}


def a_model(root: Path, tag: str) -> Path:
    """A small, distinct artifact directory."""
    return make_tree(root / tag, {"w.bin": weights(256) + tag.encode(), "c.json": b"{}"})


def moved(by: timedelta) -> Callable[[], datetime]:
    """A clock ``by`` ahead of (or behind) the real one."""
    return lambda: datetime.now(UTC) + by


# -- defect 3: every key has a lifetime, and an expired KEK wraps nothing ----------


def test_init_gives_every_key_its_policy_lifetime(vault_settings: Settings) -> None:
    """``init`` made keys with no expiry: now each KEK expires when the policy says."""
    policy = load_lifetime_policy(vault_settings.lifetimes_file)
    keys = Vault.open(vault_settings).keys
    assert isinstance(keys, LocalKeyStore)
    keks = [r for r in keys.records() if r.purpose == "kek"]
    assert {r.tier for r in keks} == {"hot", "warm", "cold", "quarantine"}
    for rec in keks:
        tier = rec.tier if rec.tier in {"hot", "warm", "cold"} else "cold"
        lifetime = plan_key(policy, "kek", tier, now=rec.created_at).max_lifetime
        assert rec.expires_at is not None, rec.ref
        assert rec.expires_at == rec.created_at + lifetime, rec.ref
    hot = next(r for r in keks if r.tier == "hot")
    assert hot.expires_at is not None
    assert hot.expires_at - hot.created_at == timedelta(days=30)


def test_keys_made_later_and_keys_made_without_expiry_have_lifetimes(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """The signing key a first put makes expires too; a key from before expiries gets one."""
    vault = Vault.open(vault_settings, identity="alice")
    ingest.put(vault, a_model(tmp_path, "s"), "s")
    for rec in vault.keys.records():
        if rec.purpose == BOOTSTRAP_PURPOSE:
            continue  # the first principal's enrolment: a public key, not a key the vault uses
        assert rec.expires_at is not None, rec.ref

    # A keystore written before every key had an expiry (as `init` used to write it).
    path, master = tmp_path / "old.sealed", os.urandom(32)
    legacy = LocalKeyStore(path, master, clock=moved(-timedelta(days=31)))
    assert legacy.active_kek("hot").expires_at is None
    now = LocalKeyStore(path, master, lifetime=policy_lifetime(vault_settings.lifetimes_file))
    with pytest.raises(KeyUsageError, match="kek-hot@v1 expired"):
        now.wrap_dek("hot", "wv-20260101-0000000000000000", b"k" * 32)
    assert now.get("kek-hot", 1).wraps == 0


def test_expired_kek_refuses_a_put_until_rotated(vault_settings: Settings, tmp_path: Path) -> None:
    """A put 31 days on (hot KEKs live 30) is refused, nothing stored; rotation fixes it."""
    later = moved(timedelta(days=31))
    vault = Vault.open(vault_settings, identity="alice", clock=later)
    before_envelopes = envelope_keys(vault)
    before_wraps = kek_versions(vault_settings)[1]

    with pytest.raises(KeyUsageError) as refused:
        ingest.put(vault, a_model(tmp_path, "late"), "late")
    assert "kek-hot@v1 expired" in refused.value.message
    assert "weightvault keys rotate --tier hot" in refused.value.message
    assert envelope_keys(vault) == before_envelopes
    assert vault.catalog.list_artifacts() == []
    assert kek_versions(vault_settings)[1] == before_wraps

    report = rotation.rotate(vault, later())
    assert [d.reason for d in report.due if d.key_id == "kek-hot"] == ["expired"]
    stored = ingest.put(vault, a_model(tmp_path, "after"), "after")
    assert vault.load_envelope(stored.artifact_id, "hot").kek_version == 2
    vault.verify(stored.artifact_id)
    states = kek_versions(vault_settings)
    assert states[1][0] == KeyState.RETIRED
    assert states[2][0] == KeyState.ACTIVE


def test_expired_kek_refuses_a_cli_put_with_one_line(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """Through the real CLI at the real time: a KEK made 40 days ago cannot wrap."""
    vault = Vault.open(vault_settings)
    old = open_keystore(vault_settings, vault.store, clock=moved(-timedelta(days=40)))
    stale = old.rotate_kek("hot")
    assert stale.expires_at is not None
    assert stale.expires_at < datetime.now(UTC)
    before = envelope_keys(vault)

    proc = cli("put", str(a_model(tmp_path, "m")), "--name", "m")
    assert_one_line_error(
        proc, KeyUsageError.exit_code, "kek-hot@v2 expired", "weightvault keys rotate --tier hot"
    )
    assert envelope_keys(vault) == before
    assert Vault.open(vault_settings).catalog.list_artifacts() == []

    plan = cli("keys", "rotate", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "kek-hot@v2: expired" in plan.stdout
    rotated = cli("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    put = cli("put", str(a_model(tmp_path, "m2")), "--name", "m2", "--json")
    assert put.returncode == 0, put.stderr
    artifact_id = json.loads(put.stdout)["artifact_id"]
    assert Vault.open(vault_settings).load_envelope(artifact_id, "hot").kek_version == 3


# -- defect 4: an older keystore file is refused ------------------------------------


def test_restored_keystore_cannot_bring_a_compromised_kek_back(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """Copy keystore.sealed, compromise the KEK, restore the copy: put fails, nothing wrapped."""
    first = cli("put", str(a_model(tmp_path, "a")), "--name", "a", "--json")
    assert first.returncode == 0, first.stderr
    backup = tmp_path / "keystore.copy"
    shutil.copy2(vault_settings.keystore_path, backup)

    compromised = cli("keys", "compromise", "kek-hot@v1")
    assert compromised.returncode == 0, compromised.stderr
    assert kek_versions(vault_settings)[1][0] == KeyState.COMPROMISED
    newest = vault_settings.keystore_path.read_bytes()
    vault = Vault.open(vault_settings)
    before = envelope_keys(vault)

    shutil.copy2(backup, vault_settings.keystore_path)  # the attack
    put = cli("put", str(a_model(tmp_path, "b")), "--name", "b")
    line = assert_one_line_error(put, KeystoreRollbackError.exit_code, "older copy", "keystore")
    assert "material" not in line
    assert envelope_keys(vault) == before
    inventory = cli("keys", "inventory")
    assert_one_line_error(inventory, KeystoreRollbackError.exit_code, "older copy")
    with pytest.raises(KeystoreRollbackError):
        Vault.open(vault_settings).keys.wrap_dek("hot", "wv-20260101-0000000000000000", b"k" * 32)
    assert envelope_keys(vault) == before

    vault_settings.keystore_path.write_bytes(newest)  # the real, newest keystore
    again = cli("put", str(a_model(tmp_path, "c")), "--name", "c", "--json")
    assert again.returncode == 0, again.stderr
    wrapped = Vault.open(vault_settings).load_envelope(
        json.loads(again.stdout)["artifact_id"], "hot"
    )
    assert wrapped.kek_version == 2
    assert kek_versions(vault_settings)[1][0] == KeyState.COMPROMISED


def test_a_long_running_vault_refuses_a_copy_it_has_seen_before(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """A process that cached version N must not take a copy of N restored after N+1."""
    backup = tmp_path / "keystore.copy"
    shutil.copy2(vault_settings.keystore_path, backup)
    server = Vault.open(vault_settings)  # e.g. the process `up` serves
    assert server.keys.active_kek("hot").version == 1  # caches the very bytes of the copy

    compromised = cli("keys", "compromise", "kek-hot@v1")
    assert compromised.returncode == 0, compromised.stderr
    shutil.copy2(backup, vault_settings.keystore_path)  # the attack
    before = envelope_keys(server)
    with pytest.raises(KeystoreRollbackError):
        ingest.put(server, a_model(tmp_path, "late"), "late")
    assert envelope_keys(server) == before
    assert server.catalog.list_artifacts() == []


def test_deleted_keystore_is_refused_not_silently_replaced(vault_settings: Settings) -> None:
    """Without the file the vault would make fresh KEKs: the store knows a keystore existed."""
    vault_settings.keystore_path.unlink()
    with pytest.raises(KeystoreRollbackError, match="is missing but version"):
        Vault.open(vault_settings).keys.records()
    proc = cli("put", str(REPO / "config" / "params.yaml"), "--name", "p")
    assert_one_line_error(proc, KeystoreRollbackError.exit_code, "is missing")
    assert not vault_settings.keystore_path.exists()


def test_every_change_is_recorded_and_a_vault_without_records_catches_up(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """init records its versions; a vault from before records (none in the store) still opens."""
    vault = Vault.open(vault_settings)
    keys = vault.keys
    assert isinstance(keys, LocalKeyStore)
    audit = vault.bucket("audit")
    versions = StoreKeystoreVersions(vault.store, audit)
    initial = keys.version
    assert initial >= 4  # one save per tier KEK made by init
    assert versions.has(initial)
    assert versions.newer(initial) == []

    for obj in list(vault.store.list(audit, KEYSTORE_VERSIONS_PREFIX)):
        vault.store.remove(audit, obj.key)
    reopened = Vault.open(vault_settings, identity="alice")
    stored = ingest.put(reopened, a_model(tmp_path, "x"), "x")
    reopened.verify(stored.artifact_id)
    after = Vault.open(vault_settings).keys
    assert isinstance(after, LocalKeyStore)
    assert after.version > initial
    assert versions.has(initial)  # caught up by the first open
    assert versions.has(after.version)


def test_forged_version_record_is_ignored(vault_settings: Settings) -> None:
    """A record without the keystore's MAC (written by someone else) proves nothing."""
    vault = Vault.open(vault_settings)
    versions = StoreKeystoreVersions(vault.store, vault.bucket("audit"))
    forged = json.dumps({"type": "weightvault.keystore-version/v1", "version": 999, "mac": "00"})
    versions.record(999, forged.encode())
    keys = Vault.open(vault_settings).keys
    assert isinstance(keys, LocalKeyStore)
    assert keys.active_kek("hot").version == 1
    keys.wrap_dek("hot", "wv-20260101-0000000000000000", b"k" * 32)


# -- defect 12: wraps are counted per KEK version and capped ------------------------


def limit_wraps(settings: Settings, limit: int) -> Settings:
    """The vault's settings with ``[keys] max_kek_wraps = limit`` (a home weightvault.toml)."""
    text = (REPO / "config" / "weightvault.toml").read_text()
    text = text.replace("max_kek_wraps = 2147483648", f"max_kek_wraps = {limit}")
    assert f"max_kek_wraps = {limit}" in text
    (settings.home / "weightvault.toml").write_text(text)
    limited = load_settings(REPO / "config")
    assert limited.max_kek_wraps == limit
    return limited


def test_wrap_count_caps_a_kek_and_shows_in_the_inventory(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """Past the configured limit (tiny here, 2^31 by default) a KEK wraps nothing more."""
    settings = limit_wraps(vault_settings, 10)
    vault = Vault.open(settings, identity="alice")
    ids = [ingest.put(vault, a_model(tmp_path, f"m{i}"), f"m{i}").artifact_id for i in range(2)]
    keys = vault.keys
    assert isinstance(keys, LocalKeyStore)
    # Seven wraps counted by a put that died before using them: counted, never lost.
    keys.reserve_wraps(keys.active_kek("hot"), 7)
    assert kek_versions(settings)[1] == (KeyState.ACTIVE, 9)

    due = cli("keys", "rotate", "--dry-run")
    assert "kek-hot@v1: wrapped 9 keys, limit 10" in due.stdout, due.stdout
    ids.append(ingest.put(vault, a_model(tmp_path, "m2"), "m2").artifact_id)
    assert kek_versions(settings)[1] == (KeyState.ACTIVE, 10)

    before = envelope_keys(vault)
    refused = cli("put", str(a_model(tmp_path, "m3")), "--name", "m3")
    assert_one_line_error(
        refused, KeyUsageError.exit_code, "kek-hot@v1 has wrapped 10 keys", "limit is 10"
    )
    assert envelope_keys(vault) == before
    assert kek_versions(settings)[1] == (KeyState.ACTIVE, 10)

    shown = cli("keys", "inventory", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {(r["key_id"], r["version"]): r for r in json.loads(shown.stdout)}
    assert rows[("kek-hot", 1)]["wraps"] == 10
    assert rows[("kek-warm", 1)]["wraps"] == 0
    table = cli("keys", "inventory").stdout
    assert "WRAPS" in table.splitlines()[0]
    hot_line = next(line for line in table.splitlines() if line.startswith("kek-hot "))
    assert hot_line.split()[-1] == "10"

    rotated = cli("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    put = cli("put", str(a_model(tmp_path, "m4")), "--name", "m4", "--json")
    assert put.returncode == 0, put.stderr
    states = kek_versions(settings)
    assert states[1] == (KeyState.RETIRED, 10)
    assert states[2] == (KeyState.ACTIVE, 3 + 1)  # three envelopes rewrapped, one new put
    for artifact_id in ids:
        Vault.open(settings).verify(artifact_id)


def test_wrap_count_is_saved_before_the_wrap_and_exact_under_concurrency(
    tmp_path: Path,
) -> None:
    """Two keystores on one file, four threads: every wrap counted once, on disk first."""
    path, master = tmp_path / "keystore.sealed", os.urandom(32)
    writers = [LocalKeyStore(path, master), LocalKeyStore(path, master)]
    kek = writers[0].active_kek("hot")
    errors: list[BaseException] = []

    def wrap_many(keys: LocalKeyStore) -> None:
        try:
            for i in range(25):
                keys.wrap_dek("hot", f"wv-20260101-{i:016x}", b"k" * 32)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=wrap_many, args=(writers[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert LocalKeyStore(path, master).get(kek.key_id, kek.version).wraps == 100

    writers[0].reserve_wraps(kek, 5)  # counted and saved before any of the five is done
    assert LocalKeyStore(path, master).get(kek.key_id, kek.version).wraps == 105
    writers[0].wrap_with(kek, "hot", "wv-20260101-00000000000000ff", b"k" * 32)
    assert LocalKeyStore(path, master).get(kek.key_id, kek.version).wraps == 105


# -- defect 8: a quarantined artifact in the rotation sample ------------------------


def test_rotation_sample_skips_quarantined_artifacts(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """Quarantine one of two artifacts, rotate with a sample of all: it succeeds, keys whole."""
    vault = Vault.open(vault_settings, identity="alice")
    keep = ingest.put(vault, a_model(tmp_path, "keep"), "keep").artifact_id
    bad = ingest.put(vault, a_model(tmp_path, "bad"), "bad").artifact_id
    quarantined = cli("quarantine", bad, "--reason", "failed scan")
    assert quarantined.returncode == 0, quarantined.stderr

    proc = cli("keys", "rotate", "--tier", "hot", "--verify", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (hot,) = report["tiers"]
    assert hot["verified"] == [keep]
    assert hot["retired"] == ["kek-hot@v1"]

    states = kek_versions(vault_settings)
    assert states[1][0] == KeyState.RETIRED
    assert states[2][0] == KeyState.ACTIVE
    assert not [v for v, (s, _) in states.items() if s == KeyState.DECRYPT_ONLY]
    vault = Vault.open(vault_settings, identity="alice")
    assert vault.resolve(bad).tier == "quarantine"
    with pytest.raises(QuarantinedError):
        vault.verify(bad)
    got = cli("get", bad, "--out", str(tmp_path / "out"))
    assert_one_line_error(got, QuarantinedError.exit_code, "quarantined")
    assert not (tmp_path / "out").exists()
    # Its envelope moved with the others, so it reads again once released.
    assert {vault.load_envelope(a, "hot").kek_version for a in (keep, bad)} == {2}


def test_a_failing_sample_never_leaves_the_tier_half_rotated(
    vault_settings: Settings, tmp_path: Path
) -> None:
    """A damaged artifact in the sample fails the run, after the keys reached their end state."""
    vault = Vault.open(vault_settings, identity="alice")
    damaged = ingest.put(vault, a_model(tmp_path, "d"), "d").artifact_id
    key = vault.catalog.files_of(damaged)[0]["object_key"]
    data = bytearray(vault.store.get_bytes(vault.bucket("hot"), key))
    data[len(data) // 2] ^= 1
    vault.store.put_bytes(vault.bucket("hot"), key, bytes(data))

    proc = cli("keys", "rotate", "--tier", "hot", "--verify", "5")
    assert_one_line_error(proc, IntegrityError.exit_code, damaged)
    states = kek_versions(vault_settings)
    assert states[1][0] == KeyState.RETIRED
    assert states[2][0] == KeyState.ACTIVE
    assert Vault.open(vault_settings).load_envelope(damaged, "hot").kek_version == 2
    again = cli("keys", "rotate", "--dry-run")
    assert "kek-hot" not in again.stdout, again.stdout


def test_rotation_flow_sample_skips_quarantined_artifacts(
    vault_settings: Settings, prefect_api: None, tmp_path: Path
) -> None:
    """The scheduled rotate-keys flow runs the same steps: it completes, keys whole."""
    vault = Vault.open(vault_settings, identity="alice")
    keep = ingest.put(vault, a_model(tmp_path, "keep"), "keep").artifact_id
    bad = ingest.put(vault, a_model(tmp_path, "bad"), "bad").artifact_id
    quarantine(vault, bad, reason="failed scan")

    state = rotate_keys(force_tiers=["hot"], verify_sample=10, return_state=True)
    assert state.is_completed(), state.message
    (hot,) = state.result()["tiers"]
    assert hot["verified"] == [keep]
    assert hot["retired"] == ["kek-hot@v1"]
    states = kek_versions(vault_settings)
    assert (states[1][0], states[2][0]) == (KeyState.RETIRED, KeyState.ACTIVE)
    assert Vault.open(vault_settings).resolve(bad).tier == "quarantine"
