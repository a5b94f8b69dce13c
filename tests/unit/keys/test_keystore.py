"""The sealed local keystore: KEK versions and states, wrap binding, sealing, master key."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.conftest import REPO
from tests.support.keystore_race import race_active_kek
from tests.support.payloads import weights
from weightvault.config import Settings
from weightvault.errors import (
    AuthenticationError,
    ConfigError,
    IntegrityError,
    KeyStateError,
    KeyUsageError,
    NotFoundError,
    VaultError,
)
from weightvault.keys import KeyState, LocalKeyStore, WrappedKey, create_master_key, load_master_key
from weightvault.keys._keystore import MASTER_KEY_ENV

ARTIFACT = "wv-20260101-0123456789abcdef"
MAGIC = b"WVKS1\n"


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def ks_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "keystore.sealed"


@pytest.fixture
def ks(ks_path: Path, master_key: bytes) -> LocalKeyStore:
    return LocalKeyStore(ks_path, master_key)


def unseal(path: Path, master_key: bytes) -> bytes:
    """Open the sealed file by hand: magic, 12-byte nonce, AES-256-GCM body."""
    blob = path.read_bytes()
    assert blob.startswith(MAGIC)
    nonce, body = blob[len(MAGIC) : len(MAGIC) + 12], blob[len(MAGIC) + 12 :]
    return AESGCM(master_key).decrypt(nonce, body, b"weightvault keystore v1")


def encodings(material: bytes) -> list[bytes]:
    """Ways key material could show up in a file or a string."""
    b64 = base64.b64encode(material)
    return [
        material,
        b64,
        b64.rstrip(b"="),
        base64.urlsafe_b64encode(material).rstrip(b"="),
        material.hex().encode(),
        repr(material).encode(),
    ]


# -- versions and states -------------------------------------------------------


def test_active_kek_is_created_once_and_rotation_versions_it(
    ks: LocalKeyStore, master_key: bytes
) -> None:
    first = ks.active_kek("hot")
    assert (first.key_id, first.version, first.state, first.tier) == (
        "kek-hot",
        1,
        KeyState.ACTIVE,
        "hot",
    )
    assert len(first.material) == 32
    assert ks.active_kek("hot") == first
    assert ks.active_kek("warm").material != first.material
    second = ks.rotate_kek("hot")
    assert (second.version, second.state) == (2, KeyState.ACTIVE)
    assert second.material != first.material
    assert ks.get("kek-hot", 1).state == KeyState.DECRYPT_ONLY
    assert ks.get("kek-hot", 1).material == first.material
    assert ks.active_kek("hot") == second
    assert [r.version for r in ks.versions("kek-hot")] == [1, 2]
    active = sorted(r.ref for r in ks.records() if r.state == KeyState.ACTIVE)
    assert active == ["kek-hot@v2", "kek-warm@v1"]
    # Another instance reads the same state from the sealed file.
    assert LocalKeyStore(ks.path, master_key).records() == ks.records()
    with pytest.raises(NotFoundError):
        ks.get("kek-hot", 3)


def test_decrypt_only_unwraps_but_does_not_wrap(ks: LocalKeyStore) -> None:
    dek = os.urandom(32)
    old = ks.wrap_dek("hot", ARTIFACT, dek)
    assert (old.kek_id, old.kek_version) == ("kek-hot", 1)
    ks.rotate_kek("hot")
    assert ks.unwrap_dek(old) == dek
    new = ks.wrap_dek("hot", ARTIFACT, dek)
    assert new.kek_version == 2
    assert ks.unwrap_dek(new) == dek
    with pytest.raises(KeyStateError):
        ks.wrap_with(ks.get("kek-hot", 1), "hot", ARTIFACT, dek)


@pytest.mark.parametrize("state", [KeyState.RETIRED, KeyState.DESTROYED])
def test_retired_and_destroyed_keys_cannot_unwrap(ks: LocalKeyStore, state: KeyState) -> None:
    dek = os.urandom(32)
    wrapped = ks.wrap_dek("hot", ARTIFACT, dek)
    ks.rotate_kek("hot")
    ks.set_state("kek-hot", 1, state)
    assert ks.get("kek-hot", 1).state == state
    with pytest.raises(KeyStateError) as err:
        ks.unwrap_dek(wrapped)
    assert "kek-hot@v1" in str(err.value)
    with pytest.raises(KeyStateError):
        ks.wrap_with(ks.get("kek-hot", 1), "hot", ARTIFACT, dek)
    # The current version is unaffected.
    assert ks.unwrap_dek(ks.wrap_dek("hot", ARTIFACT, dek)) == dek


def test_destroyed_wipes_material_from_the_sealed_file(
    ks: LocalKeyStore, master_key: bytes
) -> None:
    old = ks.active_kek("hot")
    ks.rotate_kek("hot")
    assert any(e in unseal(ks.path, master_key) for e in encodings(old.material))
    ks.set_state("kek-hot", 1, KeyState.DESTROYED)
    assert ks.get("kek-hot", 1).material == b""
    reopened = LocalKeyStore(ks.path, master_key)
    assert reopened.get("kek-hot", 1).material == b""
    assert reopened.get("kek-hot", 1).state == KeyState.DESTROYED
    plain = unseal(ks.path, master_key)
    for enc in encodings(old.material):
        assert enc not in plain
    # Destroyed is final.
    with pytest.raises(KeyStateError):
        ks.set_state("kek-hot", 1, KeyState.ACTIVE)
    with pytest.raises(NotFoundError):
        ks.set_state("kek-hot", 9, KeyState.RETIRED)


# -- wrap binding --------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"artifact_id": "wv-20260101-fedcba9876543210"},
        {"tier": "warm"},
        {"tier": "warm", "kek_id": "kek-warm"},
        {"kek_version": 2},
        {"kek_version": 1, "kek_id": "kek-warm"},
    ],
    ids=["artifact", "tier", "tier-and-kek", "older-kek-version", "other-kek"],
)
def test_wrap_is_bound_to_artifact_tier_and_kek_version(
    ks: LocalKeyStore, change: dict[str, Any]
) -> None:
    ks.active_kek("warm")
    ks.active_kek("hot")
    ks.rotate_kek("hot")  # kek-hot@v2 is active, v1 decrypt-only
    ks.rotate_kek("hot")  # v3 active: wrap under it, then point the envelope elsewhere
    dek = os.urandom(32)
    wrapped = ks.wrap_dek("hot", ARTIFACT, dek)
    assert wrapped.kek_version == 3
    assert ks.unwrap_dek(wrapped) == dek
    with pytest.raises(IntegrityError):
        ks.unwrap_dek(replace(wrapped, **change))


def test_unwrap_with_an_unknown_kek_version_is_an_integrity_error(ks: LocalKeyStore) -> None:
    wrapped = ks.wrap_dek("hot", ARTIFACT, os.urandom(32))
    with pytest.raises(IntegrityError):
        ks.unwrap_dek(replace(wrapped, kek_version=7))
    with pytest.raises(IntegrityError):
        ks.unwrap_dek(replace(wrapped, kek_id="kek-nowhere"))


def test_modified_wrapped_bytes_fail(ks: LocalKeyStore) -> None:
    wrapped = ks.wrap_dek("hot", ARTIFACT, os.urandom(32))
    ct = bytearray(wrapped.ciphertext)
    ct[0] ^= 1
    nonce = bytearray(wrapped.nonce)
    nonce[-1] ^= 1
    for bad in (replace(wrapped, ciphertext=bytes(ct)), replace(wrapped, nonce=bytes(nonce))):
        with pytest.raises(IntegrityError):
            ks.unwrap_dek(bad)
    with pytest.raises(IntegrityError):
        WrappedKey.from_dict({**wrapped.to_dict(), "kek_version": "1"})
    with pytest.raises(IntegrityError):
        WrappedKey.from_dict({**wrapped.to_dict(), "wrapped": "not base64!"})


# -- the sealed file -----------------------------------------------------------


def test_sealed_file_is_private_and_holds_no_material_in_clear(
    ks: LocalKeyStore, master_key: bytes
) -> None:
    for tier in ("hot", "warm", "cold"):
        ks.active_kek(tier)
    ks.rotate_kek("hot")
    ks.put_secret("sign-test", "signing", "Ed25519", os.urandom(32))
    assert ks.path.stat().st_mode & 0o777 == 0o600
    assert ks.path.parent.stat().st_mode & 0o077 == 0
    blob = ks.path.read_bytes()
    assert blob.startswith(MAGIC)
    for rec in ks.records():
        for enc in encodings(rec.material):
            assert enc not in blob, rec.ref
        assert rec.key_id.encode() not in blob  # the whole document is sealed
    # No leftover temporary files next to it.
    assert sorted(p.name for p in ks.path.parent.iterdir()) == [
        "keystore.sealed",
        "keystore.sealed.lock",
    ]
    assert LocalKeyStore(ks.path, master_key).records() == ks.records()


def test_wrong_master_key_is_an_authentication_error(ks: LocalKeyStore) -> None:
    ks.active_kek("hot")
    other = LocalKeyStore(ks.path, os.urandom(32))
    with pytest.raises(AuthenticationError) as err:
        other.records()
    assert "master key" in str(err.value)
    with pytest.raises(AuthenticationError):
        other.active_kek("hot")
    with pytest.raises(AuthenticationError):
        other.rotate_kek("hot")


def _flip(offset: int) -> Any:
    def change(blob: bytes) -> bytes:
        data = bytearray(blob)
        data[offset] ^= 0x01
        return bytes(data)

    return change


@pytest.mark.parametrize(
    "tamper",
    [
        _flip(0),  # magic
        _flip(len(MAGIC) + 3),  # nonce
        _flip(len(MAGIC) + 12 + 5),  # body
        _flip(-1),  # tag
        lambda b: b[:-1],
        lambda b: b[: len(MAGIC) + 20],
        lambda b: b + b"\x00",
        lambda b: b"",
        lambda b: MAGIC + weights(len(b) - len(MAGIC)),
    ],
    ids=["magic", "nonce", "body", "tag", "truncated", "cut-short", "extended", "empty", "random"],
)
def test_tampered_keystore_is_refused(ks: LocalKeyStore, master_key: bytes, tamper: Any) -> None:
    ks.active_kek("hot")
    assert ks.records()  # this instance has read the file before it changed
    ks.path.write_bytes(tamper(ks.path.read_bytes()))
    for store in (LocalKeyStore(ks.path, master_key), ks):
        with pytest.raises((AuthenticationError, IntegrityError)):
            store.records()
        with pytest.raises((AuthenticationError, IntegrityError)):
            store.active_kek("hot")


def test_tampering_is_seen_by_an_open_keystore_even_with_the_same_mtime(
    ks: LocalKeyStore,
) -> None:
    ks.active_kek("hot")
    assert ks.records()
    before = ks.path.stat()
    blob = bytearray(ks.path.read_bytes())
    blob[len(MAGIC) + 12 + 5] ^= 0x01
    with ks.path.open("r+b") as fh:  # in place: same inode, same size
        fh.write(blob)
    os.utime(ks.path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(AuthenticationError):
        ks.records()
    with pytest.raises(AuthenticationError):
        ks.active_kek("hot")


def test_open_keystore_sees_a_rotation_by_another_within_one_mtime_tick(
    ks_path: Path, master_key: bytes
) -> None:
    reader = LocalKeyStore(ks_path, master_key)
    writer = LocalKeyStore(ks_path, master_key)
    writer.active_kek("hot")
    assert reader.active_kek("hot").version == 1
    before = ks_path.stat()
    writer.rotate_kek("hot")
    # File times are coarse (a kernel tick): model two saves inside one tick.
    os.utime(ks_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert reader.active_kek("hot").version == 2
    assert reader.get("kek-hot", 1).state == KeyState.DECRYPT_ONLY


# -- master key ----------------------------------------------------------------


def test_master_key_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / "master.key"
    assert create_master_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    key = load_master_key(path)
    assert len(key) == 32
    assert not create_master_key(path)  # never overwritten
    assert load_master_key(path) == key


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_master_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    create_master_key(path)
    path.chmod(mode)
    with pytest.raises(ConfigError) as err:
        load_master_key(path)
    assert "0600" in str(err.value)
    assert path.read_text().strip() not in str(err.value)


def test_master_key_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="weightvault init"):
        load_master_key(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not base64!\n")
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match="base64"):
        load_master_key(bad)
    bad.write_text(base64.b64encode(b"short").decode())
    with pytest.raises(ConfigError, match="32 bytes"):
        load_master_key(bad)


def test_master_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, master_key: bytes
) -> None:
    ks_path = tmp_path / "keystore.sealed"
    LocalKeyStore(ks_path, master_key).active_kek("hot")
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(master_key).decode())
    # The variable wins over the file, which need not exist.
    assert load_master_key(tmp_path / "absent.key") == master_key
    file_key = tmp_path / "master.key"
    create_master_key(file_key)
    assert load_master_key(file_key) == master_key
    assert LocalKeyStore(ks_path, load_master_key(file_key)).active_kek("hot").version == 1
    for bad, needle in (("not base64!", "base64"), (base64.b64encode(b"x" * 16).decode(), "32")):
        monkeypatch.setenv(MASTER_KEY_ENV, bad)
        with pytest.raises(ConfigError, match=needle):
            load_master_key(file_key)


def test_cli_runs_on_the_master_key_from_the_environment(
    vault_settings: Settings, tmp_path: Path
) -> None:
    key_text = vault_settings.master_key_path.read_text().strip()
    moved = tmp_path / "master.key.moved"
    vault_settings.master_key_path.rename(moved)
    cli = [sys.executable, "-m", "weightvault.cli", "ls", "--json"]
    env = {**os.environ}
    without = subprocess.run(cli, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert without.returncode == ConfigError.exit_code, without.stderr
    env[MASTER_KEY_ENV] = key_text
    with_env = subprocess.run(cli, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert with_env.returncode == 0, with_env.stderr
    assert json.loads(with_env.stdout) == []
    assert key_text not in with_env.stdout + with_env.stderr + without.stderr


# -- processes -----------------------------------------------------------------

TIERS_RACED = [f"race{i}" for i in range(12)]


def test_concurrent_first_use_from_processes_creates_one_version(
    ks_path: Path, master_key: bytes
) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=race_active_kek,
            args=(str(ks_path), master_key, TIERS_RACED, barrier, out),
        )
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    assert results[0] == results[1] == results[2]
    assert [ref for ref, _ in results[0]] == [f"kek-{t}@v1" for t in TIERS_RACED]
    store = LocalKeyStore(ks_path, master_key)
    for tier in TIERS_RACED:
        versions = store.versions(f"kek-{tier}")
        assert [(v.version, v.state) for v in versions] == [(1, KeyState.ACTIVE)]
    assert len(store.records()) == len(TIERS_RACED)


# -- reprs ---------------------------------------------------------------------


def test_reprs_never_show_material(ks: LocalKeyStore, master_key: bytes) -> None:
    dek = os.urandom(32)
    wrapped = ks.wrap_dek("hot", ARTIFACT, dek)
    secret = ks.put_secret("token-x", "token", "random", os.urandom(24), meta={"who": "ci"})
    texts = [
        repr(wrapped),
        str(wrapped),
        repr(ks),
        repr(ks.records()),
        str(ks.records()),
        repr(secret),
        f"{secret}",
        json.dumps(secret.public_view()),
    ]
    hidden = [dek, wrapped.ciphertext, master_key, secret.material, ks.active_kek("hot").material]
    for text in texts:
        for material in hidden:
            for enc in encodings(material):
                assert enc.decode("latin-1") not in text, text
    assert "kek-hot" in repr(wrapped)
    assert "token-x" in repr(secret)


def test_errors_never_show_material(ks: LocalKeyStore) -> None:
    wrapped = ks.wrap_dek("hot", ARTIFACT, os.urandom(32))
    kek = ks.active_kek("hot")
    messages = []
    for bad in (replace(wrapped, artifact_id="wv-x-00000000"), replace(wrapped, tier="warm")):
        with pytest.raises(VaultError) as err:
            ks.unwrap_dek(bad)
        messages.append(str(err.value))
    for message in messages:
        for enc in encodings(kek.material) + encodings(wrapped.ciphertext):
            assert enc.decode("latin-1") not in message


# -- versions, wrap counts, expiry (issue 10) -----------------------------------------


def seal(path: Path, master_key: bytes, doc: dict[str, Any]) -> None:
    """Write a sealed keystore by hand (e.g. in an older format)."""
    nonce = os.urandom(12)
    body = AESGCM(master_key).encrypt(nonce, json.dumps(doc).encode(), b"weightvault keystore v1")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MAGIC + nonce + body)


def test_every_save_raises_the_sealed_version(ks: LocalKeyStore, master_key: bytes) -> None:
    assert ks.version == 0
    ks.active_kek("hot")
    ks.active_kek("warm")
    assert ks.version == 2
    doc = json.loads(unseal(ks.path, master_key))
    assert (doc["format"], doc["version"]) == (2, 2)
    ks.active_kek("hot")  # no change, no save
    assert ks.version == 2


def test_a_format_1_keystore_is_version_0_and_upgrades_on_its_next_save(
    ks: LocalKeyStore, master_key: bytes
) -> None:
    ks.active_kek("hot")
    old = json.loads(unseal(ks.path, master_key))
    for rec in old["keys"]:
        rec.pop("wraps")
    seal(ks.path, master_key, {"format": 1, "keys": old["keys"]})
    reopened = LocalKeyStore(ks.path, master_key)
    assert reopened.version == 0
    assert reopened.get("kek-hot", 1).wraps == 0
    reopened.wrap_dek("hot", ARTIFACT, os.urandom(32))
    assert reopened.version == 1
    assert reopened.get("kek-hot", 1).wraps == 1


def test_wraps_are_counted_and_capped(ks_path: Path, master_key: bytes) -> None:
    ks = LocalKeyStore(ks_path, master_key, max_wraps=3)
    for _ in range(3):
        ks.wrap_dek("hot", ARTIFACT, os.urandom(32))
    assert ks.get("kek-hot", 1).wraps == 3
    with pytest.raises(KeyUsageError, match="kek-hot@v1 has wrapped 3 keys") as refused:
        ks.wrap_dek("hot", ARTIFACT, os.urandom(32))
    assert refused.value.exit_code == 19
    assert "weightvault keys rotate --tier hot" in refused.value.message
    kek = ks.get("kek-hot", 1)
    with pytest.raises(KeyUsageError):
        ks.wrap_with(kek, "hot", ARTIFACT, os.urandom(32))
    with pytest.raises(KeyUsageError):
        ks.reserve_wraps(kek, 1)
    assert ks.get("kek-hot", 1).wraps == 3
    target, created = ks.begin_kek_rotation("hot", new_version=False)
    assert (target.version, created) == (2, True)  # an exhausted version is never resumed


def test_an_expired_kek_is_never_a_rotation_target(ks_path: Path, master_key: bytes) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    ks = LocalKeyStore(
        ks_path, master_key, lifetime=lambda _p, _t: timedelta(days=30), clock=lambda: now[0]
    )
    kek = ks.active_kek("hot")
    assert kek.expires_at == now[0] + timedelta(days=30)
    now[0] += timedelta(days=30)
    with pytest.raises(KeyUsageError, match="expired at 2026-01-31"):
        ks.wrap_dek("hot", ARTIFACT, os.urandom(32))
    target, created = ks.begin_kek_rotation("hot", new_version=False)
    assert (target.version, created) == (2, True)
    assert ks.wrap_dek("hot", ARTIFACT, os.urandom(32)).kek_version == 2
    assert LocalKeyStore(ks_path, master_key).get("kek-hot", 1).state == KeyState.DECRYPT_ONLY
