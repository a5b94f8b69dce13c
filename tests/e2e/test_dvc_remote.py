"""The vault as a DVC remote and an aws-cli/mc endpoint, surviving a store restart.

Real parts only: the embedded SeaweedFS store of the test's own on a fixed (free)
port, a real git + DVC repository, `dvc push`/`dvc pull`, the minio SDK using the
environment `weightvault store env` prints.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from minio import Minio

from pipeline.workspace import run
from tests.conftest import REPO
from tests.support.payloads import weights
from tests.support.services import start_vault_store
from weightvault.config import Settings, load_settings
from weightvault.store import EmbeddedStore, free_ports

CLI = [sys.executable, "-m", "weightvault.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=dict(os.environ), cwd=REPO, check=False
    )


@pytest.fixture
def fixed_port_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A vault with its own embedded store on a fixed port (a free one, as a user's 9470)."""
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WEIGHTVAULT_STORE_PORT", str(free_ports(1)[0]))
    monkeypatch.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", "none")
    settings = load_settings(REPO / "config")
    start_vault_store(settings)
    try:
        yield settings
    finally:
        EmbeddedStore(settings.store_dir).down()


def _exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            found[key] = shlex.split(value)[0]
    return found


def test_dvc_push_and_pull_through_the_vault_remote_survive_a_store_restart(
    fixed_port_store: Settings, tmp_path: Path
) -> None:
    settings = fixed_port_store
    store = EmbeddedStore.of(settings)
    assert store.status().endpoint == f"127.0.0.1:{settings.store.port}"
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "dvc", "init", "-q")
    payload = weights(200_000)
    (repo / "data" / "weights.bin").write_bytes(payload)
    run(repo, "dvc", "add", "-q", "data/weights.bin")

    first = cli("dvc-remote", str(repo))
    assert first.returncode == 0, first.stderr
    again = cli("dvc-remote", str(repo))  # re-running updates, never duplicates
    assert again.returncode == 0, again.stderr
    local = repo / ".dvc" / "config.local"
    assert local.stat().st_mode & 0o777 == 0o600
    text = local.read_text()
    dvc_key = store.credentials("dvc")
    assert text.count('["remote "vault"]') + text.count("['remote \"vault\"']") == 1, text
    assert dvc_key.access_key in text
    assert dvc_key.secret_key in text
    assert store.credentials().access_key not in text  # never the admin's
    assert f"127.0.0.1:{settings.store.port}" in text
    assert dvc_key.secret_key not in (repo / ".dvc" / "config").read_text()
    assert dvc_key.secret_key not in first.stdout + first.stderr
    assert [p.name for p in (repo / ".dvc").iterdir() if p.name.endswith(".tmp")] == []
    remotes = run(repo, "dvc", "remote", "list").split()
    assert remotes == ["vault", f"s3://{settings.store.bucket('dvc')}/", "(default)"]
    run(repo, "dvc", "push", "-q")

    # aws-cli/mc style: the environment `store env` writes (0600), used by the minio SDK.
    shown = cli("store", "env", "dvc")
    assert shown.returncode == 0, shown.stderr
    assert dvc_key.secret_key not in shown.stdout
    assert "AWS_SECRET_ACCESS_KEY not shown" in shown.stdout
    assert "mc alias set weightvault" in shown.stdout
    env_file = tmp_path / "dvc.env"
    written = cli("store", "env", "dvc", "--secret-file", str(env_file))
    assert written.returncode == 0, written.stderr
    assert dvc_key.secret_key not in written.stdout
    assert env_file.stat().st_mode & 0o777 == 0o600
    exports = _exports(env_file.read_text())
    url = urlsplit(exports["AWS_ENDPOINT_URL"])
    assert url.netloc == f"127.0.0.1:{settings.store.port}"
    s3 = Minio(
        url.netloc,
        access_key=exports["AWS_ACCESS_KEY_ID"],
        secret_key=exports["AWS_SECRET_ACCESS_KEY"],
        secure=url.scheme == "https",
        region=exports["AWS_REGION"],
    )
    pushed = [o.object_name for o in s3.list_objects(settings.store.bucket("dvc"), recursive=True)]
    assert len(pushed) == 1, pushed
    assert pushed[0].startswith("files/md5/"), pushed

    # Restart: the store comes back on the same port, so the remote still works.
    assert cli("store", "down").returncode == 0
    up = cli("store", "up")
    assert up.returncode == 0, up.stderr
    assert store.status().endpoint == f"127.0.0.1:{settings.store.port}"
    (repo / "data" / "weights.bin").unlink()
    shutil.rmtree(repo / ".dvc" / "cache")  # pull must fetch from the store
    run(repo, "dvc", "pull", "-q")
    assert (repo / "data" / "weights.bin").read_bytes() == payload
