"""The signed trust root on the real store: init, rotation, refresh, caches and pins."""

from __future__ import annotations

import stat
from datetime import timedelta

import pytest

from weightvault.artifacts import Vault, log_keys, log_origin
from weightvault.errors import ConflictError, NoTrustRootError, TrustRootError
from weightvault.keys import KeyState
from weightvault.lifecycle import trust
from weightvault.lifecycle.compromise import compromise_key
from weightvault.lifecycle.rotation import publish_trust_root, rotate_signing
from weightvault.provenance import ROOT_KEY_PURPOSE, SIGNING_KEY_ID, parse_root, sign_root
from weightvault.store.layout import trust_root_key


def _stored(vault: Vault) -> list[str]:
    return sorted(o.key for o in vault.store.list(vault.bucket("audit"), "trust/root/"))


def test_init_publishes_version_one_once_with_keys_in_the_keystore(vault: Vault) -> None:
    assert trust.current_root(vault) is None
    with pytest.raises(NoTrustRootError, match="trust init"):
        trust.rotate_root(vault)
    change = trust.init_root(vault)
    root = change.root
    assert (root.version, root.threshold, len(root.root_keys)) == (1, 2, 3)
    assert _stored(vault) == [trust_root_key(1)]
    held = [r for r in vault.keys.records() if r.purpose == ROOT_KEY_PURPOSE]
    assert sorted(r.meta["keyid"] for r in held) == sorted(k.keyid for k in root.root_keys)
    stored = parse_root(vault.store.get_bytes(vault.bucket("audit"), trust_root_key(1)))
    assert stored.digest == root.digest
    assert [e.ref for e in stored.signing] == [f"{SIGNING_KEY_ID}@v1"]
    cached = trust.cache_path(vault.settings.home)
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    with pytest.raises(ConflictError, match="already has trust root v1"):
        trust.init_root(vault)


def test_a_signing_rotation_or_compromise_renews_the_root_with_key_states(vault: Vault) -> None:
    trust.init_root(vault)
    rotate_signing(vault)
    summary = publish_trust_root(vault)
    assert summary["signed_root"] == 2
    root = trust.current_root(vault)
    assert root is not None
    assert {e.ref: e.state for e in root.signing} == {
        f"{SIGNING_KEY_ID}@v1": "decrypt-only",
        f"{SIGNING_KEY_ID}@v2": "active",
    }
    before = vault.clock()
    compromise_key(vault, f"{SIGNING_KEY_ID}@v2", since=before - timedelta(hours=2))
    root = trust.current_root(vault)
    assert root is not None
    assert root.version == 3
    bad = next(e for e in root.signing if e.version == 2)
    assert bad.state == "compromised"
    assert bad.compromised_at is not None
    assert bad.compromised_at <= before - timedelta(hours=2) + timedelta(seconds=1)
    record = vault.keys.versions(SIGNING_KEY_ID)[1]
    assert record.state == KeyState.COMPROMISED
    assert "compromised_at" in record.meta
    assert trust.ensure_current_root(vault).version == 3


def test_a_version_is_written_once_and_a_racing_rotation_loses(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = trust.init_root(vault).root
    rotate_signing(vault)
    # A rival rotation publishes v2 after this one read v1 (the race window, made wide).
    rival = sign_root({**v1.signed, "version": 2}, trust.keystore_root_keys(vault))
    vault.store.put_bytes(
        vault.bucket("audit"), trust_root_key(2), rival.to_bytes(), if_none_match=True
    )
    monkeypatch.setattr(trust, "current_root", lambda _vault, check_expiry=True: v1)
    with pytest.raises(ConflictError, match="another rotation won"):
        trust.rotate_root(vault)
    monkeypatch.undo()
    stored = parse_root(vault.store.get_bytes(vault.bucket("audit"), trust_root_key(2)))
    assert stored.digest == rival.digest
    assert _stored(vault) == [trust_root_key(1), trust_root_key(2)]


def test_a_replaced_version_in_the_store_is_a_fork(vault: Vault) -> None:
    trust.init_root(vault)
    rotate_signing(vault)
    publish_trust_root(vault)
    good = trust.current_root(vault)
    assert good is not None
    # Someone with the root keys but not this host's cache replaces v2 in place.
    vault.store.remove(vault.bucket("audit"), trust_root_key(2))
    other = sign_root(
        {**good.signed, "expires": "2099-01-01T00:00:00+00:00"}, trust.keystore_root_keys(vault)
    )
    vault.store.put_bytes(vault.bucket("audit"), trust_root_key(2), other.to_bytes())
    with pytest.raises(TrustRootError, match="is not the pinned v2"):
        trust.current_root(vault)


def test_pins_refuse_rollback_and_expired_roots(vault: Vault) -> None:
    v1 = trust.init_root(vault).root
    rotate_signing(vault)
    publish_trust_root(vault)
    v2 = trust.current_root(vault)
    assert v2 is not None
    home = vault.settings.home
    assert trust.pin_root(home, v2, vault.clock()) is None
    with pytest.raises(TrustRootError, match="rollback refused"):
        trust.pin_root(home, v1, vault.clock())
    with pytest.raises(TrustRootError, match="has expired"):
        trust.pin_root(home, v2, v2.expires + timedelta(seconds=1))
    pinned = trust.read_pinned(home)
    assert pinned is not None
    assert pinned.digest == v2.digest


def test_the_root_lists_the_log_keys_and_registered_role_keys(vault: Vault) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from weightvault.crypto.notes import Ed25519NoteSigner

    v1 = trust.init_root(vault).root
    own = sorted(log_keys(vault.keys, log_origin(vault.settings)).vkeys.values())
    assert sorted(v1.log) == own  # the vault's own Ed25519 and ML-DSA-44 log keys
    signer = Ed25519NoteSigner("vault.example/log", ed25519.Ed25519PrivateKey.generate())
    vkey = signer.vkey
    trust.register_role_keys("log", lambda v: [vkey] if v is vault else [])
    try:
        root = trust.refresh_root(vault)
        assert root is not None
        assert root.version == 2
        assert sorted(root.log) == sorted([*own, vkey])
    finally:
        trust._ROLE_SOURCES["log"].clear()  # noqa: SLF001 - the registry is process-wide


def test_a_root_key_dropped_by_a_rotation_is_retired_and_signs_no_more(vault: Vault) -> None:
    v1 = trust.init_root(vault).root
    gone = v1.root_keys[0]
    change = trust.rotate_root(vault, remove_root_keys=[gone.key_id], add_root_keys=1)
    assert change.root.version == 2
    assert gone.keyid not in {k.keyid for k in change.root.root_keys}
    assert gone.keyid in change.signed_by  # as one of v1's keys, it signed v2
    record = next(r for r in vault.keys.records() if r.meta.get("keyid") == gone.keyid)
    assert record.state == KeyState.RETIRED
    assert gone.keyid not in {k.keyid for k in trust.keystore_root_keys(vault)}
    v3 = trust.rotate_root(vault).root
    assert gone.keyid not in {k for k, _ in v3.signatures}
