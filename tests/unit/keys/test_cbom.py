"""CycloneDX 1.6 CBOM of the key inventory: valid against the official schema, every key
present with its facts, no key bytes."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from weightvault.errors import InvalidInputError, UsageError
from weightvault.keys import KeyInventoryRow, build_cbom, cbom_json, render_inventory_table
from weightvault.keys._cbom import algorithm_ref, key_ref

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SERIAL = uuid.UUID("3e671687-395b-41f5-a30f-a58921a69b79")


def at(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


ROWS = [
    KeyInventoryRow("kek-hot", 1, "aes-256-gcm", "hot", at(2026, 1), at(2026, 1, 31), "retired",
                    "grover-safe", 120),
    KeyInventoryRow("kek-hot", 2, "AES-256-GCM", "hot", at(2026, 1, 31), at(2026, 3, 2), "active",
                    "grover-safe", 87),
    KeyInventoryRow("sign-cold", 3, "ed25519+ml-dsa-65", "cold", at(2026, 2), at(2026, 8, 2),
                    "active", "hybrid-required", 14),
    KeyInventoryRow("escrow-cold", 1, "ml-kem-768+x25519", "cold", at(2026, 1), at(2027, 1),
                    "active", "hybrid-required", 14),
    KeyInventoryRow("legacy-sign", 1, "ed25519", "warm", at(2025, 3), None, "verify-only",
                    "classical-allowed", 3),
    KeyInventoryRow("grant-hot", 4, "x25519", "hot", at(2026, 4), at(2026, 5), "compromised",
                    "classical-allowed", 0),
]  # fmt: skip


# The official CycloneDX 1.6 JSON schema, as cyclonedx-python-lib ships it (strict:
# no properties beyond the spec's).
VALIDATOR = JsonStrictValidator(SchemaVersion.V1_6)


def assert_valid(text: str) -> None:
    errors = VALIDATOR.validate_str(text, all_errors=True)
    assert errors is None, "\n".join(str(e) for e in errors)


def render(rows: list[KeyInventoryRow], now: datetime = NOW, **kw: Any) -> dict[str, Any]:
    """Build, serialize with the library's JSON outputter, validate, parse."""
    text = cbom_json(build_cbom(rows, now, **kw))
    assert_valid(text)
    doc: dict[str, Any] = json.loads(text)
    return doc


@pytest.fixture
def bom() -> dict[str, Any]:
    return render(ROWS, serial_number=SERIAL, tool_version="0.1.0")


def _is_utc(text: str) -> bool:
    return datetime.fromisoformat(text).utcoffset() == timedelta(0)


def _by_ref(bom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in bom["components"]}


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{path}[{i}]")]
    if isinstance(node, str):
        return [(path, node)]
    return []


def test_validates_against_the_official_cyclonedx_16_schema() -> None:
    bom = build_cbom(ROWS, NOW, serial_number=SERIAL, tool_version="0.1.0")
    assert isinstance(bom, Bom)
    text = cbom_json(bom)
    assert_valid(text)
    # The validator is not a rubber stamp: a state outside SP 800-57 is refused.
    broken = text.replace('"state": "compromised"', '"state": "exploded"')
    assert broken != text
    assert VALIDATOR.validate_str(broken) is not None


def test_top_level_fields(bom: dict[str, Any]) -> None:
    assert bom["$schema"] == "http://cyclonedx.org/schema/bom-1.6.schema.json"
    assert bom["bomFormat"] == "CycloneDX"
    assert bom["specVersion"] == "1.6"
    assert bom["serialNumber"] == "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"
    assert bom["version"] == 1
    assert datetime.fromisoformat(bom["metadata"]["timestamp"]) == NOW
    (tool,) = bom["metadata"]["tools"]["components"]
    assert tool == {"type": "application", "name": "weightvault", "version": "0.1.0"}


def test_every_key_row_is_present(bom: dict[str, Any]) -> None:
    components = _by_ref(bom)
    assert len(components) == len(bom["components"]), "bom-refs must be unique"
    keys = [
        c
        for c in bom["components"]
        if c["cryptoProperties"]["assetType"] == "related-crypto-material"
    ]
    assert len(keys) == len(ROWS)
    for row in ROWS:
        comp = components[key_ref(row.key_id, row.version)]
        assert comp["type"] == "cryptographic-asset"
        assert comp["name"] == row.key_id
        assert comp["version"] == str(row.version)
        related = comp["cryptoProperties"]["relatedCryptoMaterialProperties"]
        assert related["id"] == row.key_id
        assert _is_utc(related["creationDate"])
        assert datetime.fromisoformat(related["creationDate"]) == row.created
        if row.expires is None:
            assert "expirationDate" not in related
        else:
            assert _is_utc(related["expirationDate"])
            assert datetime.fromisoformat(related["expirationDate"]) == row.expires
        assert related["algorithmRef"] == algorithm_ref(row.algorithm)
        algorithm = components[related["algorithmRef"]]
        assert algorithm["cryptoProperties"]["assetType"] == "algorithm"
        props = {p["name"]: p["value"] for p in comp["properties"]}
        assert props == {
            "weightvault:tier": row.tier,
            "weightvault:state": row.state,
            "weightvault:quantum-status": row.quantum_status,
            "weightvault:artifacts-protected": str(row.artifacts_protected),
            "weightvault:wraps": str(row.wraps),
        }
    assert bom["metadata"]["properties"] == [{"name": "weightvault:key-count", "value": "6"}]


@pytest.mark.parametrize(
    ("key_id", "version", "material", "state", "size"),
    [
        ("kek-hot", 1, "secret-key", "deactivated", 256),
        ("kek-hot", 2, "secret-key", "active", 256),
        ("sign-cold", 3, "private-key", "active", 512),
        ("escrow-cold", 1, "private-key", "active", 256),
        ("legacy-sign", 1, "public-key", "deactivated", 256),
        ("grant-hot", 4, "private-key", "compromised", 256),
    ],
)
def test_key_material_type_state_and_size(
    bom: dict[str, Any], key_id: str, version: int, material: str, state: str, size: int
) -> None:
    related = _by_ref(bom)[key_ref(key_id, version)]["cryptoProperties"][
        "relatedCryptoMaterialProperties"
    ]
    assert (related["type"], related["state"], related["size"]) == (material, state, size)


@pytest.mark.parametrize(
    ("algorithm", "primitive", "parameter_set", "quantum_level", "functions"),
    [
        ("aes-256-gcm", "ae", "256", 5, {"encrypt", "decrypt"}),
        ("ed25519+ml-dsa-65", "signature", "Ed25519+ML-DSA-65", 3, {"sign", "verify"}),
        ("ml-dsa-65", "signature", "ML-DSA-65", 3, {"sign", "verify"}),
        ("ed25519", "signature", None, 0, {"sign", "verify"}),
        ("ml-kem-768+x25519", "kem", "ML-KEM-768+X25519", 3, {"encapsulate", "decapsulate"}),
        ("ml-kem-768", "kem", "ML-KEM-768", 3, {"encapsulate", "decapsulate"}),
        ("x25519", "key-agree", None, 0, {"keygen"}),
    ],
)
def test_algorithm_properties(
    bom: dict[str, Any],
    algorithm: str,
    primitive: str,
    parameter_set: str | None,
    quantum_level: int,
    functions: set[str],
) -> None:
    props = _by_ref(bom)[algorithm_ref(algorithm)]["cryptoProperties"]["algorithmProperties"]
    assert props["primitive"] == primitive
    assert props.get("parameterSetIdentifier") == parameter_set
    assert props["nistQuantumSecurityLevel"] == quantum_level
    assert props["executionEnvironment"] == "software-plain-ram"
    assert functions <= set(props["cryptoFunctions"])
    if algorithm == "aes-256-gcm":
        assert props["mode"] == "gcm"


@pytest.mark.parametrize(
    ("algorithm", "name", "oid"),
    [
        ("aes-256-gcm", "AES-256-GCM", "2.16.840.1.101.3.4.1.46"),
        ("ed25519", "Ed25519", "1.3.101.112"),
        ("ml-dsa-65", "ML-DSA-65", "2.16.840.1.101.3.4.3.18"),
        ("x25519", "X25519", "1.3.101.110"),
        ("ml-kem-768", "ML-KEM-768", "2.16.840.1.101.3.4.4.2"),
        ("hkdf-sha-256", "HKDF-SHA256", None),
        ("ed25519+ml-dsa-65", "Ed25519+ML-DSA-65", None),
        ("ml-kem-768+x25519", "HPKE ML-KEM-768+X25519 / HKDF-SHA256 / AES-256-GCM", None),
    ],
)
def test_algorithm_names_and_oids(
    bom: dict[str, Any], algorithm: str, name: str, oid: str | None
) -> None:
    comp = _by_ref(bom)[algorithm_ref(algorithm)]
    assert comp["type"] == "cryptographic-asset"
    assert comp["name"] == name
    assert comp["cryptoProperties"]["assetType"] == "algorithm"
    assert comp["cryptoProperties"].get("oid") == oid


@pytest.mark.parametrize(
    ("key_id", "version", "algorithm", "state", "created", "expires"),
    [
        ("kek-hot", 1, "aes-256-gcm", "deactivated", "2026-01-01", "2026-01-31"),
        ("kek-hot", 2, "aes-256-gcm", "active", "2026-01-31", "2026-03-02"),
        ("sign-cold", 3, "ed25519+ml-dsa-65", "active", "2026-02-01", "2026-08-02"),
        ("escrow-cold", 1, "ml-kem-768+x25519", "active", "2026-01-01", "2027-01-01"),
    ],
)
def test_key_families_facts(
    bom: dict[str, Any],
    key_id: str,
    version: int,
    algorithm: str,
    state: str,
    created: str,
    expires: str,
) -> None:
    """KEKs are AES-256, signing is hybrid Ed25519+ML-DSA-65, escrow is HPKE ML-KEM-768+X25519."""
    comp = _by_ref(bom)[key_ref(key_id, version)]
    related = comp["cryptoProperties"]["relatedCryptoMaterialProperties"]
    assert related["algorithmRef"] == algorithm_ref(algorithm)
    assert related["state"] == state
    assert related["creationDate"] == f"{created}T00:00:00+00:00"
    assert related["expirationDate"] == f"{expires}T00:00:00+00:00"
    assert "value" not in related


def test_hybrids_depend_on_their_parts(bom: dict[str, Any]) -> None:
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    refs = set(_by_ref(bom))
    assert deps[algorithm_ref("ed25519+ml-dsa-65")] == {
        algorithm_ref("ed25519"),
        algorithm_ref("ml-dsa-65"),
    }
    assert {algorithm_ref("ml-kem-768"), algorithm_ref("x25519")} <= deps[
        algorithm_ref("ml-kem-768+x25519")
    ]
    assert deps[key_ref("sign-cold", 3)] == {algorithm_ref("ed25519+ml-dsa-65")}
    for ref, targets in deps.items():
        assert ref in refs
        assert targets <= refs


def test_no_key_material(bom: dict[str, Any]) -> None:
    # A row has no field that could carry key bytes...
    fields = {f.name: f.type for f in dataclasses.fields(KeyInventoryRow)}
    assert set(fields) == {
        "key_id",
        "version",
        "algorithm",
        "tier",
        "created",
        "expires",
        "state",
        "quantum_status",
        "artifacts_protected",
        "wraps",
    }
    assert not any("bytes" in str(t) for t in fields.values())
    # ...the document never uses the CycloneDX "value" slot for key material...
    for comp in bom["components"]:
        related = comp["cryptoProperties"].get("relatedCryptoMaterialProperties", {})
        assert set(related) <= {
            "type",
            "id",
            "state",
            "algorithmRef",
            "creationDate",
            "expirationDate",
            "size",
        }
    # ...and no string looks like an encoded 128-bit-or-longer secret.
    for path, text in _strings(bom):
        if path == ".serialNumber":
            continue
        assert not re.search(r"[0-9a-fA-F]{32,}", text), path
        assert not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", text), path


def test_key_bytes_held_elsewhere_never_appear() -> None:
    secret = bytes(range(32))
    rows = [dataclasses.replace(ROWS[0], key_id="kek-" + secret[:4].hex())]
    text = cbom_json(build_cbom(rows, NOW))
    assert secret.hex() not in text
    assert secret[4:].hex() not in text


def test_deterministic_except_serial() -> None:
    a = cbom_json(build_cbom(ROWS, NOW, serial_number=SERIAL, tool_version="x"))
    b = cbom_json(build_cbom(list(reversed(ROWS)), NOW, serial_number=SERIAL, tool_version="x"))
    assert a == b
    c, d = render(ROWS), render(ROWS)
    assert c["serialNumber"] != d["serialNumber"]
    assert c["metadata"]["tools"]["components"][0]["version"]


def test_empty_inventory_is_a_valid_bom() -> None:
    bom = render([], serial_number=SERIAL)
    assert bom.get("components", []) == []
    assert bom.get("dependencies", []) == []
    assert bom["metadata"]["properties"] == [{"name": "weightvault:key-count", "value": "0"}]


def test_unknown_algorithm_is_listed_as_unknown() -> None:
    row = dataclasses.replace(ROWS[0], algorithm="Serpent-256-CBC")
    bom = render([row], serial_number=SERIAL)
    comp = _by_ref(bom)[algorithm_ref("serpent-256-cbc")]
    assert comp["cryptoProperties"]["algorithmProperties"]["primitive"] == "unknown"
    key = _by_ref(bom)[key_ref(row.key_id, row.version)]
    assert key["cryptoProperties"]["relatedCryptoMaterialProperties"]["type"] == "key"


def test_duplicate_row_refused() -> None:
    with pytest.raises(InvalidInputError, match="duplicate key inventory row kek-hot v1"):
        build_cbom([ROWS[0], dataclasses.replace(ROWS[0], state="active")], NOW)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"state": "exploded"}, InvalidInputError, "unknown state 'exploded'"),
        ({"key_id": " "}, InvalidInputError, "empty key id"),
        ({"version": -1}, InvalidInputError, "version"),
        ({"artifacts_protected": -3}, InvalidInputError, "artifacts_protected"),
        ({"created": datetime(2026, 1, 1)}, UsageError, "timezone-aware"),
        ({"expires": datetime(2026, 1, 1)}, UsageError, "timezone-aware"),
    ],
)
def test_bad_rows(change: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build_cbom([dataclasses.replace(ROWS[0], **change)], NOW)


def test_naive_now_refused() -> None:
    with pytest.raises(UsageError, match="timezone-aware"):
        build_cbom(ROWS, datetime(2026, 1, 1))


def test_timestamps_are_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    row = dataclasses.replace(ROWS[0], created=datetime(2026, 1, 1, 2, 0, tzinfo=plus2))
    bom = render([row], datetime(2026, 5, 1, 14, 0, tzinfo=plus2))
    assert datetime.fromisoformat(bom["metadata"]["timestamp"]) == NOW
    related = _by_ref(bom)[key_ref(row.key_id, row.version)]["cryptoProperties"][
        "relatedCryptoMaterialProperties"
    ]
    assert related["creationDate"] == "2026-01-01T00:00:00+00:00"


def test_render_inventory_table() -> None:
    table = render_inventory_table(ROWS)
    lines = table.splitlines()
    assert len(lines) == 2 + len(ROWS)
    header = lines[0]
    for column in ("KEY ID", "VER", "ALGORITHM", "TIER", "STATE", "EXPIRES", "QUANTUM"):
        assert column in header
    # Sorted by key id, then version; every row present.
    assert [line.split()[0] for line in lines[2:]] == [
        "escrow-cold",
        "grant-hot",
        "kek-hot",
        "kek-hot",
        "legacy-sign",
        "sign-cold",
    ]
    # Columns line up.
    start = header.index("ALGORITHM")
    for line in lines[2:]:
        assert line[start - 2 : start] == "  "
        assert line[start] != " "
    assert "ed25519+ml-dsa-65" in table
    assert "2026-01-31 00:00Z" in table
    legacy = next(line for line in lines if line.startswith("legacy-sign"))
    assert " - " in legacy  # no expiry
    assert render_inventory_table([]) == "no keys"


@pytest.mark.parametrize(
    ("vault_state", "nist_state"),
    [
        ("active", "active"),
        ("decrypt-only", "deactivated"),
        ("retired", "deactivated"),
        ("destroyed", "destroyed"),
        ("compromised", "compromised"),
    ],
)
def test_keystore_states_map_to_sp800_57(vault_state: str, nist_state: str) -> None:
    row = dataclasses.replace(ROWS[0], state=vault_state)
    bom = render([row], serial_number=SERIAL)
    related = _by_ref(bom)[key_ref(row.key_id, row.version)]["cryptoProperties"][
        "relatedCryptoMaterialProperties"
    ]
    assert related["state"] == nist_state
