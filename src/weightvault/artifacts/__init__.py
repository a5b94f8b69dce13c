"""The artifact engine: envelopes, encrypted uploads, manifests, authenticated reads, gc."""

from weightvault.artifacts._keystore import (
    StoreKeystoreBackups,
    StoreKeystoreVersions,
    open_keystore,
)
from weightvault.artifacts._vault import (
    PutPlan,
    PutResult,
    Sealed,
    SourceFile,
    TransferProgress,
    Vault,
    VerifyReport,
    artifact_row,
    decrypt_object,
    file_row,
)

__all__ = [
    "PutPlan",
    "PutResult",
    "Sealed",
    "SourceFile",
    "StoreKeystoreBackups",
    "StoreKeystoreVersions",
    "TransferProgress",
    "Vault",
    "VerifyReport",
    "artifact_row",
    "decrypt_object",
    "file_row",
    "open_keystore",
]
