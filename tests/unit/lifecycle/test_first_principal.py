"""`weightvault init` makes the acting identity and enrols it, only while nobody is enrolled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from weightvault.artifacts import bootstrap_principals, enrolled, open_keystore
from weightvault.config import load_settings
from weightvault.keys import create_identity, identity_path, read_public
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.provenance import ROLES


def test_init_enrols_the_first_identity_with_every_role_and_no_later_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "home"))
    settings = load_settings(REPO / "config")
    report = init_vault(settings, start_store=False)
    assert "alice (present" in report["identity"]  # the session's alice, see conftest
    assert "enrolled as the first principal" in report["identity"]
    alice = read_public(identity_path("alice"))

    monkeypatch.setenv("WEIGHTVAULT_IDENTITY", "bob")
    create_identity("bob", passphrase=b"pw")  # an existing (protected) identity is kept
    again = init_vault(settings, start_store=False)
    assert again["identity"].startswith("bob (present")
    assert again["identity"].endswith("first principal: alice")
    assert read_public(identity_path("bob")).protection == "scrypt+aes-256-gcm"

    keys = open_keystore(settings, None)
    (first,) = bootstrap_principals(keys)
    assert first.name == "alice"
    assert first.keyid == alice.keyid
    assert first.roles == tuple(sorted(ROLES))
    assert enrolled(None, keys) == (first,)
