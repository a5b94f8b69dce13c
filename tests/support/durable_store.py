"""Helpers of the durability attack tests: CLI runs, delete markers, crash points."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import REPO
from weightvault.store import ObjectStore

CLI = [sys.executable, "-m", "weightvault.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI with ``--json`` (the test's vault environment is inherited)."""
    return subprocess.run(
        [*CLI, *args, "--json"], capture_output=True, text=True, cwd=REPO, check=False
    )


def cli_json(*args: str) -> Any:
    """Run the CLI, expect exit 0, return its JSON output."""
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 120.0) -> Any:
    """Poll ``cond`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = cond()
        if found:
            return found
        time.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


def delete_markers(store: ObjectStore, bucket: str, prefix: str) -> dict[str, str]:
    """Key -> version id of the delete marker that hides it (plain DELETEs), under ``prefix``."""
    return {
        v.key: v.version_id or ""
        for v in store.list(bucket, prefix, versions=True)
        if v.delete_marker and not store.exists(bucket, v.key)
    }


def remove_delete_markers(store: ObjectStore, bucket: str, prefix: str) -> int:
    """Undo plain DELETEs under ``prefix``: drop every delete marker; returns how many."""
    removed = 0
    for v in list(store.list(bucket, prefix, versions=True)):
        if v.delete_marker:
            store.remove(bucket, v.key, version_id=v.version_id)
            removed += 1
    return removed
