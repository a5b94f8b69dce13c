"""OpenSSF model signing (OMS) signatures over an artifact's files.

The signature is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``)
whose DSSE envelope carries the ``model_signing`` in-toto statement
(``https://model_signing/signature/v1.0``): one resource per file, its path
relative to the model directory and its sha256, serialization ``files`` with
sha256. It is built with the ``model-signing`` library's own manifest, payload
and signer interfaces from the digests the upload already computed (no file is
read again).

It is signed by the vault's dedicated OMS key (:data:`OMS_KEY_ID`), an ECDSA
P-256 key, with ``model_signing``'s own elliptic-curve signer
(``model_signing._signing.sign_ec_key.Signer``): the stock ``model_signing
verify key`` command verifies it with the PEM ``trust show --signing-key-pem``
prints. Its key id is the hex sha256 of that PEM, the ``hint`` the bundle
names. ECDSA P-256 is classical (no post-quantum half): the hybrid DSSE
statement stays the vault's own stronger check.

A vault whose trust root lists no OMS key (made before it existed, until
``trust rotate`` adds one) signs with the Ed25519 half of its hybrid signing key
instead, as every artifact stored before did. ``model_signing`` 1.1's ``key``
verifier takes only ECDSA P-256/384/521 keys, so those signatures are checked
by :class:`Ed25519Verifier`, a verifier on the library's own
``sigstore_pb.Verifier`` interface.

The files ``model_signing`` skips by default (``.git/``, ``.gitattributes``,
``.github/``, ``.gitignore``) and the signature file ``model.sig`` itself are
not signed, exactly as its verifier leaves them out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from google.protobuf import json_format  # type: ignore[import-untyped]
from model_signing import manifest as oms_manifest
from model_signing import verifying
from model_signing._hashing import hashing as oms_hashing
from model_signing._signing import sign_ec_key
from model_signing._signing import sign_sigstore_pb as sigstore_pb
from model_signing._signing import signing as oms_signing
from sigstore_models import intoto as intoto_pb
from sigstore_models.bundle import v1 as bundle_pb
from sigstore_models.common import v1 as common_pb

from weightvault._time import iso, parse_iso
from weightvault.crypto.p256 import (
    EcPrivateKey,
    EcPublicKey,
    Ed25519Public,
    generate_p256_der,
    load_p256_private_der,
    load_public_pem,
    public_pem,
)
from weightvault.crypto.signing import Ed25519PublicKey, HybridSigningKey, HybridVerifyKey
from weightvault.errors import IntegrityError, InvalidInputError
from weightvault.keys import KeyProvider, KeyState

__all__ = [
    "OMS_ALGORITHM",
    "OMS_KEY_ID",
    "OMS_PURPOSE",
    "OMS_SIGNATURE_NAME",
    "Ed25519Verifier",
    "OmsEntry",
    "OmsSigningKey",
    "ensure_oms_key",
    "oms_entries",
    "oms_files",
    "oms_key",
    "oms_manifest_of",
    "oms_verify_pem",
    "parse_oms_entry",
    "rotate_oms_key",
    "sign_oms",
    "verify_model",
    "verify_oms_signature",
]

OMS_SIGNATURE_NAME = "model.sig"
OMS_KEY_ID: Final = "vault-oms"
OMS_ALGORITHM: Final = "ECDSA-P256"
OMS_PURPOSE: Final = "signing"
# What model_signing's hashing leaves out by default, and the signature itself.
_IGNORED = (OMS_SIGNATURE_NAME, ".git", ".gitattributes", ".github", ".gitignore")
_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _ignored(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in _IGNORED)


def oms_files(files: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(path, sha256 hex)`` pairs an OMS signature covers, sorted by path."""
    return sorted((p, d) for p, d in files if not _ignored(p))


def oms_manifest_of(model_name: str, files: Iterable[tuple[str, str]]) -> oms_manifest.Manifest:
    """The ``model_signing`` manifest of ``files`` (``(path, sha256 hex)``); reads no file."""
    items = [
        oms_manifest.FileManifestItem(
            path=pathlib.PurePosixPath(path), digest=oms_hashing.Digest("sha256", bytes.fromhex(d))
        )
        for path, d in oms_files(files)
    ]
    serialization_type = oms_manifest.SerializationType.from_args(
        {
            "method": "files",
            "hash_type": "sha256",
            "allow_symlinks": False,
            "ignore_paths": list(_IGNORED),
        }
    )
    return oms_manifest.Manifest(model_name, items, serialization_type)


def _key_hint(pem: bytes) -> str:
    # model_signing's key signer names the key by the sha256 of its PEM.
    return hashlib.sha256(pem).hexdigest()


class _Ed25519Signer(sigstore_pb.Signer):
    """A ``model_signing`` signer using the Ed25519 half of a hybrid signing key."""

    def __init__(self, key: HybridSigningKey) -> None:
        self._key = key

    def sign(self, payload: oms_signing.Payload) -> sigstore_pb.Signature:
        raw_payload = json_format.MessageToJson(payload.statement.pb).encode("utf-8")
        raw_signature = intoto_pb.Signature(
            sig=base64.b64encode(self._key.sign_dsse_ed25519(sigstore_pb.pae(raw_payload))),
            keyid="",
        )
        envelope = intoto_pb.Envelope(
            payload=base64.b64encode(raw_payload),
            payload_type=_PAYLOAD_TYPE,
            signatures=[raw_signature],
        )
        pem = self._key.public_key().ed25519_public_pem()
        material = bundle_pb.VerificationMaterial(
            public_key=common_pb.PublicKeyIdentifier(hint=_key_hint(pem)), tlog_entries=[]
        )
        return sigstore_pb.Signature(
            bundle_pb.Bundle(
                media_type=_BUNDLE_MEDIA_TYPE,
                verification_material=material,
                dsse_envelope=envelope,
            )
        )


class Ed25519Verifier(sigstore_pb.Verifier):
    """A ``model_signing`` verifier for bundles signed with an Ed25519 public key (PEM)."""

    def __init__(self, public_key_pem: bytes) -> None:
        try:
            key = Ed25519PublicKey(public_key_pem)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
        self._key = key
        self._hint = _key_hint(key.pem())

    def _verify_bundle(self, bundle: bundle_pb.Bundle) -> tuple[str, bytes]:
        public_key = bundle.verification_material.public_key
        if public_key is None or public_key.hint != self._hint:
            raise ValueError("the signature names another public key")
        envelope = bundle.dsse_envelope
        if envelope is None or len(envelope.signatures) != 1:
            raise ValueError("the signature carries no single DSSE signature")
        if not self._key.verifies(envelope.signatures[0].sig, sigstore_pb.pae(envelope.payload)):
            raise ValueError("the DSSE signature does not verify")
        return envelope.payload_type, envelope.payload


def _load_ec_private(material: bytes) -> EcPrivateKey:
    try:
        return load_p256_private_der(material)
    except ValueError as exc:
        raise InvalidInputError(f"the stored OMS key is {exc}") from None


_public_pem = public_pem


class OmsSigningKey:
    """One version of the vault's ECDSA P-256 OMS key. Its material never appears in a repr."""

    def __init__(self, key_id: str, version: int, material: bytes) -> None:
        """InvalidInputError (never echoing the material) when it is no P-256 PKCS#8 key."""
        self.key_id = key_id
        self.version = version
        self._key = _load_ec_private(material)
        self._material = material
        self._pem = _public_pem(self._key.public_key())

    def __repr__(self) -> str:
        return f"OmsSigningKey({self.key_id}@v{self.version}, keyid={self.keyid[:16]})"

    @classmethod
    def generate_material(cls) -> bytes:
        """A new random P-256 private key as unencrypted PKCS#8 DER (sealed by the keystore)."""
        return generate_p256_der()

    @property
    def ref(self) -> str:
        """``key_id@vN``."""
        return f"{self.key_id}@v{self.version}"

    def private_material(self) -> bytes:
        """The PKCS#8 DER private key, for the keystore to seal (secret)."""
        return self._material

    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM: what ``model_signing verify key`` takes."""
        return self._pem

    @property
    def keyid(self) -> str:
        """Hex sha256 of :meth:`public_pem`, the key ``hint`` ``model_signing`` writes."""
        return _key_hint(self._pem)

    def signer(self) -> sigstore_pb.Signer:
        """``model_signing``'s own elliptic-curve signer over this key."""
        return _EcSigner(self._key)


class _EcSigner(sign_ec_key.Signer):
    """``model_signing``'s EC signer, given the key object rather than a PEM file path.

    Only the constructor differs: the library's ``sign`` and verification material
    are used as they are, and the private key is never written to a file.
    """

    def __init__(self, private_key: EcPrivateKey) -> None:
        sign_ec_key._check_supported_ec_key(private_key.public_key())  # noqa: SLF001
        self._private_key = private_key


class _EcVerifier(sign_ec_key.Verifier):
    """``model_signing``'s EC verifier from PEM bytes; a bundle naming no key hint is refused."""

    def __init__(self, public_key_pem: bytes) -> None:
        try:
            key = load_public_pem(public_key_pem)
        except ValueError:
            raise ValueError("the public key is not a PEM public key") from None
        if not isinstance(key, EcPublicKey):
            raise ValueError("the public key is not an ECDSA P-256 key")  # noqa: TRY004
        sign_ec_key._check_supported_ec_key(key)  # noqa: SLF001
        self._public_key = key

    def _verify_bundle(self, bundle: bundle_pb.Bundle) -> tuple[str, bytes]:
        public_key = bundle.verification_material.public_key
        if public_key is None or not public_key.hint:
            raise ValueError("the signature names no public key")
        envelope = bundle.dsse_envelope
        if envelope is None or len(envelope.signatures) != 1:
            raise ValueError("the signature carries no single DSSE signature")
        try:
            result: tuple[str, bytes] = super()._verify_bundle(bundle)
        except InvalidSignature:
            raise ValueError("the DSSE signature does not verify") from None
        return result


def _verifier_for(public_key_pem: bytes) -> sigstore_pb.Verifier:
    """The verifier for a PEM: ``model_signing``'s EC verifier, or Ed25519 for old signatures."""
    try:
        key = load_public_pem(public_key_pem)
    except ValueError:
        raise ValueError("the public key is not a PEM public key") from None
    if isinstance(key, Ed25519Public):
        return Ed25519Verifier(public_key_pem)
    return _EcVerifier(public_key_pem)


# -- the key in the keystore and in the trust root ------------------------------------


@dataclass(frozen=True)
class OmsEntry:
    """One version of the OMS key, as the signed trust root lists it (``oms``)."""

    key_id: str
    version: int
    keyid: str
    state: str
    compromised_at: datetime | None
    public_pem: bytes | None

    @property
    def ref(self) -> str:
        """``key_id@vN``."""
        return f"{self.key_id}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """The entry as the root document holds it (the PEM as text)."""
        return {
            "key_id": self.key_id,
            "version": self.version,
            "keyid": self.keyid,
            "algorithm": OMS_ALGORITHM,
            "state": self.state,
            "compromised_at": iso(self.compromised_at) if self.compromised_at else None,
            "public_key": self.public_pem.decode("ascii") if self.public_pem else None,
        }

    def summary(self) -> dict[str, Any]:
        """Public facts: key, keyid, algorithm, state."""
        return {
            "key": self.ref,
            "keyid": self.keyid,
            "algorithm": OMS_ALGORITHM,
            "state": self.state,
            "compromised_at": iso(self.compromised_at) if self.compromised_at else None,
        }


_ENTRY_FIELDS: Final = frozenset(
    {"key_id", "version", "keyid", "algorithm", "state", "compromised_at", "public_key"}
)
_STATES: Final = frozenset(str(s) for s in KeyState)


def parse_oms_entry(doc: Any, index: int) -> OmsEntry:
    """An ``oms`` entry of a root document; ValueError naming what is wrong."""
    if not isinstance(doc, dict) or set(doc) != _ENTRY_FIELDS:
        raise ValueError(f"OMS key entry {index} is malformed")
    if doc["algorithm"] != OMS_ALGORITHM or doc["state"] not in _STATES:
        raise ValueError(f"OMS key entry {index} has an unknown algorithm or state")
    key_id, version, keyid = doc["key_id"], doc["version"], doc["keyid"]
    if (
        not isinstance(key_id, str)
        or not isinstance(keyid, str)
        or not isinstance(version, int)
        or isinstance(version, bool)
    ):
        raise ValueError(f"OMS key entry {index} is malformed")  # noqa: TRY004
    pem: bytes | None = None
    if doc["public_key"] is not None:
        if not isinstance(doc["public_key"], str):
            raise ValueError(f"OMS key entry {index} is malformed")
        pem = doc["public_key"].encode("ascii")
        try:
            public = load_public_pem(pem)
        except ValueError:
            raise ValueError(f"OMS key entry {index} holds no PEM public key") from None
        if not isinstance(public, EcPublicKey):
            raise ValueError(f"OMS key entry {index} is not an ECDSA P-256 key")
        if _public_pem(public) != pem or _key_hint(pem) != keyid:
            raise ValueError(f"OMS key entry {index} does not match its public key")
    elif doc["state"] != str(KeyState.DESTROYED):
        raise ValueError(f"OMS key entry {index} has no public key")
    when = None
    if doc["compromised_at"] is not None:
        if not isinstance(doc["compromised_at"], str):
            raise ValueError(f"OMS key entry {index} has a malformed compromise time")
        when = parse_iso(doc["compromised_at"])
    if (doc["state"] == str(KeyState.COMPROMISED)) != (when is not None):
        raise ValueError(
            f"OMS key entry {index}: a compromise time goes with, and only with, "
            "the compromised state"
        )
    return OmsEntry(key_id, version, keyid, doc["state"], when, pem)


def oms_key(keys: KeyProvider) -> OmsSigningKey | None:
    """The active OMS key, if the keystore holds one (never created here)."""
    record = keys.active(OMS_KEY_ID)
    if record is None or not record.material:
        return None
    return OmsSigningKey(record.key_id, record.version, record.material)


def rotate_oms_key(keys: KeyProvider) -> OmsSigningKey:
    """A new OMS key version; the older ones stay listed and keep verifying what they signed."""
    material = OmsSigningKey.generate_material()
    keyid = OmsSigningKey(OMS_KEY_ID, 0, material).keyid
    record = keys.put_secret(
        OMS_KEY_ID, OMS_PURPOSE, OMS_ALGORITHM, material, meta={"keyid": keyid}
    )
    return OmsSigningKey(record.key_id, record.version, record.material)


def ensure_oms_key(keys: KeyProvider) -> OmsSigningKey:
    """The active OMS key, created (sealed in the keystore like the other keys) if none is."""
    found = oms_key(keys)
    if found is not None:
        return found
    material = OmsSigningKey.generate_material()
    keyid = OmsSigningKey(OMS_KEY_ID, 0, material).keyid
    record = keys.ensure_secret(
        OMS_KEY_ID, OMS_PURPOSE, OMS_ALGORITHM, lambda: material, meta={"keyid": keyid}
    )
    return OmsSigningKey(record.key_id, record.version, record.material)


def oms_entries(keys: KeyProvider) -> list[OmsEntry]:
    """Every version of the OMS key in the keystore, with its state (public parts only)."""
    out = []
    for record in keys.versions(OMS_KEY_ID):
        if record.state == KeyState.DESTROYED or not record.material:
            keyid = record.meta.get("keyid") or f"destroyed-{record.ref}"
            out.append(
                OmsEntry(record.key_id, record.version, keyid, str(KeyState.DESTROYED), None, None)
            )
            continue
        key = OmsSigningKey(record.key_id, record.version, record.material)
        compromised = None
        if record.state == KeyState.COMPROMISED:
            text = record.meta.get("compromised_at")
            compromised = parse_iso(text) if text else record.created_at
        out.append(
            OmsEntry(
                record.key_id,
                record.version,
                key.keyid,
                str(record.state),
                compromised,
                key.public_pem(),
            )
        )
    return out


def oms_verify_pem(
    keyid: str,
    signed_at: datetime,
    hybrid: Mapping[str, HybridVerifyKey],
    hybrid_compromised: Mapping[str, datetime],
    oms: Sequence[OmsEntry],
    what: str,
) -> bytes:
    """The public PEM to check an OMS signature by ``keyid``, logged at ``signed_at``, with.

    ``keyid`` is an OMS key the trust root lists, or (signatures made before the
    vault had one) a hybrid signing key, whose Ed25519 half signed. Refused
    (IntegrityError): a key not listed, destroyed, or compromised at or before
    ``signed_at``.
    """
    legacy = hybrid.get(keyid)
    if legacy is not None:
        since = hybrid_compromised.get(keyid)
        if since is not None and signed_at >= since:
            raise IntegrityError(
                f"{what}: the OMS signature's key {legacy.key_id}@v{legacy.version} is not "
                f"trusted: compromised since {iso(since)}"
            )
        return legacy.ed25519_public_pem()
    entry = next((e for e in oms if e.keyid == keyid), None)
    if entry is None or entry.public_pem is None:
        raise IntegrityError(f"{what}: the OMS signature's key is not trusted")
    if entry.compromised_at is not None and signed_at >= entry.compromised_at:
        raise IntegrityError(
            f"{what}: the OMS signature's key {entry.ref} is not trusted: compromised since "
            f"{iso(entry.compromised_at)}"
        )
    return entry.public_pem


# -- signing and verifying -------------------------------------------------------------


def sign_oms(
    key: OmsSigningKey | HybridSigningKey, model_name: str, files: Iterable[tuple[str, str]]
) -> bytes:
    """The OMS signature (Sigstore bundle JSON) of ``files`` (``(path, sha256 hex)``).

    ``key`` is the vault's OMS key, or a hybrid signing key whose Ed25519 half
    signs (a vault whose trust root lists no OMS key yet).
    """
    payload = oms_signing.Payload(oms_manifest_of(model_name, files))
    signer = key.signer() if isinstance(key, OmsSigningKey) else _Ed25519Signer(key)
    signature = signer.sign(payload)
    if not isinstance(signature, sigstore_pb.Signature):
        raise TypeError("model_signing returned no Sigstore bundle")
    return signature.bundle.to_json().encode("utf-8")


def verify_oms_signature(
    data: bytes, public_key_pem: bytes, files: Iterable[tuple[str, str]], what: str
) -> None:
    """Check an OMS signature against a public key and the files it must cover.

    The key is ECDSA (``model_signing``'s own verifier) or, for signatures made
    before the vault had an OMS key, Ed25519. IntegrityError: the bytes are no
    bundle, the signature does not verify under the key, or the signed files
    are not exactly ``files`` with their sha256.
    """
    try:
        doc: Any = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004
        bundle = bundle_pb.Bundle.from_dict(doc)
        signed = _verifier_for(public_key_pem).verify(sigstore_pb.Signature(bundle))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{what}: the OMS signature does not verify ({exc})") from None
    if signed != oms_manifest_of("", files):
        raise IntegrityError(f"{what}: the OMS signature covers other files than the artifact's")


class _Config(verifying.Config):
    def __init__(self, verifier: sigstore_pb.Verifier) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._verifier = verifier
        self._uses_sigstore = False


def verify_model(model_dir: pathlib.Path, signature: pathlib.Path, public_key_pem: bytes) -> None:
    """Verify a model directory with ``model_signing``'s verifier and a public key (PEM).

    An ECDSA key goes through the library's public API
    (``verifying.Config().use_elliptic_key_verifier``); an Ed25519 key (old
    signatures) through :class:`Ed25519Verifier`. The library hashes every file
    of ``model_dir`` (but those it ignores) and compares them with the signed
    manifest: ValueError names the first difference.
    """
    verifier = _verifier_for(public_key_pem)
    if isinstance(verifier, Ed25519Verifier):
        _Config(verifier).verify(model_dir, signature)
        return
    with tempfile.TemporaryDirectory(prefix="weightvault-oms-") as tmp:
        key_path = pathlib.Path(tmp) / "oms.pub"
        key_path.write_bytes(public_key_pem)
        config = verifying.Config().use_elliptic_key_verifier(public_key=key_path)  # type: ignore[no-untyped-call]
        try:
            config.verify(model_dir, signature)
        except InvalidSignature:
            raise ValueError("the DSSE signature does not verify") from None
