"""The signed trust root: a TUF-style root of the vault's public keys.

A root document is canonical JSON (RFC 8785)::

    {"signed": {
        "type": "weightvault.root/v1",
        "vault": "<bucket prefix>",
        "version": 3,
        "expires": "2027-12-01T00:00:00+00:00",
        "threshold": 2,
        "root_keys": [<hybrid verify key>, ...],
        "signing": [{"key_id": "vault-signing", "version": 1, "keyid": "<hex>",
                     "state": "compromised", "compromised_at": "<iso>",
                     "public_key": <hybrid verify key> | null}, ...],
        "log": ["<note vkey>", ...],
        "witness": ["<note vkey>", ...],
        "operators": [{"type": "weightvault.principal/v1", "name": "alice",
                       "roles": ["approver", "reader"],
                       "public_key": <hybrid verify key>}, ...],
        "oms": [{"key_id": "vault-oms", "version": 1, "keyid": "<hex sha256 of the PEM>",
                 "algorithm": "ECDSA-P256", "state": "active", "compromised_at": null,
                 "public_key": "-----BEGIN PUBLIC KEY-----..."}, ...]},
     "signatures": [{"keyid": "<hex>", "sig": "<base64 hybrid signature>"}, ...]}

Root keys are hybrid Ed25519 + ML-DSA-65 keys (:mod:`weightvault.crypto.signing`);
each signs ``b"weightvault/v1/trust-root\\x00" || canonical_json(signed)``.

The rules (TUF's root rotation): a root is valid when ``threshold`` of *its own*
root keys signed it; version N+1 must also be signed by the threshold of
version N's root keys. A verifier walks from the root it pinned, one version at
a time, to the newest it is offered, and refuses: a version lower than the
pinned one (rollback), a missing version (skip), a different document at the
pinned version (fork), too few signatures by distinct keys (a key that signs
twice counts once; a key listed twice, or two keys sharing a half, is refused),
and an expired newest root. Signing keys carry their state: a statement by a
destroyed or unlisted key is refused, and one by a compromised key is refused
unless it is dated before the compromise.

``operators`` lists the vault's principals (issue 12): people and services, each
enrolled by name with its hybrid public key and its roles (:data:`ROLES`).
Every entry is typed (``weightvault.principal/v1``) so the list can grow other
entry types; a root made before principals existed lists none and parses as
before. An entry of an unknown type, a name or key listed twice, or an unknown
role is refused.

``oms`` lists the versions of the vault's ECDSA P-256 OpenSSF model signing key
(:mod:`weightvault.provenance._oms`) with their states, like ``signing``. It is
optional: a root made before the vault had that key has no ``oms`` field and
parses (and hashes) as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from weightvault._json import canonical_json, parse_canonical
from weightvault._time import iso, iso_seconds, parse_iso
from weightvault.config import ROLES
from weightvault.crypto.notes import verifier_from_vkey
from weightvault.crypto.signing import (
    ALGORITHM,
    HybridSignature,
    HybridSigningKey,
    HybridVerifyKey,
)
from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    KeyStateError,
    TrustRootError,
    VaultError,
)
from weightvault.keys import KeyProvider, KeyRecord, KeyState
from weightvault.provenance._oms import OmsEntry, parse_oms_entry

ROOT_TYPE: Final = "weightvault.root/v1"
ROOT_KEY_PURPOSE: Final = "trust-root"
ROOT_KEY_FILE_TYPE: Final = "weightvault.root-key/v1"
_CONTEXT: Final = b"weightvault/v1/trust-root\x00"
_SIGNED_FIELDS: Final = frozenset(
    {
        "type",
        "vault",
        "version",
        "expires",
        "threshold",
        "root_keys",
        "signing",
        "log",
        "witness",
        "operators",
    }
)
_OPTIONAL_FIELDS: Final = frozenset({"oms"})
_ENTRY_FIELDS: Final = frozenset(
    {"key_id", "version", "keyid", "state", "compromised_at", "public_key"}
)
_STATES: Final = frozenset(str(s) for s in KeyState)
PRINCIPAL_TYPE: Final = "weightvault.principal/v1"
_PRINCIPAL_FIELDS: Final = frozenset({"type", "name", "roles", "public_key"})
_MAX_PRINCIPALS: Final = 4096
_MAX_ROOT_KEYS: Final = 64
_MAX_SIGNATURES: Final = 64


@dataclass(frozen=True)
class SigningEntry:
    """One version of the vault's statement-signing key, as the root lists it."""

    key_id: str
    version: int
    keyid: str
    state: str
    compromised_at: datetime | None
    public_key: HybridVerifyKey | None

    @property
    def ref(self) -> str:
        """``key_id@vN``."""
        return f"{self.key_id}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """The entry as the root document holds it."""
        return {
            "key_id": self.key_id,
            "version": self.version,
            "keyid": self.keyid,
            "state": self.state,
            "compromised_at": iso(self.compromised_at) if self.compromised_at else None,
            "public_key": self.public_key.to_dict() if self.public_key else None,
        }


@dataclass(frozen=True)
class Principal:
    """One enrolled principal: its name, public key and roles."""

    name: str
    public_key: HybridVerifyKey
    roles: tuple[str, ...]

    @property
    def keyid(self) -> str:
        """Hex SHA-256 of the principal's canonical public key."""
        return self.public_key.keyid

    def to_dict(self) -> dict[str, Any]:
        """The entry as the root document holds it."""
        return {
            "type": PRINCIPAL_TYPE,
            "name": self.name,
            "roles": sorted(set(self.roles)),
            "public_key": self.public_key.to_dict(),
        }

    def summary(self) -> dict[str, Any]:
        """Public facts: name, keyid, roles."""
        return {"name": self.name, "keyid": self.keyid, "roles": sorted(set(self.roles))}


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """``roles`` sorted and deduplicated; InvalidInputError naming an unknown one."""
    out = sorted({r.strip() for r in roles if r.strip()})
    unknown = [r for r in out if r not in ROLES]
    if unknown:
        raise InvalidInputError(f"unknown role {unknown[0]!r}: the roles are {', '.join(ROLES)}")
    if not out:
        raise InvalidInputError(f"give at least one role of {', '.join(ROLES)}")
    return tuple(out)


def _principal(doc: Any, index: int) -> Principal:
    if not isinstance(doc, dict) or doc.get("type") != PRINCIPAL_TYPE:
        raise _fail(f"trust root operator entry {index} is not a {PRINCIPAL_TYPE} entry")
    if set(doc) != _PRINCIPAL_FIELDS or not isinstance(doc["name"], str):
        raise _fail(f"trust root principal entry {index} is malformed")
    roles = doc["roles"]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _fail(f"trust root principal {doc['name']!r:.70} has malformed roles")
    try:
        checked = check_roles(roles)
    except InvalidInputError as exc:
        raise _fail(f"trust root principal {doc['name']!r:.70}: {exc.message}") from None
    key = _verify_key(doc["public_key"], f"principal {doc['name']!r:.70}")
    return Principal(doc["name"], key, checked)


def _principals(raw: Any, version: int) -> tuple[Principal, ...]:
    if not isinstance(raw, list) or len(raw) > _MAX_PRINCIPALS:
        raise _fail("trust root operators are not a list")
    principals = tuple(_principal(e, i) for i, e in enumerate(raw))
    if len({p.name for p in principals}) != len(principals):
        raise _fail(f"trust root v{version} enrols one principal name twice")
    if len({p.keyid for p in principals}) != len(principals):
        raise _fail(f"trust root v{version} enrols one key under two names")
    return principals


class TrustedKeys(dict[str, HybridVerifyKey]):
    """keyid -> verify key (what DSSE verification takes), and each compromised key's time.

    :func:`check_signed_at` refuses a signature by a compromised key dated at
    or after its compromise; a plain mapping carries no states and refuses nothing.
    """

    def __init__(
        self,
        keys: Mapping[str, HybridVerifyKey] | None = None,
        compromised: Mapping[str, datetime] | None = None,
    ) -> None:
        super().__init__(keys or {})
        self.compromised: dict[str, datetime] = dict(compromised or {})


def check_signed_at(
    trusted: Mapping[str, HybridVerifyKey],
    envelope: Mapping[str, Any],
    when: datetime | None,
    what: str,
) -> None:
    """Refuse a verified DSSE envelope signed by a compromised key at or after its compromise.

    ``when`` is the time the log recorded the document where the caller knows
    it (statements, bundles' attestations), else the time the document claims
    (None: undated, refused for a compromised key). KeyStateError names the key
    and both times.
    """
    if not isinstance(trusted, TrustedKeys) or not trusted.compromised:
        return
    for entry in envelope.get("signatures", []):
        keyid = entry.get("keyid") if isinstance(entry, Mapping) else None
        since = trusted.compromised.get(keyid) if isinstance(keyid, str) else None
        if since is None or (when is not None and when < since):
            continue
        key = trusted[str(keyid)]
        dated = f"dated {iso(when)}" if when else "undated"
        raise KeyStateError(
            f"{what} signed by {key.key_id}@v{key.version} ({dated}), which the trust root "
            f"marks compromised since {iso(since)}"
        )


def _fail(message: str) -> TrustRootError:
    return TrustRootError(message)


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(f"trust root {what} is not an integer")
    return value


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(f"trust root {what} is not a list of strings")
    return tuple(value)


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise _fail(f"trust root {what} is not a timestamp")
    try:
        return parse_iso(value)
    except ValueError:
        raise _fail(f"trust root {what} is not an ISO 8601 timestamp") from None


def _verify_key(doc: Any, what: str) -> HybridVerifyKey:
    try:
        return HybridVerifyKey.from_dict(doc)
    except VaultError as exc:
        raise _fail(f"trust root {what}: {exc.message}") from None


def _check_vkeys(vkeys: tuple[str, ...], role: str) -> tuple[str, ...]:
    for vkey in vkeys:
        try:
            verifier_from_vkey(vkey)
        except VaultError as exc:
            raise _fail(f"trust root {role} key {vkey.split('+', 1)[0]!r}: {exc.message}") from None
    if len(set(vkeys)) != len(vkeys):
        raise _fail(f"trust root lists a {role} key twice")
    return vkeys


def _signing_entry(doc: Any, index: int) -> SigningEntry:
    if not isinstance(doc, dict) or set(doc) != _ENTRY_FIELDS:
        raise _fail(f"trust root signing entry {index} is malformed")
    state = doc["state"]
    if state not in _STATES:
        raise _fail(f"trust root signing entry {index} has an unknown state")
    public = doc["public_key"]
    key = None if public is None else _verify_key(public, f"signing entry {index}")
    if key is None and state != str(KeyState.DESTROYED):
        raise _fail(f"trust root signing entry {index} has no public key")
    if key is not None and (
        key.keyid != doc["keyid"]
        or key.key_id != doc["key_id"]
        or key.version != _int(doc["version"], "signing key version")
    ):
        raise _fail(f"trust root signing entry {index} does not match its public key")
    compromised = doc["compromised_at"]
    when = None if compromised is None else _time(compromised, f"signing entry {index} time")
    if (state == str(KeyState.COMPROMISED)) != (when is not None):
        raise _fail(
            f"trust root signing entry {index}: a compromise time goes with, and only with, "
            "the compromised state"
        )
    if not isinstance(doc["key_id"], str) or not isinstance(doc["keyid"], str):
        raise _fail(f"trust root signing entry {index} is malformed")
    return SigningEntry(
        doc["key_id"], _int(doc["version"], "signing key version"), doc["keyid"], state, when, key
    )


def _halves(key: HybridVerifyKey) -> tuple[bytes, bytes]:
    raw = key.public_bytes()
    return raw[6:38], raw[38:]


@dataclass(frozen=True)
class Root:
    """A parsed trust root (structure checked; signatures checked by the verify functions)."""

    signed: dict[str, Any]
    signatures: tuple[tuple[str, bytes], ...]
    version: int
    expires: datetime
    threshold: int
    root_keys: tuple[HybridVerifyKey, ...]
    signing: tuple[SigningEntry, ...]
    log: tuple[str, ...]
    witness: tuple[str, ...]
    operators: tuple[Any, ...]
    vault: str
    principals: tuple[Principal, ...] = ()
    oms: tuple[OmsEntry, ...] = ()

    @property
    def digest(self) -> str:
        """Hex SHA-256 of the canonical signed body: this version's identity."""
        return hashlib.sha256(canonical_json(self.signed)).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 over the sorted root key ids: who can sign the next version."""
        ids = ",".join(sorted(k.keyid for k in self.root_keys))
        return hashlib.sha256(ids.encode()).hexdigest()

    def document(self) -> dict[str, Any]:
        """The root as stored: signed body and signatures."""
        return {
            "signed": self.signed,
            "signatures": [
                {"keyid": k, "sig": base64.b64encode(s).decode("ascii")} for k, s in self.signatures
            ],
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON of :meth:`document`."""
        return canonical_json(self.document())

    def expired(self, now: datetime) -> bool:
        """Whether ``now`` is at or past the root's expiry."""
        return now >= self.expires

    def trusted(self) -> TrustedKeys:
        """keyid -> verify key of every signing key version that is not destroyed."""
        return TrustedKeys(
            {e.keyid: e.public_key for e in self.signing if e.public_key is not None},
            {e.keyid: e.compromised_at for e in self.signing if e.compromised_at is not None},
        )

    def signer(self, keyid: str, when: datetime | None) -> SigningEntry:
        """The signing key ``keyid``, if the root allows a signature by it dated ``when``.

        Refused (KeyStateError): a key the root does not list or marks destroyed,
        and a compromised key unless ``when`` is before its compromise time (an
        undated signature by a compromised key is refused).
        """
        entry = next((e for e in self.signing if e.keyid == keyid), None)
        if entry is None:
            raise KeyStateError(f"signed by a key trust root v{self.version} does not list")
        if entry.state == str(KeyState.DESTROYED) or entry.public_key is None:
            raise KeyStateError(
                f"signed by {entry.ref}, which trust root v{self.version} marks destroyed"
            )
        if entry.compromised_at is not None and (when is None or when >= entry.compromised_at):
            dated = f"dated {iso(when)}" if when else "undated"
            raise KeyStateError(
                f"signed by {entry.ref} ({dated}), which trust root v{self.version} marks "
                f"compromised since {iso(entry.compromised_at)}"
            )
        return entry

    def principal(self, keyid: str) -> Principal | None:
        """The principal enrolled with the key ``keyid``, if any."""
        return next((p for p in self.principals if p.keyid == keyid), None)

    def summary(self) -> dict[str, Any]:
        """Public facts only: version, expiry, thresholds, key ids and states."""
        return {
            "type": ROOT_TYPE,
            "vault": self.vault,
            "version": self.version,
            "expires": iso_seconds(self.expires),
            "digest": self.digest,
            "fingerprint": self.fingerprint,
            "threshold": self.threshold,
            "root_keys": [{"label": k.key_id, "keyid": k.keyid} for k in self.root_keys],
            "signatures": [k for k, _ in self.signatures],
            "signing": [
                {
                    "key": e.ref,
                    "keyid": e.keyid,
                    "state": e.state,
                    "compromised_at": iso(e.compromised_at) if e.compromised_at else None,
                }
                for e in self.signing
            ],
            "log": list(self.log),
            "witness": list(self.witness),
            "principals": [p.summary() for p in self.principals],
            "oms": [e.summary() for e in self.oms],
        }


def _root_keys(raw_keys: Any, version: int) -> tuple[HybridVerifyKey, ...]:
    if not isinstance(raw_keys, list) or not 1 <= len(raw_keys) <= _MAX_ROOT_KEYS:
        raise _fail(f"trust root v{version} must list 1 to {_MAX_ROOT_KEYS} root keys")
    root_keys = tuple(_verify_key(k, f"v{version} root key") for k in raw_keys)
    seen_ids: set[str] = set()
    seen_halves: set[bytes] = set()
    for key in root_keys:
        if key.keyid in seen_ids:
            raise _fail(
                f"trust root v{version} lists root key {key.keyid[:16]} twice: "
                "one key cannot count twice toward the threshold"
            )
        seen_ids.add(key.keyid)
        for half in _halves(key):
            if half in seen_halves:
                raise _fail(
                    f"trust root v{version} root key {key.keyid[:16]} shares a public key "
                    "with another root key: one key cannot count twice toward the threshold"
                )
            seen_halves.add(half)
    return root_keys


def _signatures(raw_sigs: Any) -> tuple[tuple[str, bytes], ...]:
    if not isinstance(raw_sigs, list) or len(raw_sigs) > _MAX_SIGNATURES:
        raise _fail(f"trust root signatures must be a list of at most {_MAX_SIGNATURES}")
    sigs = []
    for i, entry in enumerate(raw_sigs):
        if (
            not isinstance(entry, Mapping)
            or set(entry) != {"keyid", "sig"}
            or not isinstance(entry["keyid"], str)
            or not isinstance(entry["sig"], str)
        ):
            raise _fail(f"trust root signature {i} is malformed")
        try:
            raw = base64.b64decode(entry["sig"], validate=True)
        except (binascii.Error, ValueError):
            raise _fail(f"trust root signature {i} is not base64") from None
        sigs.append((entry["keyid"], raw))
    return tuple(sigs)


def _document(data: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(data, bytes | bytearray):
        try:
            return parse_canonical(bytes(data), "trust root")
        except IntegrityError as exc:
            raise _fail(exc.message) from None
    return data


def parse_root(data: bytes | Mapping[str, Any]) -> Root:
    """Parse a root document; TrustRootError when it is malformed (signatures not checked)."""
    doc = _document(data)
    if not isinstance(doc, Mapping) or set(doc) != {"signed", "signatures"}:
        raise _fail("trust root is not a weightvault.root/v1 document (signed, signatures)")
    signed = doc["signed"]
    if not isinstance(signed, dict) or not (
        _SIGNED_FIELDS <= set(signed) <= _SIGNED_FIELDS | _OPTIONAL_FIELDS
    ):
        raise _fail("trust root body has missing or unknown fields")
    if signed["type"] != ROOT_TYPE:
        raise _fail(f"trust root has type {signed['type']!r}, not {ROOT_TYPE!r}")
    version = _int(signed["version"], "version")
    if version < 1:
        raise _fail("trust root version must be at least 1")
    root_keys = _root_keys(signed["root_keys"], version)
    threshold = _int(signed["threshold"], "threshold")
    if not 1 <= threshold <= len(root_keys):
        raise _fail(
            f"trust root v{version} has threshold {threshold}: it must be between 1 and "
            f"its {len(root_keys)} root keys"
        )
    raw_signing = signed["signing"]
    if not isinstance(raw_signing, list):
        raise _fail("trust root signing keys are not a list")
    signing = tuple(_signing_entry(e, i) for i, e in enumerate(raw_signing))
    if len({e.keyid for e in signing}) != len(signing):
        raise _fail(f"trust root v{version} lists a signing key twice")
    operators = signed["operators"]
    if not isinstance(operators, list) or not isinstance(signed["vault"], str):
        raise _fail("trust root operators or vault name are malformed")
    principals = _principals(operators, version)
    oms = _oms_entries(signed.get("oms", []), version)
    return Root(
        signed=dict(signed),
        signatures=_signatures(doc["signatures"]),
        version=version,
        expires=_time(signed["expires"], "expiry"),
        threshold=threshold,
        root_keys=root_keys,
        signing=signing,
        log=_check_vkeys(_str_list(signed["log"], "log keys"), "log"),
        witness=_check_vkeys(_str_list(signed["witness"], "witness keys"), "witness"),
        operators=tuple(operators),
        vault=signed["vault"],
        principals=principals,
        oms=oms,
    )


def _oms_entries(raw: Any, version: int) -> tuple[OmsEntry, ...]:
    if not isinstance(raw, list) or len(raw) > _MAX_ROOT_KEYS:
        raise _fail("trust root OMS keys are not a list")
    try:
        entries = tuple(parse_oms_entry(e, i) for i, e in enumerate(raw))
    except ValueError as exc:
        raise _fail(f"trust root {exc}") from None
    if len({e.keyid for e in entries}) != len(entries):
        raise _fail(f"trust root v{version} lists an OMS key twice")
    return entries


def _message(signed: Mapping[str, Any]) -> bytes:
    return _CONTEXT + canonical_json(dict(signed))


def _count(root: Root, keys: Sequence[HybridVerifyKey]) -> tuple[int, list[str]]:
    """Distinct keys of ``keys`` with a valid signature on ``root``, and keys that signed twice."""
    message = _message(root.signed)
    by_id = {k.keyid: k for k in keys}
    good: set[str] = set()
    seen: set[str] = set()
    repeated: list[str] = []
    for keyid, raw in root.signatures:
        if keyid in seen:
            repeated.append(keyid)
            continue
        seen.add(keyid)
        key = by_id.get(keyid)
        if key is None:
            continue
        try:
            key.verify(message, HybridSignature.from_bytes(keyid, raw))
        except IntegrityError:
            continue
        good.add(keyid)
    return len(good), repeated


def _short(keyid: str) -> str:
    return keyid[:16]


def _require(root: Root, keys: Sequence[HybridVerifyKey], threshold: int, whose: str) -> None:
    count, repeated = _count(root, keys)
    if count >= threshold:
        return
    extra = ""
    if repeated:
        extra = f" (key {_short(repeated[0])} signed more than once and counts once)"
    raise _fail(
        f"trust root v{root.version} has valid signatures from {count} of {whose} root keys, "
        f"{threshold} required{extra}"
    )


def verify_root(root: Root) -> None:
    """Raise TrustRootError unless the threshold of the root's own keys signed it."""
    _require(root, root.root_keys, root.threshold, "its own")


def verify_successor(previous: Root, root: Root) -> None:
    """Raise TrustRootError unless ``root`` is a valid next version of ``previous``."""
    if root.version <= previous.version:
        raise _fail(
            f"trust root v{root.version} is not newer than v{previous.version}: rollback refused"
        )
    if root.version != previous.version + 1:
        raise _fail(
            f"trust root v{root.version} does not follow v{previous.version}: "
            f"version {previous.version + 1} is skipped"
        )
    _require(root, previous.root_keys, previous.threshold, f"v{previous.version}'s")
    verify_root(root)


def walk_chain(pinned: Root, chain: Iterable[Root], now: datetime | None) -> Root:
    """The newest root of ``chain`` reached from ``pinned`` one version at a time.

    ``pinned`` is trusted as given (the caller checked it: a file got out of
    band, or trust on first use). Raises TrustRootError on a rollback, a fork,
    a skipped version, a signature threshold not met or an expired newest root
    (``now`` None: expiry not checked, for renewing an expired root).
    """
    offered: dict[int, Root] = {}
    for root in chain:
        if root.version in offered and offered[root.version].digest != root.digest:
            raise _fail(f"two different trust roots of version {root.version} are offered")
        offered[root.version] = root
    newest = max(offered, default=pinned.version)
    if newest < pinned.version:
        raise _fail(
            f"the newest trust root offered is v{newest} but v{pinned.version} is pinned: "
            "rollback refused"
        )
    same = offered.get(pinned.version)
    if same is not None and same.digest != pinned.digest:
        raise _fail(
            f"the trust root v{pinned.version} offered is not the pinned v{pinned.version} "
            f"(fingerprint {_short(same.fingerprint)}, pinned {_short(pinned.fingerprint)}): "
            "another root, refused"
        )
    trusted = pinned
    for version in range(pinned.version + 1, newest + 1):
        nxt = offered.get(version)
        if nxt is None:
            raise _fail(
                f"the trust root chain skips version {version} (from v{trusted.version} to "
                f"v{newest}): each version must be signed by its predecessor's keys"
            )
        verify_successor(trusted, nxt)
        trusted = nxt
    if now is not None and trusted.expired(now):
        raise _fail(
            f"trust root v{trusted.version} expired at {iso_seconds(trusted.expires)}: "
            "its keys are no longer trusted; rotate the root"
        )
    return trusted


def build_root(
    *,
    version: int,
    expires: datetime,
    root_keys: Sequence[HybridVerifyKey],
    threshold: int,
    signing: Sequence[SigningEntry],
    log: Iterable[str] = (),
    witness: Iterable[str] = (),
    operators: Sequence[Any] = (),
    vault: str = "",
    oms: Sequence[OmsEntry] = (),
) -> dict[str, Any]:
    """The signed body of a root (sorted, canonical-ready); ``oms`` only when there are any."""
    body = {
        "type": ROOT_TYPE,
        "vault": vault,
        "version": version,
        "expires": iso_seconds(expires),
        "threshold": threshold,
        "root_keys": [k.to_dict() for k in sorted(root_keys, key=lambda k: k.keyid)],
        "signing": [e.to_dict() for e in sorted(signing, key=lambda e: (e.key_id, e.version))],
        "log": sorted(set(log)),
        "witness": sorted(set(witness)),
        "operators": list(operators),
    }
    if oms:
        body["oms"] = [e.to_dict() for e in sorted(oms, key=lambda e: (e.key_id, e.version))]
    return body


def sign_root(
    body: Mapping[str, Any],
    keys: Iterable[HybridSigningKey],
    existing: Sequence[tuple[str, bytes]] = (),
) -> Root:
    """Sign ``body`` with every key given (each once) and parse the result."""
    message = _message(body)
    sigs = dict(existing)
    for key in keys:
        if key.keyid not in sigs:
            sigs[key.keyid] = key.sign(message).to_bytes()
    doc = {
        "signed": dict(body),
        "signatures": [
            {"keyid": k, "sig": base64.b64encode(sigs[k]).decode("ascii")} for k in sorted(sigs)
        ],
    }
    return parse_root(doc)


def same_content(root: Root, body: Mapping[str, Any]) -> bool:
    """Whether ``body`` lists what ``root`` lists (ignoring version and expiry)."""
    skip = {"version", "expires"}
    return {k: v for k, v in root.signed.items() if k not in skip} == {
        k: v for k, v in body.items() if k not in skip
    }


# -- keys ---------------------------------------------------------------------------


def root_key_label(key: HybridSigningKey | HybridVerifyKey) -> str:
    """The keystore id of a root key: ``root-`` and the start of its fingerprint."""
    return f"root-{key.keyid[:12]}"


def generate_root_key() -> HybridSigningKey:
    """A new random hybrid root key, labelled by its fingerprint."""
    temp = HybridSigningKey.generate("root", 1)
    return HybridSigningKey.from_private_bytes(root_key_label(temp), 1, temp.private_bytes())


def root_key_from_record(record: KeyRecord) -> HybridSigningKey:
    """A root key held in the keystore."""
    return HybridSigningKey.from_private_bytes(record.key_id, 1, record.material)


def root_key_file(key: HybridSigningKey) -> bytes:
    """The offline-custody file of a root key (secret: written 0600, kept offline)."""
    return canonical_json(
        {
            "type": ROOT_KEY_FILE_TYPE,
            "label": key.key_id,
            "keyid": key.keyid,
            "algorithm": ALGORITHM,
            "private_key": base64.b64encode(key.private_bytes()).decode("ascii"),
        }
    )


def load_root_key_file(data: bytes, name: str) -> HybridSigningKey:
    """A root key from its custody file; InvalidInputError (never echoing the key) if bad."""
    try:
        doc = parse_canonical(data, f"root key file {name}")
    except IntegrityError:
        raise InvalidInputError(f"root key file {name} is not a weightvault root key") from None
    if doc.get("type") != ROOT_KEY_FILE_TYPE or not isinstance(doc.get("label"), str):
        raise InvalidInputError(f"root key file {name} is not a weightvault root key")
    try:
        raw = base64.b64decode(str(doc.get("private_key", "")), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"root key file {name} is malformed") from None
    key = HybridSigningKey.from_private_bytes(doc["label"], 1, raw)
    if key.keyid != doc.get("keyid"):
        raise InvalidInputError(f"root key file {name} does not match its key id")
    return key


def signing_entries(keys: KeyProvider, key_id: str) -> list[SigningEntry]:
    """Every version of the signing key ``key_id`` in the keystore, with its state."""
    out = []
    for record in keys.versions(key_id):
        state = str(record.state)
        if record.state == KeyState.DESTROYED or not record.material:
            out.append(
                SigningEntry(
                    record.key_id,
                    record.version,
                    record.meta.get("keyid") or f"destroyed-{record.ref}",
                    str(KeyState.DESTROYED),
                    None,
                    None,
                )
            )
            continue
        public = HybridSigningKey.from_private_bytes(
            record.key_id, record.version, record.material
        ).public_key()
        compromised = None
        if record.state == KeyState.COMPROMISED:
            # A compromise recorded before its time was kept: distrust the key from its start.
            text = record.meta.get("compromised_at")
            compromised = parse_iso(text) if text else record.created_at
        out.append(
            SigningEntry(record.key_id, record.version, public.keyid, state, compromised, public)
        )
    return out
