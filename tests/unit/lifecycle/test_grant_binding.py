"""A grant's DEK is HPKE-sealed to the recipient's KEM key and bound to the grant id, the
artifact, its content digest, the granted files and the expiry: change any, it does not
open. Identities carry that KEM key (sealed with the signing key); old files still load."""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from weightvault._json import canonical_json
from weightvault.crypto import hpke
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import GrantScopeError, IdentityError, InvalidInputError
from weightvault.keys import (
    add_kem_key,
    create_identity,
    identity_path,
    load_identity,
    parse_public_key,
    parse_recipient,
    read_public,
)
from weightvault.keys._identity import identity_file
from weightvault.lifecycle.grants import dek_binding, open_dek, parse_ttl, seal_dek

BOUND = {
    "grant_id": "g-" + "ab" * 12,
    "artifact_id": "wv-20261202-0011223344556677",
    "content_digest": "sha256:" + "c" * 64,
    "paths": ("model.safetensors", "config.json"),
    "expires_at": "2026-12-02T01:45:00Z",
}


def _binding(**changed: object) -> bytes:
    values: dict[str, object] = {**BOUND, **changed}
    return dek_binding(
        str(values["grant_id"]),
        str(values["artifact_id"]),
        str(values["content_digest"]),
        list(values["paths"]),  # type: ignore[call-overload]
        str(values["expires_at"]),
    )


def test_the_sealed_dek_opens_only_under_its_own_binding_and_key() -> None:
    _, private, public = hpke.generate_keypair()
    dek = os.urandom(32)
    sealed = seal_dek(public, dek, _binding())
    assert open_dek(private, sealed, _binding()) == dek
    for changed in (
        {"grant_id": "g-" + "cd" * 12},
        {"artifact_id": "wv-20261202-ffffffffffffffff"},
        {"content_digest": "sha256:" + "d" * 64},
        {"paths": ("model.safetensors",)},
        {"paths": ("config.json", "model.safetensors")},
        {"expires_at": "2026-12-03T01:45:00Z"},
    ):
        with pytest.raises(GrantScopeError, match="does not open"):
            open_dek(private, sealed, _binding(**changed))
    _, other, _ = hpke.generate_keypair()
    with pytest.raises(GrantScopeError):
        open_dek(other, sealed, _binding())
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(GrantScopeError):
        open_dek(private, bytes(tampered), _binding())


def test_ttl_parsing() -> None:
    assert parse_ttl("15m") == timedelta(minutes=15)
    assert parse_ttl("30s") == timedelta(seconds=30)
    assert parse_ttl("7d") == timedelta(days=7)
    for bad in ("0s", "15", "8d", "-1m", "1w", "", "15 m"):
        with pytest.raises(InvalidInputError):
            parse_ttl(bad)


def test_a_new_identity_has_a_kem_key_and_exports_a_recipient(tmp_path: Path) -> None:
    made = create_identity("carol", directory=tmp_path)
    assert made.kem_public is not None
    loaded = load_identity(made.path)
    assert loaded.kem is not None
    assert loaded.kem.public_key() == made.kem_public
    recipient = parse_recipient(canonical_json(made.recipient()), "carol.pub")
    assert recipient.keyid == made.keyid
    assert recipient.kem_public == made.kem_public
    # The recipient form enrols too (its signing half).
    assert parse_public_key(canonical_json(made.recipient()), "carol").keyid == made.keyid
    secret = os.urandom(32)
    assert hpke.unwrap(loaded.kem, hpke.wrap(recipient.kem_public, secret, b"x"), b"x") == secret


def test_a_protected_identity_seals_its_kem_key_with_the_signing_key(tmp_path: Path) -> None:
    made = create_identity("dave", directory=tmp_path, passphrase=b"correct horse")
    raw = made.path.read_text()
    assert made.kem_public is not None
    loaded = load_identity(made.path, lambda _n: b"correct horse")
    assert loaded.kem is not None
    assert loaded.kem.public_key() == made.kem_public
    with pytest.raises(IdentityError, match="wrong passphrase"):
        load_identity(made.path, lambda _n: b"wrong")
    # Another KEM public key in the file: the sealed key no longer opens (the AAD binds it).
    doc = json.loads(raw)
    _, _, other = hpke.generate_keypair()
    doc["kem_public_key"] = base64.b64encode(other.to_bytes()).decode()
    made.path.write_bytes(canonical_json(doc))
    with pytest.raises(IdentityError, match="wrong passphrase"):
        load_identity(made.path, lambda _n: b"correct horse")


def test_a_plain_identity_whose_kem_seed_is_swapped_is_refused(tmp_path: Path) -> None:
    made = create_identity("erin", directory=tmp_path)
    doc = json.loads(made.path.read_text())
    raw = base64.b64decode(doc["private_key"])
    doc["private_key"] = base64.b64encode(raw[:-32] + os.urandom(32)).decode()
    made.path.write_bytes(canonical_json(doc))
    with pytest.raises(IdentityError, match="KEM private key is not the key it names"):
        load_identity(made.path)


def test_an_identity_file_from_before_grants_loads_but_cannot_receive(tmp_path: Path) -> None:
    key = HybridSigningKey.generate("frank", 1)
    path = identity_path("frank", tmp_path)
    path.write_bytes(identity_file(key, "frank"))
    loaded = load_identity(path)
    assert loaded.keyid == key.keyid
    assert loaded.kem is None
    public = read_public(path)
    assert public.kem_public is None
    with pytest.raises(IdentityError, match="cannot receive grants"):
        public.recipient()
    with pytest.raises(IdentityError, match="not a recipient key"):
        parse_recipient(canonical_json(public.public_key.to_dict()), "frank.pub")


def test_an_older_identity_gets_a_kem_key_keeping_its_signing_key(tmp_path: Path) -> None:
    key = HybridSigningKey.generate("gina", 1)
    path = identity_path("gina", tmp_path)
    path.write_bytes(identity_file(key, "gina", b"pass phrase"))
    with pytest.raises(IdentityError, match="wrong passphrase"):
        add_kem_key(path, lambda _n: b"nope")
    assert read_public(path).kem_public is None
    added = add_kem_key(path, lambda _n: b"pass phrase")
    assert added.kem_public is not None
    loaded = load_identity(path, lambda _n: b"pass phrase")
    assert loaded.keyid == key.keyid
    assert loaded.protected
    assert loaded.kem is not None
    assert loaded.kem.public_key() == added.kem_public
    with pytest.raises(IdentityError, match="has a KEM key already"):
        add_kem_key(path, lambda _n: b"pass phrase")
