"""A configured port another program holds: a one-line error naming the port and the
setting (exit 65), and nothing started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.services import start_prefect_server
from tests.conftest import REPO
from weightvault.errors import PortInUseError

CLI = [sys.executable, "-m", "weightvault.cli"]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_store_up_on_a_taken_port_names_the_port_and_the_setting(
    taken_port: int, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "WEIGHTVAULT_HOME": str(home), "WEIGHTVAULT_STORE_PORT": str(taken_port)}
    proc = subprocess.run(
        [*CLI, "store", "up"], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    assert proc.returncode == 65, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"port {taken_port} " in lines[0]
    assert "[store] port (WEIGHTVAULT_STORE_PORT)" in lines[0]
    assert "Traceback" not in proc.stderr
    # Nothing was started: no server recorded, no weed process for this home.
    assert not (home / "store" / "state.json").exists()


def test_the_prefect_server_on_a_taken_port_names_the_port_and_the_setting(
    taken_port: int, tmp_path: Path
) -> None:
    with pytest.raises(PortInUseError) as err:
        start_prefect_server(tmp_path / "prefect", timeout=5, port=taken_port)
    assert f"port {taken_port} " in err.value.message
    assert "[prefect] port (WEIGHTVAULT_PREFECT_PORT)" in err.value.message
    assert err.value.exit_code == 65
    # No `prefect server start` was run.
    log = tmp_path / "prefect" / "server.log"
    assert not log.exists() or "server start" not in log.read_text()
