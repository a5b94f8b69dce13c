"""Identity files: a principal's hybrid key, 0600, optionally sealed under a passphrase."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from weightvault._json import canonical_json
from weightvault.errors import IdentityError
from weightvault.keys import (
    create_identity,
    default_identity,
    identity_path,
    list_identities,
    load_identity,
    parse_public_key,
    public_line,
    read_public,
)


def test_an_identity_is_a_0600_file_whose_key_matches_its_keyid(tmp_path: Path) -> None:
    made = create_identity("alice", directory=tmp_path / "ids")
    path = tmp_path / "ids" / "alice.key"
    assert made.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = load_identity(path)
    assert loaded.name == "alice"
    assert loaded.keyid == made.keyid == loaded.public_key().keyid
    assert not loaded.protected
    assert made.keyid not in repr(loaded)[40:]  # the repr shows a short keyid only
    with pytest.raises(IdentityError, match="already exists"):
        create_identity("alice", directory=tmp_path / "ids")


def test_a_protected_file_never_holds_the_raw_key_and_opens_only_with_its_passphrase(
    tmp_path: Path,
) -> None:
    made = create_identity("bob", directory=tmp_path, passphrase=b"correct horse")
    raw = load_identity(made.path, lambda _name: b"correct horse").key.private_bytes()
    data = made.path.read_bytes()
    assert raw not in data
    assert base64.b64encode(raw) not in data
    assert raw[6:38] not in data
    assert raw[38:] not in data
    assert read_public(made.path).protection == "scrypt+aes-256-gcm"
    with pytest.raises(IdentityError, match="wrong passphrase") as wrong:
        load_identity(made.path, lambda _name: b"wrong")
    assert wrong.value.exit_code == 41
    with pytest.raises(IdentityError, match="passphrase-protected"):
        load_identity(made.path, None)


def test_a_sealed_key_moved_into_another_identity_file_does_not_open(tmp_path: Path) -> None:
    one = create_identity("one", directory=tmp_path, passphrase=b"pw")
    two = create_identity("two", directory=tmp_path, passphrase=b"pw")
    doc_one = json.loads(one.path.read_bytes())
    doc_two = json.loads(two.path.read_bytes())
    doc_two["private_key"] = doc_one["private_key"]
    two.path.write_bytes(canonical_json(doc_two))
    with pytest.raises(IdentityError, match="wrong passphrase"):
        load_identity(two.path, lambda _name: b"pw")


def test_a_file_whose_private_key_is_not_the_key_it_names_is_refused(tmp_path: Path) -> None:
    one = create_identity("one", directory=tmp_path)
    two = create_identity("two", directory=tmp_path)
    doc = json.loads(one.path.read_bytes())
    doc["private_key"] = json.loads(two.path.read_bytes())["private_key"]
    one.path.write_bytes(canonical_json(doc))
    with pytest.raises(IdentityError, match="not the key it names"):
        load_identity(one.path)
    one.path.write_bytes(b'{"type": "something else"}')
    with pytest.raises(IdentityError, match="not a weightvault"):
        load_identity(one.path)


def test_names_are_checked_and_the_default_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad in ("", "Alice", "a/b", "../x", "x" * 64, "a b"):
        with pytest.raises(IdentityError):
            create_identity(bad, directory=tmp_path)
    monkeypatch.setenv("WEIGHTVAULT_IDENTITY", "carol")
    monkeypatch.setenv("WEIGHTVAULT_IDENTITY_DIR", str(tmp_path / "d"))
    assert default_identity() == "carol"
    assert identity_path("carol") == tmp_path / "d" / "carol.key"
    assert identity_path(str(tmp_path / "x.key")) == tmp_path / "x.key"
    create_identity("carol")
    assert [p.name for p in list_identities()] == ["carol"]


def test_the_exported_public_key_parses_in_both_forms_and_a_mismatch_is_refused(
    tmp_path: Path,
) -> None:
    made = create_identity("dave", directory=tmp_path)
    as_json = canonical_json(made.public_key.to_dict())
    assert parse_public_key(as_json, "f").keyid == made.keyid
    line = public_line("dave", made.public_key)
    assert parse_public_key(line.encode(), "f").keyid == made.keyid
    assert parse_public_key(made.path.read_bytes(), "f").keyid == made.keyid
    other = create_identity("erin", directory=tmp_path)
    name, _keyid, key = line.split("+", 2)
    with pytest.raises(IdentityError, match="does not match"):
        parse_public_key(f"{name}+{other.keyid}+{key}".encode(), "f")
    with pytest.raises(IdentityError):
        parse_public_key(b"not a key", "f")
