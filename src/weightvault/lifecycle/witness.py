"""Witnessing a vault's transparency log: the steps ``weightvault witness run`` and the
witness flow both run.

A witness needs no vault keys, only read access to the audit bucket's ``log/``
and write access to ``log/witness/<its name>`` (docs/witness.md):

1. :func:`open_witness`: the witness's home (its key and state);
2. :func:`open_log_store`: the store and audit bucket of the configured vault;
3. :func:`cosign`: one round, :func:`weightvault.records.witness_log`;
4. :func:`render_report`: a markdown summary.
"""

from __future__ import annotations

import base64
from pathlib import Path

from weightvault.config import Settings, environment
from weightvault.crypto.notes import (
    COSIGNATURE_ED25519,
    COSIGNATURE_MLDSA44,
    NoteVerifier,
    verifier_from_vkey,
)
from weightvault.errors import ConfigError, InvalidInputError
from weightvault.records import (
    LogReport,
    TransparencyLog,
    Witness,
    WitnessRound,
    verify_log,
    witness_log,
)
from weightvault.store import ObjectStore, connect

__all__ = [
    "check_log",
    "cosign",
    "open_log_store",
    "open_witness",
    "render_report",
    "required_witnesses",
    "run",
    "witness_home",
]


def witness_home(explicit: Path | None = None) -> Path:
    """``explicit``, else ``WEIGHTVAULT_WITNESS_HOME``; ConfigError if neither is set."""
    home = explicit or environment().witness_home
    if home is None:
        raise ConfigError("no witness home: pass --home DIR or set WEIGHTVAULT_WITNESS_HOME")
    return home.resolve()


def required_witnesses(settings: Settings) -> list[NoteVerifier]:
    """The verifiers of the witnesses ``settings`` require (for ``verify_log(witnesses=...)``).

    ConfigError for a vkey that is malformed or not a cosignature key (type 0x04 or 0x06).
    """
    verifiers = []
    for vkey in settings.witnesses:
        try:
            verifier = verifier_from_vkey(vkey)
        except InvalidInputError as exc:
            raise ConfigError(f"witness {vkey.split('+')[0]!r}: {exc.message}") from None
        kind = base64.b64decode(vkey.split("+", 2)[2])[0]
        if kind not in (COSIGNATURE_ED25519, COSIGNATURE_MLDSA44):
            raise ConfigError(
                f"witness {verifier.name!r}: not a cosignature key (type {kind:#04x})"
            )
        verifiers.append(verifier)
    return verifiers


def check_log(log: TransparencyLog, settings: Settings) -> LogReport:
    """What ``audit verify`` runs on the log: :func:`~weightvault.records.verify_log` with
    this host's last-seen checkpoint and every witness ``settings`` require."""
    return verify_log(
        log, last_seen=settings.last_checkpoint_path, witnesses=required_witnesses(settings)
    )


def open_witness(home: Path) -> Witness:
    """The witness kept in ``home`` (ConfigError if there is none)."""
    return Witness(home)


def open_log_store(settings: Settings) -> tuple[ObjectStore, str]:
    """The object store of ``settings`` and its audit bucket, where the log lives."""
    return connect(settings), settings.store.bucket("audit")


def cosign(witness: Witness, store: ObjectStore, bucket: str) -> WitnessRound:
    """One round: cosign the log if it extends what the witness saw, publish the note."""
    return witness_log(witness, store, bucket)


def run(home: Path, settings: Settings) -> WitnessRound:
    """Every step in a row: what ``weightvault witness run`` does."""
    witness = open_witness(home)
    store, bucket = open_log_store(settings)
    return cosign(witness, store, bucket)


def render_report(round_: WitnessRound) -> str:
    """A markdown summary of one round."""
    grew = round_.size - round_.old_size
    return "\n".join(
        [
            f"# Witness {round_.witness}",
            "",
            f"- log: `{round_.origin}`",
            f"- cosigned size {round_.size} (was {round_.old_size}, +{grew})",
            f"- root: `{round_.root}`",
            f"- published at `{round_.published}`",
            "",
        ]
    )
