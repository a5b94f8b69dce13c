"""Helpers of the durability attack tests: CLI runs, delete markers, crash points."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.payloads import weights
from weightvault.config import Settings, load_settings
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


# A permissive policy in the vault home (the home comes first in the config lookup):
# the crash tests are about the moving steps, not the gates, which have tests of their own.
ALLOW_ALL_POLICY = """package weightvault.admission

rules := {"allow": "every promotion is allowed (crash tests)"}

decision := {"allow": true, "deny": []}
"""


def allow_all_promotions(settings: Settings) -> Settings:
    """Install the permissive policy in the vault's home; the settings reloaded with it."""
    policies = settings.home / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    (policies / "weightvault.rego").write_text(ALLOW_ALL_POLICY)
    # Authorization is not what these tests loosen: the real authz policy stays.
    shutil.copyfile(settings.policy_dir / "authz.rego", policies / "authz.rego")
    reloaded = load_settings(REPO / "config")
    assert reloaded.policy_dir == policies
    return reloaded


def big_tree(root: Path, files: int, mib: int) -> Path:
    """``files`` random files of ``mib`` MiB each (enough for a copy to take a while)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"shard-{i:03d}.safetensors").write_bytes(weights(mib << 20))
    return root


def start_cli(*args: str) -> subprocess.Popen[str]:
    """Start the real CLI in the background (to be killed)."""
    return subprocess.Popen(
        [*CLI, *args, "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when(proc: subprocess.Popen[str], what: str, cond: Callable[[], Any]) -> None:
    """SIGKILL ``proc`` as soon as ``cond`` holds; fail if it ended before."""
    try:
        wait_for(what, lambda: cond() or proc.poll() is not None, timeout=300)
        assert proc.poll() is None, f"the process ended before {what}: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
