"""Helpers of the audit-log tests: a bucket made read-only in SeaweedFS, the log's entries."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from tests.support.storelock_store import ports
from weightvault.artifacts import Vault
from weightvault.errors import VaultError
from weightvault.store import EmbeddedStore, weed_binary


def _weed_shell(store: EmbeddedStore, script: str) -> str:
    p = ports(store)
    argv = [str(weed_binary()), f"-config_dir={store.security_dir}", "shell"]
    argv += [f"-master=127.0.0.1:{p['master']}.{p['master_grpc']}"]
    argv += [f"-filer=127.0.0.1:{p['filer']}.{p['filer_grpc']}"]
    done = subprocess.run(
        argv, input=(script + "\nexit\n").encode(), capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode(errors="replace")


def _writable(vault: Vault, bucket: str) -> bool:
    try:
        vault.store.put_bytes(bucket, "probe/read-only-check", b"x")
    except VaultError:
        return False
    return True


@contextlib.contextmanager
def read_only_bucket(store: EmbeddedStore, vault: Vault, bucket: str) -> Iterator[None]:
    """Make ``bucket`` refuse writes (SeaweedFS filer.conf ``readOnly``) until the block ends."""
    prefix = f"/buckets/{bucket}/"
    _weed_shell(store, f"fs.configure -locationPrefix={prefix} -readOnly=true -apply")
    try:
        deadline = time.monotonic() + 120
        while _writable(vault, bucket):
            assert time.monotonic() < deadline, f"{bucket} still accepts writes"
            time.sleep(0.2)
        yield
    finally:
        _weed_shell(store, f"fs.configure -locationPrefix={prefix} -delete -apply")
        deadline = time.monotonic() + 120
        while not _writable(vault, bucket):
            assert time.monotonic() < deadline, f"{bucket} stays read-only"
            time.sleep(0.2)


def log_entries(vault: Vault) -> list[tuple[int, dict[str, Any]]]:
    """Every entry of the vault's log, verified against the signed checkpoint, as JSON."""
    signed = vault.tlog.integrate()
    return [(i, json.loads(e)) for i, e in vault.tlog.verified_entries(signed)]


def outcomes(vault: Vault, kind: str, artifact_id: str | None = None) -> list[dict[str, Any]]:
    """The outcome entries of ``kind`` (of one artifact), in log order."""
    return [
        e
        for _, e in log_entries(vault)
        if e["phase"] == "outcome"
        and e["kind"] == kind
        and (artifact_id is None or e["artifact_id"] == artifact_id)
    ]
