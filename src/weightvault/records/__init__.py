"""The vault's stored records: the manifest (an artifact's commit point) and audit events."""

from weightvault.records._audit import Event, add_listener, notify
from weightvault.records._manifest import (
    FileEntry,
    Manifest,
    artifact_prefix,
    check_artifact_id,
    check_relpath,
    envelope_key,
    file_key,
    manifest_key,
)

__all__ = [
    "Event",
    "FileEntry",
    "Manifest",
    "add_listener",
    "artifact_prefix",
    "check_artifact_id",
    "check_relpath",
    "envelope_key",
    "file_key",
    "manifest_key",
    "notify",
]
