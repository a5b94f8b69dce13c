"""The vault's stored records: the manifest (an artifact's commit point) and audit events."""

from weightvault.records._audit import Event, add_listener, notify
from weightvault.records._manifest import (
    FileEntry,
    Manifest,
    check_artifact_id,
    check_relpath,
)

__all__ = [
    "Event",
    "FileEntry",
    "Manifest",
    "add_listener",
    "check_artifact_id",
    "check_relpath",
    "notify",
]
