"""Cryptography bill of materials (CBOM) for the vault's keys, as CycloneDX 1.6.

:func:`build_cbom` turns the key inventory (one :class:`KeyInventoryRow` per
key version, as the catalog lists them) into a CycloneDX BOM, built with the
model classes of ``cyclonedx-python-lib`` (``cyclonedx.model.crypto``);
:func:`cbom_json` serializes it with the library's JSON outputter for spec 1.6.
The BOM holds:

- one ``cryptographic-asset`` component per algorithm in use
  (``assetType: algorithm``, with ``algorithmProperties``: primitive, parameter
  set, mode, execution environment, classical and NIST quantum security
  levels, crypto functions, and the OID where one is standardised); hybrid
  algorithms depend on their parts (``dependencies``);
- one ``cryptographic-asset`` component per key version
  (``assetType: related-crypto-material``, with
  ``relatedCryptoMaterialProperties``: type, id, NIST SP 800-57 state,
  creation and expiration dates, ``algorithmRef`` and size), plus vault
  properties (tier, vault state, quantum status, artifacts protected).

Only identifiers and metadata go in: a row has no field for key material, and
the document never carries ``value`` or any key bytes. The module is pure;
``now`` and the serial number are injectable. ``cyclonedx`` is imported when a
BOM is built, so importing :mod:`weightvault.keys` stays cheap.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING

from weightvault.errors import InvalidInputError, UsageError
from weightvault.keys._lifetimes import normalize_algorithm

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component

__all__ = [
    "CYCLONEDX_SPEC_VERSION",
    "KeyInventoryRow",
    "algorithm_ref",
    "build_cbom",
    "cbom_json",
    "key_ref",
    "render_inventory_table",
]

CYCLONEDX_SPEC_VERSION = "1.6"
PROPERTY_PREFIX = "weightvault"


@dataclass(frozen=True)
class KeyInventoryRow:
    """One key version in the inventory: identifiers and metadata, never key bytes.

    ``state`` is the vault's key state (``active``, ``retired``, ``destroyed``,
    ...), mapped to the NIST SP 800-57 states of CycloneDX; ``quantum_status``
    is a :class:`weightvault.keys._lifetimes.QuantumStatus` value; ``expires`` is
    ``None`` for a key without an expiry; ``artifacts_protected`` counts the
    artifact versions whose envelopes the key wraps or whose manifests it signs;
    ``wraps`` is how many DEKs a KEK version has wrapped (its AES-GCM nonce use,
    bounded by NIST SP 800-38D), 0 for other keys.
    """

    key_id: str
    version: int
    algorithm: str
    tier: str
    created: datetime
    expires: datetime | None
    state: str
    quantum_status: str
    artifacts_protected: int
    wraps: int = 0


@dataclass(frozen=True)
class _Algorithm:
    """What the CBOM says about one algorithm.

    The strings are CycloneDX enum values (``CryptoPrimitive``, ``CryptoMode``,
    ``CryptoFunction``, ``RelatedCryptoMaterialType``), turned into the
    library's enums when the BOM is built.
    """

    name: str
    primitive: str
    material: str
    size_bits: int | None = None
    parameter_set: str | None = None
    mode: str | None = None
    curve: str | None = None
    classical_level: int | None = None
    quantum_level: int | None = None
    functions: tuple[str, ...] = ()
    oid: str | None = None
    parts: tuple[str, ...] = ()


# Sizes are the bits of secret material the vault stores for one key: the raw
# key for AES and the X/Ed25519 curves (the P-256 OMS key: its 256-bit scalar, in
# PKCS#8), the FIPS 203/204 seed for ML-KEM
# (d || z, 64 bytes) and ML-DSA (xi, 32 bytes); a hybrid signing key stores
# both seeds (crypto/signing.py, 64 bytes), the hybrid HPKE KEM key one 32-byte
# seed (crypto/hpke_wrap.py). NIST quantum security categories: AES-256 defines category 5;
# ML-KEM-768 and ML-DSA-65 are category 3; classical curves are 0 (Shor). A
# hybrid holds as long as either part does, so it takes the stronger levels.
_CATALOGUE: dict[str, _Algorithm] = {
    "aes-256-gcm": _Algorithm(
        name="AES-256-GCM",
        primitive="ae",
        material="secret-key",
        size_bits=256,
        parameter_set="256",
        mode="gcm",
        classical_level=256,
        quantum_level=5,
        functions=("keygen", "encrypt", "decrypt", "tag"),
        oid="2.16.840.1.101.3.4.1.46",
    ),
    "hkdf-sha-256": _Algorithm(
        name="HKDF-SHA256",
        primitive="kdf",
        material="secret-key",
        parameter_set="256",
        functions=("keyderive",),
    ),
    "ed25519": _Algorithm(
        name="Ed25519",
        primitive="signature",
        material="private-key",
        size_bits=256,
        curve="Ed25519",
        classical_level=128,
        quantum_level=0,
        functions=("keygen", "sign", "verify"),
        oid="1.3.101.112",
    ),
    "ecdsa-p256": _Algorithm(
        name="ECDSA-P256",
        primitive="signature",
        material="private-key",
        size_bits=256,
        parameter_set="SHA-256",
        curve="P-256",
        classical_level=128,
        quantum_level=0,
        functions=("keygen", "sign", "verify"),
        oid="1.2.840.10045.4.3.2",
    ),
    "ml-dsa-65": _Algorithm(
        name="ML-DSA-65",
        primitive="signature",
        material="private-key",
        size_bits=256,
        parameter_set="ML-DSA-65",
        classical_level=192,
        quantum_level=3,
        functions=("keygen", "sign", "verify"),
        oid="2.16.840.1.101.3.4.3.18",
    ),
    "ed25519+ml-dsa-65": _Algorithm(
        name="Ed25519+ML-DSA-65",
        primitive="signature",
        material="private-key",
        size_bits=512,
        parameter_set="Ed25519+ML-DSA-65",
        classical_level=192,
        quantum_level=3,
        functions=("keygen", "sign", "verify"),
        parts=("ed25519", "ml-dsa-65"),
    ),
    "x25519": _Algorithm(
        name="X25519",
        primitive="key-agree",
        material="private-key",
        size_bits=256,
        curve="Curve25519",
        classical_level=128,
        quantum_level=0,
        functions=("keygen", "keyderive"),
        oid="1.3.101.110",
    ),
    "ml-kem-768": _Algorithm(
        name="ML-KEM-768",
        primitive="kem",
        material="private-key",
        size_bits=512,
        parameter_set="ML-KEM-768",
        classical_level=192,
        quantum_level=3,
        functions=("keygen", "encapsulate", "decapsulate"),
        oid="2.16.840.1.101.3.4.4.2",
    ),
    "ml-kem-768+x25519": _Algorithm(
        name="HPKE ML-KEM-768+X25519 / HKDF-SHA256 / AES-256-GCM",
        primitive="kem",
        material="private-key",
        size_bits=256,
        parameter_set="ML-KEM-768+X25519",
        classical_level=192,
        quantum_level=3,
        functions=("keygen", "encapsulate", "decapsulate"),
        parts=("ml-kem-768", "x25519", "hkdf-sha-256", "aes-256-gcm"),
    ),
}

# Vault key states -> NIST SP 800-57 states (``RelatedCryptoMaterialState`` values).
_STATES = {
    "pre-activation": "pre-activation",
    "pending": "pre-activation",
    "staged": "pre-activation",
    "active": "active",
    "primary": "active",
    "suspended": "suspended",
    "deactivated": "deactivated",
    "retired": "deactivated",
    "rotated": "deactivated",
    "inactive": "deactivated",
    "decrypt-only": "deactivated",
    "verify-only": "deactivated",
    "revoked": "deactivated",
    "expired": "deactivated",
    "compromised": "compromised",
    "destroyed": "destroyed",
}


def algorithm_ref(algorithm: str) -> str:
    """The ``bom-ref`` of an algorithm component."""
    return f"crypto/algorithm/{normalize_algorithm(algorithm)}"


def key_ref(key_id: str, version: int) -> str:
    """The ``bom-ref`` of a key-version component."""
    return f"crypto/key/{key_id}@{version}"


def _utc(when: datetime, what: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise UsageError(f"{what} must be timezone-aware, got naive {when.isoformat()}")
    return when.astimezone(UTC)


def _timestamp(when: datetime, what: str) -> str:
    return _utc(when, what).isoformat().replace("+00:00", "Z")


def _info(algorithm: str) -> _Algorithm:
    canonical = normalize_algorithm(algorithm)
    return _CATALOGUE.get(
        canonical, _Algorithm(name=algorithm, primitive="unknown", material="key")
    )


def _algorithm_component(canonical: str) -> Component:
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.crypto import (
        AlgorithmProperties,
        CryptoAssetType,
        CryptoExecutionEnvironment,
        CryptoFunction,
        CryptoImplementationPlatform,
        CryptoMode,
        CryptoPrimitive,
        CryptoProperties,
    )

    info = _info(canonical)
    known = info.primitive != "unknown"
    props = AlgorithmProperties(
        primitive=CryptoPrimitive(info.primitive),
        parameter_set_identifier=info.parameter_set,
        curve=info.curve,
        mode=CryptoMode(info.mode) if info.mode is not None else None,
        execution_environment=CryptoExecutionEnvironment.SOFTWARE_PLAIN_RAM if known else None,
        implementation_platform=CryptoImplementationPlatform.GENERIC if known else None,
        classical_security_level=info.classical_level,
        nist_quantum_security_level=info.quantum_level,
        crypto_functions=[CryptoFunction(f) for f in info.functions or ("unknown",)],
    )
    return Component(
        type=ComponentType.CRYPTOGRAPHIC_ASSET,
        bom_ref=algorithm_ref(canonical),
        name=info.name,
        crypto_properties=CryptoProperties(
            asset_type=CryptoAssetType.ALGORITHM, algorithm_properties=props, oid=info.oid
        ),
    )


def _check_row(row: KeyInventoryRow) -> None:
    if not isinstance(row.key_id, str) or not row.key_id.strip():
        raise InvalidInputError(f"key inventory row has an empty key id: {row.key_id!r}")
    if isinstance(row.version, bool) or not isinstance(row.version, int) or row.version < 0:
        raise InvalidInputError(f"key {row.key_id}: version must be an integer >= 0")
    if not row.algorithm.strip():
        raise InvalidInputError(f"key {row.key_id} v{row.version}: empty algorithm")
    if row.state not in _STATES:
        raise InvalidInputError(
            f"key {row.key_id} v{row.version}: unknown state {row.state!r} "
            f"(known: {', '.join(sorted(_STATES))})"
        )
    if row.artifacts_protected < 0:
        raise InvalidInputError(f"key {row.key_id} v{row.version}: artifacts_protected < 0")


def _key_component(row: KeyInventoryRow, algorithm: Component) -> Component:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.crypto import (
        CryptoAssetType,
        CryptoProperties,
        RelatedCryptoMaterialProperties,
        RelatedCryptoMaterialState,
        RelatedCryptoMaterialType,
    )

    info = _info(row.algorithm)
    material = info.material
    if row.state == "verify-only" and material == "private-key":
        material = "public-key"  # the private half is gone; the public key still verifies
    related = RelatedCryptoMaterialProperties(
        type=RelatedCryptoMaterialType(material),
        id=row.key_id,
        state=RelatedCryptoMaterialState(_STATES[row.state]),
        algorithm_ref=algorithm.bom_ref,
        creation_date=_utc(row.created, f"key {row.key_id} created"),
        expiration_date=(
            _utc(row.expires, f"key {row.key_id} expires") if row.expires is not None else None
        ),
        size=info.size_bits,
    )
    return Component(
        type=ComponentType.CRYPTOGRAPHIC_ASSET,
        bom_ref=key_ref(row.key_id, row.version),
        name=row.key_id,
        version=str(row.version),
        description=f"{row.tier} tier {normalize_algorithm(row.algorithm)} key, "
        f"version {row.version}",
        crypto_properties=CryptoProperties(
            asset_type=CryptoAssetType.RELATED_CRYPTO_MATERIAL,
            related_crypto_material_properties=related,
        ),
        properties=[
            Property(name=f"{PROPERTY_PREFIX}:tier", value=row.tier),
            Property(name=f"{PROPERTY_PREFIX}:state", value=row.state),
            Property(name=f"{PROPERTY_PREFIX}:quantum-status", value=row.quantum_status),
            Property(
                name=f"{PROPERTY_PREFIX}:artifacts-protected", value=str(row.artifacts_protected)
            ),
            Property(name=f"{PROPERTY_PREFIX}:wraps", value=str(row.wraps)),
        ],
    )


def _tool_version() -> str:
    try:
        return metadata.version("weightvault")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_cbom(
    rows: Iterable[KeyInventoryRow],
    now: datetime,
    *,
    serial_number: uuid.UUID | None = None,
    tool_version: str | None = None,
) -> Bom:
    """Build a CycloneDX CBOM (a ``cyclonedx.model.bom.Bom``) for the key inventory ``rows``.

    ``now`` is the BOM's metadata timestamp; ``serial_number`` defaults to a
    fresh random UUID (every BOM gets its own, as the spec asks). The library
    keeps components and dependencies sorted, so two BOMs of the same inventory
    serialize alike but for serial number and timestamp. Raises
    :class:`InvalidInputError` for a malformed or duplicate row and
    :class:`UsageError` for a naive datetime. Serialize with :func:`cbom_json`.
    """
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType

    ordered = sorted(rows, key=lambda r: (r.key_id, r.version))
    timestamp = _utc(now, "now")
    seen: set[tuple[str, int]] = set()
    algorithms: set[str] = set()
    for row in ordered:
        _check_row(row)
        if (row.key_id, row.version) in seen:
            raise InvalidInputError(f"duplicate key inventory row {row.key_id} v{row.version}")
        seen.add((row.key_id, row.version))
        pending = [normalize_algorithm(row.algorithm)]
        while pending:
            canonical = pending.pop()
            if canonical not in algorithms:
                algorithms.add(canonical)
                pending.extend(_info(canonical).parts)

    bom = Bom(
        serial_number=serial_number if serial_number is not None else uuid.uuid4(),
        metadata=BomMetaData(
            timestamp=timestamp,
            properties=[Property(name=f"{PROPERTY_PREFIX}:key-count", value=str(len(ordered)))],
        ),
    )
    bom.metadata.tools.components.add(
        Component(
            type=ComponentType.APPLICATION,
            name="weightvault",
            version=tool_version or _tool_version(),
        )
    )
    by_name = {a: _algorithm_component(a) for a in sorted(algorithms)}
    for canonical, component in by_name.items():
        bom.components.add(component)
        parts = _info(canonical).parts
        if parts:
            bom.register_dependency(component, [by_name[p] for p in parts])
    for row in ordered:
        algorithm = by_name[normalize_algorithm(row.algorithm)]
        key = _key_component(row, algorithm)
        bom.components.add(key)
        bom.register_dependency(key, [algorithm])
    return bom


def cbom_json(bom: Bom, *, indent: int | None = 2) -> str:
    """Serialize ``bom`` as CycloneDX 1.6 JSON with the library's JSON outputter."""
    from cyclonedx.output.json import JsonV1Dot6

    return JsonV1Dot6(bom).output_as_string(indent=indent)


_COLUMNS = (
    "KEY ID",
    "VER",
    "ALGORITHM",
    "TIER",
    "STATE",
    "CREATED",
    "EXPIRES",
    "QUANTUM",
    "ARTIFACTS",
    "WRAPS",
)


def _short_time(when: datetime | None) -> str:
    if when is None:
        return "-"
    return _timestamp(when, "time")[:16].replace("T", " ") + "Z"


def render_inventory_table(rows: Sequence[KeyInventoryRow] | Iterable[KeyInventoryRow]) -> str:
    """Render the key inventory as a fixed-width text table (no key material)."""
    ordered = sorted(rows, key=lambda r: (r.key_id, r.version))
    if not ordered:
        return "no keys"
    body = [
        (
            r.key_id,
            str(r.version),
            normalize_algorithm(r.algorithm),
            r.tier,
            r.state,
            _short_time(r.created),
            _short_time(r.expires),
            r.quantum_status,
            str(r.artifacts_protected),
            str(r.wraps),
        )
        for r in ordered
    ]
    widths = [max(len(c[i]) for c in (_COLUMNS, *body)) for i in range(len(_COLUMNS))]
    right = {1, 8, 9}  # numeric columns

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(_COLUMNS), line(["-" * w for w in widths]), *map(line, body)])
