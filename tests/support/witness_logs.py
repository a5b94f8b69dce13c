"""Logs on the real store for the verification and witness tests, and a witness worker process."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.tlog_writers import open_log
from weightvault.records import TransparencyLog, Witness, witness_log
from weightvault.store import EmbeddedStore, ObjectStore
from weightvault.store.layout import LOG_PREFIX


def server_args(server: EmbeddedStore) -> dict[str, Any]:
    """ObjectStore arguments for the session's SeaweedFS server."""
    creds = server.credentials()
    return {
        "endpoint": server.endpoint(),
        "access_key": creds.access_key,
        "secret_key": creds.secret_key,
    }


def new_bucket(store_args: dict[str, Any], name: str | None = None) -> str:
    """A fresh versioned bucket (an audit bucket's settings)."""
    bucket = name or f"w{uuid.uuid4().hex[:12]}-audit"
    ObjectStore(**store_args).ensure_bucket(bucket, versioned=True, object_lock=False)
    return bucket


def fill(log: TransparencyLog, entries: list[bytes]) -> None:
    """Sequence ``entries`` and integrate them in one checkpoint."""
    for entry in entries:
        log.sequence(entry)
    log.integrate()


def rewrite_log(
    store_args: dict[str, Any], bucket: str, seeds: tuple[bytes, bytes], entries: list[bytes]
) -> TransparencyLog:
    """The attacker's move: drop the log's tiles, entries and checkpoint and write another
    history with the same log keys (``log/witness/`` is left as it was)."""
    store = ObjectStore(**store_args)
    for info in list(store.list(bucket, LOG_PREFIX)):
        if not info.key.startswith(f"{LOG_PREFIX}witness/"):
            store.remove(bucket, info.key)
    log = open_log(store_args, bucket, seeds)
    fill(log, entries)
    return log


def entries_of(tag: str, count: int) -> list[bytes]:
    """``count`` distinct JSON entries."""
    return [f'{{"history":"{tag}","n":{i}}}'.encode() for i in range(count)]


def witness_rounds(
    store_args: dict[str, Any], bucket: str, home: str, rounds: int, barrier: Any, out: Any
) -> None:
    """Run ``rounds`` witness rounds in this process; report (old size, size, root) of each."""
    from pathlib import Path

    witness = Witness(Path(home))
    store = ObjectStore(**store_args)
    barrier.wait(timeout=120)
    seen = []
    for _ in range(rounds):
        result = witness_log(witness, store, bucket)
        seen.append((result.old_size, result.size, result.root))
    out.put(seen)
