"""Crashes against the real embedded store: a put killed with SIGKILL, a store killed mid-get.

Nothing is mocked: the put runs in the real CLI process, the store is the real
SeaweedFS server of the vault, and both are killed with real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from tests.support.services import start_test_store
from weightvault.artifacts import Vault
from weightvault.config import TIERS, Settings
from weightvault.errors import StoreUnavailableError
from weightvault.lifecycle import ingest
from weightvault.store import EmbeddedStore, ObjectStore, connect
from weightvault.store.layout import artifact_prefix, file_key

CLI = [sys.executable, "-m", "weightvault.cli"]
MIB = 1 << 20


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--json"], capture_output=True, text=True, cwd=REPO, check=False
    )


def cli_json(*args: str) -> Any:
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def random_file(path: Path, mib: int) -> Path:
    with path.open("wb") as fh:
        for _ in range(mib // 8):
            fh.write(weights(8 * MIB))
    return path


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = cond()
        if found:
            return found
        time.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def envelope_ids(store: ObjectStore, settings: Settings) -> list[str]:
    bucket = settings.store.bucket("envelopes")
    return [o.key.split("/")[1] for o in store.list(bucket, "envelopes/")]


def tier_keys(store: ObjectStore, settings: Settings) -> list[str]:
    return [
        f"{tier}:{o.key}"
        for tier in TIERS
        for o in store.list(settings.store.bucket(tier), "artifacts/")
    ]


def test_put_killed_mid_upload_leaves_no_artifact_and_gc_cleans_up(
    own_store: Settings, tmp_path: Path
) -> None:
    settings = own_store
    store = connect(settings)
    hot = settings.store.bucket("hot")
    # Two files uploaded by two workers: the small one completes, the big one is a
    # multipart upload in flight when the process dies.
    src = make_tree(tmp_path / "model", {"a-config.json": weights(256 * 1024)})
    random_file(src / "weights.bin", 400)
    proc = subprocess.Popen(
        [*CLI, "put", str(src), "--name", "big-model"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        artifact_id = wait_for(
            "the envelope of the put", lambda: envelope_ids(store, settings), timeout=60
        )[0]

        def under_way() -> bool:
            uploads = list(store.list_incomplete_uploads(hot, artifact_prefix(artifact_id)))
            return bool(uploads) and store.exists(hot, file_key(artifact_id, 0))

        wait_for("the multipart upload of weights.bin", under_way, timeout=60)
        assert proc.poll() is None, "the put finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # "Restart": a fresh vault on the same home sees no artifact at all.
    vault = Vault.open(settings)
    assert vault.catalog.list_artifacts() == []
    for tier in TIERS:
        assert vault.committed_ids(tier) == set()
    assert not [k for k in tier_keys(store, settings) if k.endswith("manifest.json")]
    assert cli_json("ls") == []
    assert cli_json("catalog", "rebuild")["artifacts"] == 0
    assert vault.catalog.list_artifacts() == []

    # The orphans: envelope, the completed small file, the incomplete upload.
    assert envelope_ids(store, settings) == [artifact_id]
    assert tier_keys(store, settings) == [f"hot:{file_key(artifact_id, 0)}"]
    uploads = list(store.list_incomplete_uploads(hot, artifact_prefix(artifact_id)))
    assert [u.key for u in uploads] == [file_key(artifact_id, 1)]

    # Young orphans are left alone (the put might still be running) ...
    assert vault.gc() == []
    assert len(vault.gc(timedelta(0), dry_run=True)) == 3
    assert envelope_ids(store, settings) == [artifact_id]
    assert len(list(store.list_incomplete_uploads(hot))) == 1
    # ... and removed once the grace period is over.
    removed = cli_json("gc", "--grace-minutes", "0")["removed"]
    assert len(removed) == 3, removed
    assert all(artifact_id in r for r in removed)
    assert any(uploads[0].upload_id in r for r in removed)
    assert envelope_ids(store, settings) == []
    assert tier_keys(store, settings) == []
    for tier in TIERS:
        assert list(store.list_incomplete_uploads(settings.store.bucket(tier))) == []
    assert vault.gc(timedelta(0)) == []

    # The vault still works after the crash.
    small = make_tree(tmp_path / "small", {"w.bin": weights(5000)})
    artifact = ingest.put(vault, small, "after-crash").artifact_id
    vault.get(artifact, tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == (small / "w.bin").read_bytes()
    assert [a.id for a in vault.catalog.list_artifacts()] == [artifact]


def test_gc_aborts_incomplete_uploads_older_than_the_grace_period(
    vault: Vault, tmp_path: Path
) -> None:
    keep = ingest.put(vault, make_tree(tmp_path / "k", {"w.bin": weights(3000)}), "keep")
    bucket = vault.bucket("hot")
    # An upload left over by a crashed first attempt of a committed artifact's file,
    # and one of an artifact that never committed.
    stale = [file_key(keep.artifact_id, 0), file_key("wv-20260101-00000000deadbeef", 0)]
    client = vault.store.client
    # minio has no public CreateMultipartUpload: a crashed put is what makes one.
    ids = {key: client._create_multipart_upload(bucket, key, {}) for key in stale}  # noqa: SLF001
    listed = {u.key: u.upload_id for u in vault.store.list_incomplete_uploads(bucket, "artifacts/")}
    assert listed == ids
    assert vault.gc() == []  # younger than the grace period
    assert len(vault.gc(timedelta(0), dry_run=True)) == 2
    assert len(list(vault.store.list_incomplete_uploads(bucket))) == 2
    removed = vault.gc(timedelta(0))
    assert sorted(removed) == sorted(
        f"{bucket}/{k} (incomplete upload {u})" for k, u in ids.items()
    )
    assert list(vault.store.list_incomplete_uploads(bucket)) == []
    vault.verify(keep.artifact_id)


def _kill_store(settings: Settings) -> None:
    """SIGKILL the embedded server's whole process group, then forget its state."""
    server = EmbeddedStore(settings.store_dir)
    state = json.loads(server.state_path.read_text())
    os.killpg(int(state["pid"]), signal.SIGKILL)
    server.down()


def test_store_killed_mid_get_raises_store_unavailable_and_writes_nothing(
    own_store: Settings, tmp_path: Path
) -> None:
    vault = Vault.open(own_store)
    src = random_file(tmp_path / "weights.bin", 200)
    artifact_id = ingest.put(vault, src, "big").artifact_id
    src.unlink()
    out = tmp_path / "restore" / "model"
    out.parent.mkdir()
    errors: list[BaseException] = []

    def get() -> None:
        try:
            vault.get(artifact_id, out)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=get)
    thread.start()
    try:

        def writing() -> bool:
            return any(
                p.is_file() and p.stat().st_size > 0
                for d in out.parent.glob(".model.partial-*")
                for p in d.rglob("*")
            )

        wait_for("the get to write into its staging directory", writing, timeout=60)
        assert thread.is_alive(), "the get finished before the store could be killed"
        _kill_store(own_store)
    finally:
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert type(errors[0]) is StoreUnavailableError, repr(errors[0])
    assert "unavailable" in str(errors[0])
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_store_restart_after_sigkill_keeps_data_and_never_signals_a_stranger(
    own_store: Settings, tmp_path: Path
) -> None:
    vault = Vault.open(own_store)
    src = make_tree(tmp_path / "m", {"w.bin": weights(20 * MIB), "c.json": b"{}"})
    artifact_id = ingest.put(vault, src, "survivor").artifact_id
    server = EmbeddedStore(own_store.store_dir)
    state = json.loads(server.state_path.read_text())
    os.killpg(int(state["pid"]), signal.SIGKILL)
    wait_for("the store to die", lambda: not server.status().running, timeout=30)
    # The crash left state.json behind, naming a pid the OS may since have given to
    # an unrelated process (here one in its own session, as the store was).
    stranger = subprocess.Popen(["sleep", "120"], start_new_session=True)
    stale = json.dumps({**state, "pid": stranger.pid})
    try:
        server.state_path.write_text(stale)
        assert not server.status().running
        with pytest.raises(StoreUnavailableError, match="store up"):
            server.endpoint()
        assert server.down() is False
        assert stranger.poll() is None, "stopping the store signalled an unrelated process"
        server.state_path.write_text(stale)
        assert start_test_store(server).running
        assert stranger.poll() is None, "starting the store signalled an unrelated process"
    finally:
        stranger.kill()
        stranger.wait()
    # What was committed before the SIGKILL is intact after the restart.
    fresh = Vault.open(own_store)
    fresh.get(artifact_id, tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == (src / "w.bin").read_bytes()
    assert fresh.verify(artifact_id).files == 2
