"""A transparency-log writer run in its own process, for the concurrency tests."""

from __future__ import annotations

import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from weightvault.crypto.notes import (
    Ed25519NoteSigner,
    MLDSA44Cosigner,
    NoteSigner,
    NoteVerifier,
    verifier_from_vkey,
)
from weightvault.records import TransparencyLog
from weightvault.store import ObjectStore

ORIGIN = "weightvault.test/log"


def log_keys(ed_seed: bytes, ml_seed: bytes) -> tuple[list[NoteSigner], list[NoteVerifier]]:
    """The log's two signers from their seeds, and the matching verifiers."""
    ed = Ed25519NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.from_private_bytes(ed_seed))
    ml = MLDSA44Cosigner(ORIGIN, mldsa.MLDSA44PrivateKey.from_seed_bytes(ml_seed), time.time)
    return [ed, ml], [verifier_from_vkey(ed.vkey), verifier_from_vkey(ml.vkey)]


def open_log(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes]
) -> TransparencyLog:
    """A log handle as a fresh process would make it."""
    signers, verifiers = log_keys(*seeds)
    store = ObjectStore(**store_args)
    return TransparencyLog(store, bucket, ORIGIN, verifiers=verifiers, signers=signers)


def write_entries(
    store_args: dict[str, Any],
    bucket: str,
    seeds: tuple[bytes, bytes],
    writer: int,
    count: int,
    barrier: Any,
    out: Any,
) -> None:
    """Append ``count`` entries; report (index, tree size) of each append."""
    log = open_log(store_args, bucket, seeds)
    barrier.wait(timeout=120)
    seen = []
    for i in range(count):
        index, signed = log.append(f'{{"writer":{writer},"n":{i}}}'.encode())
        seen.append((index, signed.checkpoint.size, signed.checkpoint.root.hex()))
    out.put((writer, seen))
