"""The signed trust root: parsing, thresholds, TUF's rotation rule, key states.

Table-driven (python-tuf style): each bad chain is built from real keys and
real signatures and refused with a message naming its problem.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from weightvault._json import canonical_json
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import InvalidInputError, KeyStateError, TrustRootError
from weightvault.provenance import (
    Root,
    SigningEntry,
    build_root,
    generate_root_key,
    load_root_key_file,
    parse_root,
    root_key_file,
    sign_root,
    verify_root,
    verify_successor,
    walk_chain,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SIGNER = HybridSigningKey.generate("vault-signing", 1)
SIGNER2 = HybridSigningKey.generate("vault-signing", 2)


def entry(
    key: HybridSigningKey, state: str = "active", compromised_at: datetime | None = None
) -> SigningEntry:
    public = key.public_key()
    return SigningEntry(key.key_id, key.version, public.keyid, state, compromised_at, public)


def body(
    version: int,
    keys: list[HybridSigningKey],
    threshold: int,
    *,
    expires: datetime = NOW + timedelta(days=30),
    signing: list[SigningEntry] | None = None,
) -> dict[str, Any]:
    return build_root(
        version=version,
        expires=expires,
        root_keys=[k.public_key() for k in keys],
        threshold=threshold,
        signing=signing if signing is not None else [entry(SIGNER)],
        vault="test",
    )


@pytest.fixture(scope="module")
def keys() -> list[HybridSigningKey]:
    return [generate_root_key() for _ in range(6)]


def test_a_root_signed_by_its_threshold_verifies_and_round_trips(
    keys: list[HybridSigningKey],
) -> None:
    root = sign_root(body(1, keys[:3], 2), keys[:2])
    verify_root(root)
    again = parse_root(root.to_bytes())
    assert again.digest == root.digest
    assert again.fingerprint == root.fingerprint
    assert len(again.signatures) == 2
    verify_root(again)
    assert walk_chain(again, [again], NOW).version == 1


def test_a_root_under_its_own_threshold_is_refused(keys: list[HybridSigningKey]) -> None:
    root = sign_root(body(1, keys[:3], 2), keys[:1])
    with pytest.raises(TrustRootError, match=r"1 of its own root keys, 2 required"):
        verify_root(root)


def test_a_changed_byte_in_the_body_breaks_every_signature(keys: list[HybridSigningKey]) -> None:
    root = sign_root(body(1, keys[:3], 2), keys[:3])
    doc = root.document()
    doc["signed"]["threshold"] = 1
    with pytest.raises(TrustRootError, match="0 of its own"):
        verify_root(parse_root(doc))


Chain = Callable[[list[HybridSigningKey]], tuple[Root, list[Root]]]


def _v1(keys: list[HybridSigningKey]) -> Root:
    return sign_root(body(1, keys[:3], 2), keys[:3])


def _fewer_than_threshold_old(keys: list[HybridSigningKey]) -> tuple[Root, list[Root]]:
    # v2 moves to new keys; only one of v1's three keys (threshold 2) signs it.
    v2 = sign_root(body(2, keys[3:6], 2), [keys[0], *keys[3:6]])
    return _v1(keys), [v2]


def _new_keys_under_own_threshold(keys: list[HybridSigningKey]) -> tuple[Root, list[Root]]:
    # v1's keys all sign, but only one of v2's own new keys does.
    v2 = sign_root(body(2, keys[3:6], 2), [*keys[:3], keys[3]])
    return _v1(keys), [v2]


def _rollback(keys: list[HybridSigningKey]) -> tuple[Root, list[Root]]:
    v1 = _v1(keys)
    v2 = sign_root(body(2, keys[:3], 2), keys[:3])
    return v2, [v1]


def _skipped(keys: list[HybridSigningKey]) -> tuple[Root, list[Root]]:
    v3 = sign_root(body(3, keys[:3], 2), keys[:3])
    return _v1(keys), [_v1(keys), v3]


def _expired(keys: list[HybridSigningKey]) -> tuple[Root, list[Root]]:
    v2 = sign_root(body(2, keys[:3], 2, expires=NOW - timedelta(seconds=1)), keys[:3])
    return _v1(keys), [v2]


def _counted_twice(keys: list[HybridSigningKey]) -> tuple[Root, list[Root]]:
    v2 = sign_root(body(2, keys[:3], 2), [keys[0]])
    doc = v2.document()
    doc["signatures"] = doc["signatures"] * 2  # the same key's signature, twice
    return _v1(keys), [parse_root(doc)]


def _fork(keys: list[HybridSigningKey]) -> tuple[Root, list[Root]]:
    other = sign_root(body(1, keys[3:6], 2), keys[3:6])
    v2 = sign_root(body(2, keys[3:6], 2), keys[3:6])
    return _v1(keys), [other, v2]


def _foreign_successor(keys: list[HybridSigningKey]) -> tuple[Root, list[Root]]:
    # An attacker's v2 signed only by keys the pinned root never listed.
    v2 = sign_root(body(2, keys[3:6], 2), keys[3:6])
    return _v1(keys), [_v1(keys), v2]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            _fewer_than_threshold_old,
            r"v2 has valid signatures from 1 of v1's root keys, 2 required",
        ),
        (_new_keys_under_own_threshold, r"v2 has valid signatures from 1 of its own root keys"),
        (_rollback, r"newest trust root offered is v1 but v2 is pinned: rollback refused"),
        (_skipped, r"skips version 2"),
        (_expired, r"trust root v2 expired at"),
        (_counted_twice, r"signed more than once and counts once"),
        (_fork, r"is not the pinned v1"),
        (_foreign_successor, r"0 of v1's root keys"),
    ],
    ids=[
        "fewer-than-threshold-old-keys",
        "new-keys-under-their-own-threshold",
        "rollback",
        "skipped-version",
        "expired",
        "one-key-counted-twice",
        "fork-at-the-pinned-version",
        "successor-by-foreign-keys",
    ],
)
def test_bad_root_chains_are_refused_naming_the_problem(
    keys: list[HybridSigningKey], build: Chain, message: str
) -> None:
    pinned, chain = build(keys)
    with pytest.raises(TrustRootError, match=message):
        walk_chain(pinned, chain, NOW)


def test_a_good_rotation_to_new_keys_walks_up(keys: list[HybridSigningKey]) -> None:
    v1 = _v1(keys)
    v2 = sign_root(body(2, keys[3:6], 2), [*keys[:2], *keys[3:5]])
    v3 = sign_root(body(3, keys[3:6], 3), keys[3:6])
    assert walk_chain(v1, [v1, v2, v3], NOW).version == 3
    # Only the newest root's expiry matters: an expired v2 on the way is fine.
    v2_old = sign_root(body(2, keys[3:6], 2, expires=NOW - timedelta(days=1)), keys[:6])
    v3b = sign_root(body(3, keys[3:6], 2), keys[3:6])
    assert walk_chain(v1, [v2_old, v3b], NOW).digest == v3b.digest


def test_successor_checks_refuse_a_skip_and_a_rollback(keys: list[HybridSigningKey]) -> None:
    v1 = _v1(keys)
    v3 = sign_root(body(3, keys[:3], 2), keys[:3])
    with pytest.raises(TrustRootError, match="version 2 is skipped"):
        verify_successor(v1, v3)
    with pytest.raises(TrustRootError, match="rollback refused"):
        verify_successor(v3, v1)


def _doc(root: Root) -> dict[str, Any]:
    return json.loads(root.to_bytes())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["signed"].update(threshold=0), "threshold 0: it must be between 1 and"),
        (lambda d: d["signed"].update(threshold=4), "threshold 4: it must be between 1 and"),
        (
            lambda d: d["signed"]["root_keys"].append(d["signed"]["root_keys"][0]),
            "twice: one key cannot count twice",
        ),
        (lambda d: d["signed"].update(version=0), "version must be at least 1"),
        (lambda d: d["signed"].update(type="weightvault.trust-root/v1"), "has type"),
        (lambda d: d["signed"].update(extra=1), "missing or unknown fields"),
        (lambda d: d["signed"].update(log=["not-a-vkey"]), "log key"),
        (lambda d: d.update(signatures=[{"keyid": "x", "sig": "%%"}]), "not base64"),
    ],
    ids=[
        "threshold-zero",
        "threshold-above-keys",
        "key-listed-twice",
        "version-zero",
        "unsigned-old-format",
        "unknown-field",
        "bad-log-vkey",
        "bad-signature-encoding",
    ],
)
def test_malformed_roots_are_refused(
    keys: list[HybridSigningKey], edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    doc = _doc(_v1(keys))
    edit(doc)
    with pytest.raises(TrustRootError, match=message):
        parse_root(canonical_json(doc))


def test_two_root_keys_sharing_a_half_count_once(keys: list[HybridSigningKey]) -> None:
    doc = _doc(_v1(keys))
    twin = dict(doc["signed"]["root_keys"][1])
    twin["public_keys"] = {
        "ed25519": doc["signed"]["root_keys"][0]["public_keys"]["ed25519"],
        "ml-dsa-65": twin["public_keys"]["ml-dsa-65"],
    }
    del twin["keyid"]
    doc["signed"]["root_keys"][1] = twin
    with pytest.raises(TrustRootError, match="shares a public key with another root key"):
        parse_root(canonical_json(doc))


def test_signing_key_states_decide_what_verifies(keys: list[HybridSigningKey]) -> None:
    compromised_at = NOW - timedelta(hours=1)
    root = sign_root(
        body(
            1,
            keys[:3],
            2,
            signing=[entry(SIGNER, "compromised", compromised_at), entry(SIGNER2)],
        ),
        keys[:3],
    )
    v1 = SIGNER.public_key().keyid
    assert root.signer(v1, compromised_at - timedelta(seconds=1)).version == 1
    with pytest.raises(KeyStateError, match="marks compromised since"):
        root.signer(v1, compromised_at)
    with pytest.raises(KeyStateError, match="undated"):
        root.signer(v1, None)
    assert root.signer(SIGNER2.public_key().keyid, NOW).version == 2
    with pytest.raises(KeyStateError, match="does not list"):
        root.signer(HybridSigningKey.generate("other", 1).keyid, NOW)
    assert set(root.trusted()) == {v1, SIGNER2.public_key().keyid}


def test_a_destroyed_signing_key_is_listed_but_never_trusted(keys: list[HybridSigningKey]) -> None:
    gone = SigningEntry("vault-signing", 1, SIGNER.keyid, "destroyed", None, None)
    root = sign_root(body(1, keys[:3], 2, signing=[gone, entry(SIGNER2)]), keys[:3])
    assert SIGNER.keyid not in root.trusted()
    with pytest.raises(KeyStateError, match="marks destroyed"):
        root.signer(SIGNER.keyid, NOW)


def test_a_compromise_time_without_the_state_is_refused(keys: list[HybridSigningKey]) -> None:
    doc = _doc(sign_root(body(1, keys[:3], 2), keys[:3]))
    doc["signed"]["signing"][0]["compromised_at"] = NOW.isoformat()
    with pytest.raises(TrustRootError, match="compromise time goes with"):
        parse_root(canonical_json(doc))


def test_root_key_files_round_trip_and_bad_ones_never_echo_the_key() -> None:
    key = generate_root_key()
    data = root_key_file(key)
    assert load_root_key_file(data, "k.json").keyid == key.keyid
    doc = json.loads(data)
    secret = doc["private_key"]
    doc["keyid"] = "0" * 64
    with pytest.raises(InvalidInputError, match="does not match its key id") as caught:
        load_root_key_file(canonical_json(doc), "k.json")
    assert secret not in str(caught.value)
    with pytest.raises(InvalidInputError, match="not a weightvault root key"):
        load_root_key_file(b"{}", "k.json")


def test_summary_and_document_hold_no_private_material(keys: list[HybridSigningKey]) -> None:
    root = sign_root(body(1, keys[:3], 2), keys[:3])
    text = json.dumps(root.summary()) + root.to_bytes().decode()
    for key in [*keys[:3], SIGNER]:
        private = key.private_bytes()
        assert base64.b64encode(private).decode() not in text
        assert base64.b64encode(private[6:38]).decode() not in text  # the Ed25519 seed
        assert private[6:38].hex() not in text
