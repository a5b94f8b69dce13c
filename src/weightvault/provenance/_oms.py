"""OpenSSF model signing (OMS) signatures over an artifact's files.

The signature is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``)
whose DSSE envelope carries the ``model_signing`` in-toto statement
(``https://model_signing/signature/v1.0``): one resource per file, its path
relative to the model directory and its sha256, serialization ``files`` with
sha256. It is built with the ``model-signing`` library's own manifest, payload
and signer interfaces from the digests the upload already computed (no file is
read again), and signed by the Ed25519 half of the vault's hybrid signing key.

``model_signing`` 1.1's ``key`` verifier takes only ECDSA P-256/384/521 keys,
so the Ed25519 signature is checked by :class:`Ed25519Verifier`, a verifier
on the library's own ``sigstore_pb.Verifier`` interface, run through the
library's ``verifying.Config.verify`` (:func:`verify_model`): the library
hashes the directory and compares it with the signed manifest.

The files ``model_signing`` skips by default (``.git/``, ``.gitattributes``,
``.github/``, ``.gitignore``) and the signature file ``model.sig`` itself are
not signed, exactly as its verifier leaves them out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
from collections.abc import Iterable
from typing import Any, Final

from google.protobuf import json_format  # type: ignore[import-untyped]
from model_signing import manifest as oms_manifest
from model_signing import verifying
from model_signing._hashing import hashing as oms_hashing
from model_signing._signing import sign_sigstore_pb as sigstore_pb
from model_signing._signing import signing as oms_signing
from sigstore_models import intoto as intoto_pb
from sigstore_models.bundle import v1 as bundle_pb
from sigstore_models.common import v1 as common_pb

from weightvault.crypto.signing import Ed25519PublicKey, HybridSigningKey
from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "OMS_SIGNATURE_NAME",
    "Ed25519Verifier",
    "oms_files",
    "oms_manifest_of",
    "sign_oms",
    "verify_model",
    "verify_oms_signature",
]

OMS_SIGNATURE_NAME = "model.sig"
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


class _Config(verifying.Config):
    def __init__(self, public_key_pem: bytes) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._verifier = Ed25519Verifier(public_key_pem)
        self._uses_sigstore = False


def sign_oms(key: HybridSigningKey, model_name: str, files: Iterable[tuple[str, str]]) -> bytes:
    """The OMS signature (Sigstore bundle JSON) of ``files`` (``(path, sha256 hex)``)."""
    payload = oms_signing.Payload(oms_manifest_of(model_name, files))
    signature = _Ed25519Signer(key).sign(payload)
    return signature.bundle.to_json().encode("utf-8")


def verify_oms_signature(
    data: bytes, public_key_pem: bytes, files: Iterable[tuple[str, str]], what: str
) -> None:
    """Check an OMS signature against a public key and the files it must cover.

    IntegrityError: the bytes are no bundle, the signature does not verify under
    the key, or the signed files are not exactly ``files`` with their sha256.
    """
    try:
        doc: Any = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004
        bundle = bundle_pb.Bundle.from_dict(doc)
        signed = Ed25519Verifier(public_key_pem).verify(sigstore_pb.Signature(bundle))
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{what}: the OMS signature does not verify ({exc})") from None
    if signed != oms_manifest_of("", files):
        raise IntegrityError(f"{what}: the OMS signature covers other files than the artifact's")


def verify_model(model_dir: pathlib.Path, signature: pathlib.Path, public_key_pem: bytes) -> None:
    """Verify a model directory with ``model_signing``'s verifier and an Ed25519 public key.

    The library hashes every file of ``model_dir`` (but those it ignores) and
    compares them with the signed manifest: ValueError names the first difference.
    """
    _Config(public_key_pem).verify(model_dir, signature)
