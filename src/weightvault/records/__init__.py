"""The vault's stored records: the manifest (an artifact's commit point), audit events, the log."""

from weightvault.records._audit import (
    Event,
    add_listener,
    current_flow_run,
    flow_run,
    new_id,
    notify,
    one_line,
    process_name,
    set_flow_run,
)
from weightvault.records._manifest import (
    FileEntry,
    Manifest,
    check_artifact_id,
    check_relpath,
)
from weightvault.records._tlog import SignedCheckpoint, TransparencyLog

__all__ = [
    "Event",
    "FileEntry",
    "Manifest",
    "SignedCheckpoint",
    "TransparencyLog",
    "add_listener",
    "check_artifact_id",
    "check_relpath",
    "current_flow_run",
    "flow_run",
    "new_id",
    "notify",
    "one_line",
    "process_name",
    "set_flow_run",
]
