"""The store lockdown tests' tools: run the attacker as another user, an old unlocked store.

- :func:`attacker_available` says why another user cannot be used (or ``None``);
- :func:`attack` runs ``tests/support/storelock_attacker.py`` as ``nobody`` with
  ``setpriv`` and returns what it reports;
- :func:`start_unlocked_store` starts SeaweedFS as the vault did before the
  lockdown (no ``security.toml``, a state.json of that vault), to reproduce the
  attacks and to check that the next ``up`` locks such a store;
- :func:`file_id` looks up an object's SeaweedFS file id the way an operator can:
  ``weed shell`` with the store's own certificates.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

from weightvault.store import EmbeddedStore, free_ports, weed_binary

ATTACKER = Path(__file__).with_name("storelock_attacker.py")
NOBODY = 65534
_PORT_NAMES = (
    "s3",
    "s3_grpc",
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "admin",
    "admin_grpc",
)


def _as_nobody(argv: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv")
    assert setpriv is not None
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def _runs_as_nobody(argv: list[str]) -> bool:
    done = subprocess.run(_as_nobody(argv), capture_output=True, timeout=120, check=False)
    return done.returncode == 0


@cache
def _python() -> str | None:
    """A Python interpreter ``nobody`` may run (the attacker needs only the standard library)."""
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if candidate and _runs_as_nobody([candidate, "-c", "pass"]):
            return candidate
    return None


def _nobody_can_run(binary: str) -> bool:
    # setpriv resolves the program it execs with root's capabilities still held, so
    # the probe is a child of a process that already is nobody, as in the attacks.
    python = _python()
    probe = f"import subprocess as s, sys; sys.exit(s.run([{binary!r}, 'version']).returncode)"
    return python is not None and _runs_as_nobody([python, "-c", probe])


@cache
def _weed() -> str | None:
    """The store's weed binary, or a copy of it where ``nobody`` may run it."""
    weed = str(weed_binary())
    if _nobody_can_run(weed):
        return weed
    folder = Path(tempfile.mkdtemp(prefix="wv-attacker-weed-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder.chmod(0o755)
    copy = folder / "weed"
    shutil.copy2(weed, copy)
    copy.chmod(0o755)
    return str(copy) if _nobody_can_run(str(copy)) else None


@cache
def attacker_available() -> str | None:
    """Why this test process cannot run code as ``nobody``; ``None`` when it can."""
    if os.geteuid() != 0:
        return "the tests do not run as root, so they cannot switch to another user"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    if _python() is None:
        return "no Python interpreter that nobody may run"
    if _weed() is None:
        return "nobody cannot run the weed binary, not even a copy of it"
    return None


def attack(spec: dict[str, Any], *attacks: str) -> dict[str, dict[str, Any]]:
    """Run ``attacks`` as ``nobody`` against the store ``spec`` describes; their results."""
    python, weed = _python(), _weed()
    assert python is not None
    assert weed is not None
    body = {**spec, "attacks": list(attacks), "weed": weed}
    argv = _as_nobody([python, "-I", "-c", ATTACKER.read_text(), json.dumps(body)])
    done = subprocess.run(argv, capture_output=True, timeout=600, check=False, cwd="/")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    results: dict[str, Any] = json.loads(done.stdout)
    assert results.pop("uid") == NOBODY
    return results


def ports(store: EmbeddedStore) -> dict[str, int]:
    """The ports of the running store, from its state.json."""
    state = json.loads(store.state_path.read_text())
    return {name: int(port) for name, port in state["ports"].items()}


def weed_sockets(store: EmbeddedStore) -> list[str]:
    """The unix sockets weed opened in /tmp for this store's servers."""
    found = []
    for port in ports(store).values():
        found += [str(p) for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]
    return sorted(found)


def start_unlocked_store(store: EmbeddedStore, timeout: float = 180.0) -> None:
    """Start SeaweedFS for ``store`` exactly as the vault did before the lockdown."""
    creds = store.credentials()
    identities = {
        "identities": [
            {
                "name": "weightvault",
                "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    store.identity_path.write_text(json.dumps(identities))
    store.identity_path.chmod(0o600)
    store.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    chosen = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
    args = [
        str(weed_binary()),
        "mini",
        f"-dir={store.data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={store.identity_path}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        "-volume.max=1000",
    ]
    for name, port in chosen.items():
        server, _, grpc = name.partition("_")
        args.append(f"-{server}.port{'.grpc' if grpc else ''}={port}")
    with store.log_path.open("ab") as log:
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=store.dir
        )
    # The state.json of a vault from before the lockdown: a bare pid and the ports.
    store.state_path.write_text(json.dumps({"pid": proc.pid, "ports": chosen, "started": 0.0}))
    deadline = time.monotonic() + timeout
    while not store.status().running:
        assert proc.poll() is None, f"the unlocked store exited; see {store.log_path}"
        assert time.monotonic() < deadline, "the unlocked store did not start"
        time.sleep(0.2)


def file_id(store: EmbeddedStore, bucket: str, key: str) -> str:
    """The SeaweedFS file id of an object's first chunk, asked with the store's certificates."""
    p = ports(store)
    argv = [str(weed_binary()), f"-config_dir={store.security_dir}", "shell"]
    argv += [f"-master=127.0.0.1:{p['master']}.{p['master_grpc']}"]
    argv += [f"-filer=127.0.0.1:{p['filer']}.{p['filer_grpc']}"]
    stdin = f"fs.meta.cat /buckets/{bucket}/{key}\nexit\n".encode()
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=120, check=False)
    text = done.stdout.decode(errors="replace")
    start = text.index("{")
    entry = json.loads(text[start : text.rindex("}") + 1])
    return str(entry["chunks"][0]["fileId"])
