"""The artifact engine: envelopes, encrypted uploads, manifests, authenticated reads, gc."""

from weightvault.artifacts._auditlog import (
    AUDIT_HMAC_KEY_ID,
    LOG_COSIGNER_KEY_ID,
    LOG_NOTE_KEY_ID,
    LogKeys,
    audit_hash,
    audit_hmac_key,
    log_keys,
    log_origin,
    open_log,
)
from weightvault.artifacts._keystore import (
    StoreKeystoreBackups,
    StoreKeystoreVersions,
    open_keystore,
)
from weightvault.artifacts._state import STATE_KINDS, LoggedState, RecordedState, object_state
from weightvault.artifacts._vault import (
    LoggedEvent,
    Operation,
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
    "AUDIT_HMAC_KEY_ID",
    "LOG_COSIGNER_KEY_ID",
    "LOG_NOTE_KEY_ID",
    "STATE_KINDS",
    "LogKeys",
    "LoggedEvent",
    "LoggedState",
    "Operation",
    "PutPlan",
    "PutResult",
    "RecordedState",
    "Sealed",
    "SourceFile",
    "StoreKeystoreBackups",
    "StoreKeystoreVersions",
    "TransferProgress",
    "Vault",
    "VerifyReport",
    "artifact_row",
    "audit_hash",
    "audit_hmac_key",
    "decrypt_object",
    "file_row",
    "log_keys",
    "log_origin",
    "object_state",
    "open_keystore",
    "open_log",
]
