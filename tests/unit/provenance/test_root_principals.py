"""Principals in the trust root (``operators``), and log entries signed by them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import InvalidInputError, TrustRootError
from weightvault.provenance import (
    ROLES,
    Principal,
    build_root,
    check_roles,
    generate_root_key,
    parse_root,
    sign_root,
)
from weightvault.records import Event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ROOT_KEY = generate_root_key()
ALICE = HybridSigningKey.generate("alice", 1)
BOB = HybridSigningKey.generate("bob", 1)


def principal(key: HybridSigningKey, name: str, *roles: str) -> Principal:
    return Principal(name, key.public_key(), tuple(roles or ("reader",)))


def root_with(operators: list[Any]) -> bytes:
    body = build_root(
        version=1,
        expires=NOW + timedelta(days=30),
        root_keys=[ROOT_KEY.public_key()],
        threshold=1,
        signing=[],
        operators=operators,
        vault="test",
    )
    return sign_root(body, [ROOT_KEY]).to_bytes()


def test_a_root_enrols_principals_by_name_key_and_roles() -> None:
    root = parse_root(
        root_with(
            [
                principal(ALICE, "alice", "approver", "reader").to_dict(),
                principal(BOB, "bob", "ingester").to_dict(),
            ]
        )
    )
    assert [p.name for p in root.principals] == ["alice", "bob"]
    found = root.principal(ALICE.keyid)
    assert found is not None
    assert found.name == "alice"
    assert found.roles == ("approver", "reader")
    assert root.principal(HybridSigningKey.generate("x", 1).keyid) is None
    assert root.summary()["principals"][1] == {
        "name": "bob",
        "keyid": BOB.keyid,
        "roles": ["ingester"],
    }
    assert "public_keys" not in json.dumps(root.summary())


def test_a_root_made_before_principals_still_parses_with_none() -> None:
    root = parse_root(root_with([]))
    assert root.principals == ()
    assert root.operators == ()


@pytest.mark.parametrize(
    ("operators", "message"),
    [
        ([{"name": "x"}], "not a weightvault.principal/v1 entry"),
        (["alice"], "not a weightvault.principal/v1 entry"),
        (
            [{**principal(ALICE, "alice").to_dict(), "extra": 1}],
            "malformed",
        ),
        (
            [{**principal(ALICE, "alice").to_dict(), "roles": ["root"]}],
            "unknown role 'root'",
        ),
        (
            [principal(ALICE, "alice").to_dict(), principal(BOB, "alice").to_dict()],
            "one principal name twice",
        ),
        (
            [principal(ALICE, "alice").to_dict(), principal(ALICE, "bob").to_dict()],
            "one key under two names",
        ),
    ],
)
def test_malformed_principal_entries_are_refused(operators: list[Any], message: str) -> None:
    with pytest.raises(TrustRootError, match=message):
        parse_root(root_with(operators))


def test_roles_are_the_documented_eight() -> None:
    assert ROLES == (
        "reader",
        "ingester",
        "validator",
        "promoter",
        "approver",
        "key-admin",
        "auditor",
        "incident-responder",
    )
    assert check_roles(["reader", " approver", "reader"]) == ("approver", "reader")
    with pytest.raises(InvalidInputError, match="unknown role 'admin'"):
        check_roles(["admin"])
    with pytest.raises(InvalidInputError, match="at least one role"):
        check_roles([""])


def _event(name: str | None, key: HybridSigningKey) -> Event:
    return Event.new(
        "artifact.read",
        phase="intent",
        op="op-1",
        principal={"name": name, "keyid": key.keyid},
        client={"pid": 1},
        artifact_id="a1",
        now=NOW,
    )


def test_an_entry_is_signed_for_one_log_and_any_edit_breaks_the_signature() -> None:
    event = _event("alice", ALICE)
    signed = event.with_signature(ALICE.sign(event.signed_message("origin-a")).to_bytes())
    assert signed.signature_valid("origin-a", ALICE.public_key())
    reparsed = Event.parse(signed.to_bytes())
    assert reparsed.keyid == ALICE.keyid
    assert reparsed.signature_valid("origin-a", ALICE.public_key())
    assert not signed.signature_valid("origin-b", ALICE.public_key())  # another log
    assert not signed.signature_valid("origin-a", BOB.public_key())  # another key
    doc = json.loads(signed.to_bytes())
    doc["artifact_id"] = "a2"
    edited = Event.parse(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    assert not edited.signature_valid("origin-a", ALICE.public_key())
    # Re-signed by another key but still claiming alice's keyid: not alice's signature.
    forged = event.with_signature(BOB.sign(event.signed_message("origin-a")).to_bytes())
    assert not forged.signature_valid("origin-a", ALICE.public_key())
    assert not _event("alice", ALICE).signature_valid("origin-a", ALICE.public_key())
