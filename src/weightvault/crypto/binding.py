"""What binds ciphertext and metadata to their place in the vault.

* A file's chunked-encryption context names the artifact and the file's path,
  so a ciphertext moved to another artifact or path fails its commitment check.
* The manifest carries an HMAC under a key derived from the artifact's DEK, so
  a manifest cannot be edited or swapped without the DEK.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from weightvault.errors import IntegrityError

CONTEXT_PREFIX = b"weightvault/v1/file\x00"
_MANIFEST_INFO = b"weightvault/v1/manifest-mac"


def file_context(artifact_id: str, path: str) -> bytes:
    """Chunked-encryption context of one file of one artifact."""
    return CONTEXT_PREFIX + artifact_id.encode() + b"\x00" + path.encode("utf-8")


def _mac_key(dek: bytes) -> bytes:
    return HKDFExpand(hashes.SHA256(), 32, _MANIFEST_INFO).derive(dek)


def manifest_mac(dek: bytes, body: bytes) -> str:
    """Hex HMAC-SHA256 of a canonical manifest body under a DEK-derived key."""
    return hmac.new(_mac_key(dek), body, "sha256").hexdigest()


def verify_manifest_mac(dek: bytes, body: bytes, mac: str) -> None:
    """Raise IntegrityError unless ``mac`` authenticates ``body``."""
    if not hmac.compare_digest(manifest_mac(dek, body), mac):
        raise IntegrityError("manifest authentication failed")
