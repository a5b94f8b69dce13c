"""DSSE envelopes with hybrid signatures, and the in-toto/SLSA statement they carry."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from weightvault._json import canonical_json
from weightvault.crypto.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    MAX_SIGNATURES,
    pae,
    sign_envelope,
    trust_map,
    verify_envelope,
)
from weightvault.crypto.signing import HybridSigningKey, HybridVerifyKey
from weightvault.errors import IntegrityError, InvalidInputError
from weightvault.provenance import parse_statement
from weightvault.provenance._intoto import (
    BUILD_TYPE,
    SLSA_PROVENANCE_V1,
    STATEMENT_TYPE,
    build_statement,
)

PAYLOAD = b'{"hello":"dsse"}'
SHA_A = "a" * 64
SHA_B = "b" * 64
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def key() -> HybridSigningKey:
    return HybridSigningKey.generate("attestation", 1)


@pytest.fixture(scope="module")
def other_key() -> HybridSigningKey:
    return HybridSigningKey.generate("attestation", 2)


@pytest.fixture(scope="module")
def trusted(key: HybridSigningKey) -> dict[str, HybridVerifyKey]:
    return trust_map([key.public_key()])


@pytest.fixture(scope="module")
def envelope(key: HybridSigningKey) -> dict[str, Any]:
    return sign_envelope(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, key)


def _sig_bytes(env: dict[str, Any], index: int = 0) -> bytes:
    return base64.b64decode(env["signatures"][index]["sig"])


def _with_sig(env: dict[str, Any], raw: bytes) -> dict[str, Any]:
    bad = copy.deepcopy(env)
    bad["signatures"][0]["sig"] = base64.b64encode(raw).decode()
    return bad


# --- PAE -------------------------------------------------------------------


def test_pae_matches_spec_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("", b"") == b"DSSEv1 0  0 "
    # Lengths are byte lengths of the UTF-8 type, not character counts.
    assert pae("t\u00e9", b"x") == b"DSSEv1 3 t\xc3\xa9 1 x"


def test_pae_matches_securesystemslib() -> None:
    dsse = pytest.importorskip("securesystemslib.dsse")
    env = dsse.Envelope(payload=PAYLOAD, payload_type=IN_TOTO_PAYLOAD_TYPE, signatures={})
    assert env.pae() == pae(IN_TOTO_PAYLOAD_TYPE, PAYLOAD)


# --- round trip --------------------------------------------------------------


def test_round_trip(envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey]) -> None:
    assert set(envelope) == {"payloadType", "payload", "signatures"}
    assert envelope["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert len(envelope["signatures"]) == 1
    assert set(envelope["signatures"][0]) == {"keyid", "sig"}
    on_disk = json.loads(json.dumps(envelope))
    assert verify_envelope(on_disk, trusted) == PAYLOAD


def test_securesystemslib_can_parse_envelope(envelope: dict[str, Any]) -> None:
    dsse = pytest.importorskip("securesystemslib.dsse")
    parsed = dsse.Envelope.from_dict(copy.deepcopy(envelope))
    assert parsed.payload == PAYLOAD
    assert parsed.payload_type == IN_TOTO_PAYLOAD_TYPE


def test_statement_round_trip(key: HybridSigningKey, trusted: dict[str, HybridVerifyKey]) -> None:
    statement = build_statement("model", SHA_A, _manifest(), _provenance())
    env = sign_envelope(canonical_json(statement), IN_TOTO_PAYLOAD_TYPE, key)
    assert parse_statement(verify_envelope(env, trusted)) == statement


def test_old_key_still_verifies_after_rotation(
    key: HybridSigningKey, other_key: HybridSigningKey, envelope: dict[str, Any]
) -> None:
    both = trust_map([key.public_key(), other_key.public_key()])
    assert verify_envelope(envelope, both) == PAYLOAD


# --- tampering ---------------------------------------------------------------


def test_unknown_key_fails(envelope: dict[str, Any], other_key: HybridSigningKey) -> None:
    with pytest.raises(IntegrityError):
        verify_envelope(envelope, {})
    with pytest.raises(IntegrityError):
        verify_envelope(envelope, trust_map([other_key.public_key()]))


def test_trust_map_pointing_at_wrong_key_fails(
    envelope: dict[str, Any], other_key: HybridSigningKey
) -> None:
    keyid = envelope["signatures"][0]["keyid"]
    with pytest.raises(IntegrityError):
        verify_envelope(envelope, {keyid: other_key.public_key()})


def test_every_payload_byte_matters(
    envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey]
) -> None:
    for index in range(len(PAYLOAD)):
        bad = copy.deepcopy(envelope)
        body = bytearray(PAYLOAD)
        body[index] ^= 0x01
        bad["payload"] = base64.b64encode(bytes(body)).decode()
        with pytest.raises(IntegrityError):
            verify_envelope(bad, trusted)


def test_missing_half_fails(envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey]) -> None:
    raw = _sig_bytes(envelope)
    header, ed_half, ml_half = raw[:6], raw[6:70], raw[70:]
    for bad in (header + ed_half, header + ml_half, ed_half, ml_half, raw[:-1], raw + b"\x00"):
        with pytest.raises(IntegrityError):
            verify_envelope(_with_sig(envelope, bad), trusted)


def test_replaced_half_fails(
    envelope: dict[str, Any], other_key: HybridSigningKey, trusted: dict[str, HybridVerifyKey]
) -> None:
    raw = _sig_bytes(envelope)
    foreign = _sig_bytes(sign_envelope(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, other_key))
    assert foreign[:6] == raw[:6]
    swapped_ed = raw[:6] + foreign[6:70] + raw[70:]
    swapped_ml = raw[:6] + raw[6:70] + foreign[70:]
    for bad in (swapped_ed, swapped_ml, foreign):
        with pytest.raises(IntegrityError):
            verify_envelope(_with_sig(envelope, bad), trusted)


def test_replaced_half_from_same_key_other_payload_fails(
    envelope: dict[str, Any], key: HybridSigningKey, trusted: dict[str, HybridVerifyKey]
) -> None:
    raw = _sig_bytes(envelope)
    other = _sig_bytes(sign_envelope(b"other", IN_TOTO_PAYLOAD_TYPE, key))
    for bad in (raw[:70] + other[70:], raw[:6] + other[6:70] + raw[70:]):
        with pytest.raises(IntegrityError):
            verify_envelope(_with_sig(envelope, bad), trusted)


def test_every_signature_byte_matters(
    envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey]
) -> None:
    raw = _sig_bytes(envelope)
    # Header, every Ed25519 byte, and a stride through the ML-DSA half (all of
    # its bytes are covered in test_signing).
    for index in [*range(70), *range(70, len(raw), 97), len(raw) - 1]:
        bad = bytearray(raw)
        bad[index] ^= 0x01
        with pytest.raises(IntegrityError):
            verify_envelope(_with_sig(envelope, bytes(bad)), trusted)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payload", "not base64!"),
        ("payload", "eyJoZWxsbyI6ImRzc2UifQ"),  # unpadded
        ("payload", "eyJoZWxsbyI6ImRzc2UifR=="),  # non-canonical trailing bits
        ("payload", 12),
        ("sig", "%%%"),
        ("sig", ""),
        ("sig", None),
    ],
)
def test_bad_base64_fails(
    envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey], field: str, value: object
) -> None:
    bad = copy.deepcopy(envelope)
    if field == "payload":
        bad["payload"] = value
    else:
        bad["signatures"][0]["sig"] = value
    with pytest.raises(IntegrityError):
        verify_envelope(bad, trusted)


def test_urlsafe_signature_refused(
    envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey]
) -> None:
    raw = _sig_bytes(envelope)
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    if urlsafe == envelope["signatures"][0]["sig"]:
        pytest.skip("signature has no + or / characters")
    bad = copy.deepcopy(envelope)
    bad["signatures"][0]["sig"] = urlsafe
    with pytest.raises(IntegrityError):
        verify_envelope(bad, trusted)


def test_wrong_payload_type_fails(
    key: HybridSigningKey, envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey]
) -> None:
    bad = copy.deepcopy(envelope)
    bad["payloadType"] = "application/json"
    with pytest.raises(IntegrityError):
        verify_envelope(bad, trusted)
    # Even when the verifier expects the new type, the signature binds the old one.
    with pytest.raises(IntegrityError):
        verify_envelope(bad, trusted, payload_type="application/json")
    # A correctly signed envelope of another type is refused where in-toto is expected.
    other = sign_envelope(PAYLOAD, "application/json", key)
    assert verify_envelope(other, trusted, payload_type="application/json") == PAYLOAD
    with pytest.raises(IntegrityError):
        verify_envelope(other, trusted)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("signatures"),
        lambda e: e.pop("payloadType"),
        lambda e: e.update(extra=1),
        lambda e: e.update(signatures=[]),
        lambda e: e.update(signatures={}),
        lambda e: e["signatures"].append(copy.deepcopy(e["signatures"][0])),
        lambda e: e["signatures"][0].update(alg="ed25519"),
        lambda e: e["signatures"][0].pop("keyid"),
        lambda e: e["signatures"][0].update(keyid=7),
        lambda e: e["signatures"].__setitem__(0, "sig"),
    ],
)
def test_malformed_envelope_fails(
    envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey], mutate: Any
) -> None:
    bad = copy.deepcopy(envelope)
    mutate(bad)
    with pytest.raises(IntegrityError):
        verify_envelope(bad, trusted)


def test_not_a_mapping_fails(trusted: dict[str, HybridVerifyKey]) -> None:
    with pytest.raises(IntegrityError):
        verify_envelope([], trusted)  # type: ignore[arg-type]


def test_too_many_signatures_fails(
    envelope: dict[str, Any], trusted: dict[str, HybridVerifyKey]
) -> None:
    bad = copy.deepcopy(envelope)
    bad["signatures"] = [
        {"keyid": f"{i:064x}", "sig": bad["signatures"][0]["sig"]}
        for i in range(MAX_SIGNATURES + 1)
    ]
    with pytest.raises(IntegrityError):
        verify_envelope(bad, trusted)


def test_extra_untrusted_signature_fails(
    envelope: dict[str, Any], other_key: HybridSigningKey, trusted: dict[str, HybridVerifyKey]
) -> None:
    cosigned = copy.deepcopy(envelope)
    cosigned["signatures"] += sign_envelope(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, other_key)["signatures"]
    with pytest.raises(IntegrityError):
        verify_envelope(cosigned, trusted)


def test_threshold_of_two_keys(
    envelope: dict[str, Any], key: HybridSigningKey, other_key: HybridSigningKey
) -> None:
    both = trust_map([key.public_key(), other_key.public_key()])
    cosigned = copy.deepcopy(envelope)
    cosigned["signatures"] += sign_envelope(PAYLOAD, IN_TOTO_PAYLOAD_TYPE, other_key)["signatures"]
    assert verify_envelope(cosigned, both, threshold=2) == PAYLOAD
    with pytest.raises(IntegrityError):
        verify_envelope(envelope, both, threshold=2)
    with pytest.raises(InvalidInputError):
        verify_envelope(envelope, both, threshold=0)


def test_sign_rejects_bad_inputs(key: HybridSigningKey) -> None:
    with pytest.raises(InvalidInputError):
        sign_envelope("text", IN_TOTO_PAYLOAD_TYPE, key)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        sign_envelope(PAYLOAD, "", key)


# --- in-toto statement -------------------------------------------------------


def _manifest() -> dict[str, Any]:
    return {
        "files": [
            {"path": "config.json", "size": 120, "sha256": SHA_B, "ciphertext_size": 200},
            {"path": "model.safetensors", "size": 10, "sha256": SHA_A, "ciphertext_size": 90},
        ]
    }


def _provenance(**changes: Any) -> dict[str, Any]:
    prov: dict[str, Any] = {
        "git": {"repository": "https://git.example/ml/model.git", "commit": COMMIT, "dirty": False},
        "datasets": [
            {"name": "data/train.csv", "sha256": SHA_B, "md5": "c" * 32},
            {"name": "data/eval.csv", "sha256": SHA_A, "uri": "s3://bucket/eval.csv"},
        ],
        "environment": {"python": "3.11.9", "platform": "linux-x86_64", "lock_sha256": SHA_A},
        "training_run_id": "run-42",
        "creator": "alice@example.org",
        "parent": {"name": "base-model", "sha256": SHA_B},
        "invocation_id": "ingest-7",
        "started_on": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "finished_on": "2025-01-02T05:04:05.250000+02:00",
    }
    prov.update(changes)
    return prov


def test_statement_structure() -> None:
    statement = build_statement("model", SHA_A, _manifest(), _provenance())
    assert statement["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "model", "digest": {"sha256": SHA_A}}]
    assert statement["predicateType"] == SLSA_PROVENANCE_V1 == "https://slsa.dev/provenance/v1"
    predicate = statement["predicate"]
    definition = predicate["buildDefinition"]
    assert definition["buildType"] == BUILD_TYPE
    assert BUILD_TYPE.startswith("https://weightvault")
    external = definition["externalParameters"]
    assert external["artifact"] == {"name": "model", "manifest": _manifest()}
    assert external["source"] == {
        "repository": "https://git.example/ml/model.git",
        "commit": COMMIT,
        "dirty": False,
    }
    assert external["trainingRunId"] == "run-42"
    assert external["creator"] == "alice@example.org"
    assert external["parent"] == {"name": "base-model", "digest": {"sha256": SHA_B}}
    assert definition["internalParameters"]["environment"]["python"] == "3.11.9"
    deps = definition["resolvedDependencies"]
    assert deps[0]["digest"] == {"gitCommit": COMMIT}
    assert deps[0]["uri"] == f"git+https://git.example/ml/model.git@{COMMIT}"
    assert deps[1] == {
        "name": "data/train.csv",
        "digest": {"sha256": SHA_B, "md5": "c" * 32},
        "annotations": {"kind": "dataset"},
    }
    assert deps[2]["uri"] == "s3://bucket/eval.csv"
    assert deps[3]["digest"] == {"sha256": SHA_B}
    run = predicate["runDetails"]
    assert run["builder"]["id"].startswith("https://weightvault")
    assert run["metadata"] == {
        "invocationId": "ingest-7",
        "startedOn": "2025-01-02T03:04:05Z",
        "finishedOn": "2025-01-02T03:04:05.250000Z",
    }
    assert parse_statement(canonical_json(statement)) == statement


def test_statement_does_not_alias_inputs() -> None:
    manifest = _manifest()
    statement = build_statement("model", SHA_A, manifest, _provenance())
    manifest["files"].clear()
    assert (
        len(
            statement["predicate"]["buildDefinition"]["externalParameters"]["artifact"]["manifest"][
                "files"
            ]
        )
        == 2
    )


def test_statement_minimal_provenance() -> None:
    prov = _provenance()
    for optional in ("datasets", "training_run_id", "creator", "parent"):
        del prov[optional]
    del prov["git"]["repository"]
    statement = build_statement("m", SHA_A, {}, prov)
    assert statement["predicate"]["buildDefinition"]["resolvedDependencies"] == [
        {
            "name": "source",
            "digest": {"gitCommit": COMMIT},
            "annotations": {"kind": "source", "dirty": False},
        }
    ]
    parse_statement(canonical_json(statement))


@pytest.mark.parametrize(
    ("args", "changes"),
    [
        (("model", "A" * 64), {}),
        (("model", "a" * 63), {}),
        (("", SHA_A), {}),
        (("model", SHA_A), {"git": {"commit": "xyz", "dirty": False}}),
        (("model", SHA_A), {"git": {"commit": COMMIT}}),
        (("model", SHA_A), {"git": {"commit": COMMIT, "dirty": "no"}}),
        (("model", SHA_A), {"enviroment": {}}),
        (("model", SHA_A), {"environment": None}),
        (("model", SHA_A), {"environment": {"x": float("nan")}}),
        (("model", SHA_A), {"environment": {1: "non-string key"}}),
        (("model", SHA_A), {"started_on": "yesterday"}),
        (("model", SHA_A), {"started_on": datetime(2025, 1, 1)}),
        (("model", SHA_A), {"finished_on": datetime(2024, 1, 1, tzinfo=UTC)}),
        (("model", SHA_A), {"datasets": [{"name": "d", "md5": "c" * 32}]}),
        (("model", SHA_A), {"datasets": [{"name": "d", "sha256": SHA_A, "size": 3}]}),
        (("model", SHA_A), {"datasets": "data.csv"}),
        (("model", SHA_A), {"parent": {"name": "p"}}),
        (("model", SHA_A), {"invocation_id": None}),
    ],
)
def test_build_statement_rejects_bad_input(args: tuple[str, str], changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as info:
        build_statement(*args, _manifest(), _provenance(**changes))
    assert "\n" not in str(info.value)


def test_timezones_are_normalised_to_utc() -> None:
    tz = timezone(timedelta(hours=-5))
    statement = build_statement(
        "m",
        SHA_A,
        {},
        _provenance(
            started_on=datetime(2025, 1, 1, 19, 0, tzinfo=tz),
            finished_on="2025-01-02T00:30:00Z",
        ),
    )
    meta = statement["predicate"]["runDetails"]["metadata"]
    assert meta["startedOn"] == "2025-01-02T00:00:00Z"
    assert meta["finishedOn"] == "2025-01-02T00:30:00Z"


def test_canonical_json() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, "é", None, True]})
        == '{"a":[1,"é",null,true],"b":1}'.encode()
    )
    assert canonical_json({"z": {"y": 1, "x": 2}}) == b'{"z":{"x":2,"y":1}}'
    for bad in ({"x": float("inf")}, {1: 2}, {"x": b"bytes"}, {"x": "\ud800"}, {"x": {1, 2}}):
        with pytest.raises(InvalidInputError):
            canonical_json(bad)


def _valid_statement() -> dict[str, Any]:
    return build_statement("model", SHA_A, _manifest(), _provenance())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"),
        lambda s: s.update(predicateType="https://slsa.dev/provenance/v0.2"),
        lambda s: s.update(subject=[]),
        lambda s: s.update(subject=[{"name": "m", "digest": {"sha1": "ab"}}]),
        lambda s: s.update(subject=[{"name": "m", "digest": {"sha256": "XYZ"}}]),
        lambda s: s.update(subject=[{"name": "m"}]),
        lambda s: s.pop("predicate"),
        lambda s: s["predicate"].pop("buildDefinition"),
        lambda s: s["predicate"].pop("runDetails"),
        lambda s: s["predicate"]["buildDefinition"].update(buildType="https://other/v1"),
        lambda s: s["predicate"]["buildDefinition"].update(externalParameters=[]),
        lambda s: s["predicate"]["buildDefinition"].update(resolvedDependencies={}),
        lambda s: s["predicate"]["buildDefinition"]["resolvedDependencies"].append({"name": "x"}),
        lambda s: s["predicate"]["runDetails"].update(builder={}),
        lambda s: s["predicate"]["runDetails"]["metadata"].update(startedOn="soon"),
        lambda s: s["predicate"]["runDetails"]["metadata"].update(invocationId=3),
    ],
)
def test_parse_statement_rejects_malformed(mutate: Any) -> None:
    statement = _valid_statement()
    mutate(statement)
    with pytest.raises(IntegrityError):
        parse_statement(json.dumps(statement).encode())


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"not json",
        b'{"_type": 1, "_type": 2}',
        b'{"x": NaN}',
    ],
)
def test_parse_statement_rejects_bad_bytes(payload: bytes) -> None:
    with pytest.raises(IntegrityError):
        parse_statement(payload)


def test_parse_statement_other_build_type_allowed_when_asked() -> None:
    statement = _valid_statement()
    statement["predicate"]["buildDefinition"]["buildType"] = "https://example.com/other/v1"
    payload = canonical_json(statement)
    with pytest.raises(IntegrityError):
        parse_statement(payload)
    assert parse_statement(payload, build_type=None) == statement
