"""ECDSA P-256 keys as the OMS signature (``model_signing``) needs them, and PEM parsing.

The only place outside :mod:`weightvault.keys` where the provenance package gets
key objects: it never touches ``cryptography.hazmat`` itself.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

__all__ = [
    "EcPrivateKey",
    "EcPublicKey",
    "Ed25519Public",
    "generate_p256_der",
    "load_p256_private_der",
    "load_public_pem",
    "public_pem",
]

EcPrivateKey = ec.EllipticCurvePrivateKey
EcPublicKey = ec.EllipticCurvePublicKey
Ed25519Public = ed25519.Ed25519PublicKey
_CURVE = "secp256r1"


def generate_p256_der() -> bytes:
    """A new random P-256 private key as unencrypted PKCS#8 DER (to be sealed by the keystore)."""
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_p256_private_der(material: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 key of PKCS#8 DER ``material``; ValueError (never echoing it) otherwise."""
    try:
        key = serialization.load_der_private_key(material, None)
    except (ValueError, TypeError):
        raise ValueError("not a PKCS#8 private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != _CURVE:
        raise ValueError("not an ECDSA P-256 key")
    return key


def load_public_pem(pem: bytes) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | None:
    """The P-256 or Ed25519 public key of ``pem``; None for another key type.

    ValueError when ``pem`` is no PEM public key at all; a curve other than P-256
    counts as another key type.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise ValueError("not a PEM public key") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == _CURVE:
        return key
    return None


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """``key`` as SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
