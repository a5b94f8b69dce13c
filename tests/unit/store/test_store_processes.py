"""The embedded store stops only its own SeaweedFS process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from weightvault.processes import ProcessRef
from weightvault.store import EmbeddedStore


def test_store_down_never_signals_a_process_that_is_not_its_weed(
    impostor: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.dir.mkdir(parents=True)
    ref = ProcessRef.of(impostor.pid).to_dict()
    state = {"pid": impostor.pid, "process": ref, "ports": {"s3": 9}, "started": 0.0}
    store.state_path.write_text(json.dumps(state))
    assert store.status().running is False
    assert store.down() is False
    assert impostor.poll() is None, "store down signalled a process that is not its server"
    # A state file of an older vault (a bare pid) gets the same protection.
    store.state_path.write_text(json.dumps({"pid": impostor.pid, "ports": {"s3": 9}}))
    assert store.down() is False
    assert impostor.poll() is None
