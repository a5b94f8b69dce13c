"""The vault's stored records: the manifest (an artifact's commit point), audit events, the log,
its verification and the witness."""

from weightvault.records._audit import (
    Event,
    add_listener,
    current_flow_run,
    flow_run,
    new_id,
    notify,
    one_line,
    process_name,
    set_flow_run_source,
)
from weightvault.records._manifest import (
    REBUILD_KIT,
    FileEntry,
    Manifest,
    check_artifact_id,
    check_relpath,
    digest_of,
)
from weightvault.records._tlog import SignedCheckpoint, TransparencyLog
from weightvault.records._verify import (
    LogProblem,
    LogReport,
    WitnessedCheckpoint,
    prove_entry,
    read_witnessed,
    verify_entry_proof,
    verify_log,
)
from weightvault.records._witness import Witness, WitnessRound, witness_log
from weightvault.records._witness_http import WitnessServer

__all__ = [
    "REBUILD_KIT",
    "Event",
    "FileEntry",
    "LogProblem",
    "LogReport",
    "Manifest",
    "SignedCheckpoint",
    "TransparencyLog",
    "Witness",
    "WitnessRound",
    "WitnessServer",
    "WitnessedCheckpoint",
    "add_listener",
    "check_artifact_id",
    "check_relpath",
    "current_flow_run",
    "digest_of",
    "flow_run",
    "new_id",
    "notify",
    "one_line",
    "process_name",
    "prove_entry",
    "read_witnessed",
    "set_flow_run_source",
    "verify_entry_proof",
    "verify_log",
    "witness_log",
]
