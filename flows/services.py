"""`weightvault up` / `down`: the store, the Prefect server and the served deployments."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from weightvault.config import Settings
from weightvault.errors import StoreUnavailableError
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.store import EmbeddedStore, free_ports


def _state_path(settings: Settings) -> Path:
    return settings.home / "services.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_state(settings: Settings) -> dict[str, Any] | None:
    """Running services, or None."""
    try:
        state: dict[str, Any] = json.loads(_state_path(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not _alive(int(state["server_pid"])):
        return None
    return state


def _wait_healthy(api_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{api_url}/health", timeout=2) as resp,  # noqa: S310
        ):
            if resp.status == 200:
                return
        time.sleep(0.5)
    raise StoreUnavailableError(f"the Prefect server at {api_url} did not become healthy")


def up(settings: Settings, *, timeout: float = 120.0) -> dict[str, Any]:
    """Start the store, the Prefect server and the deployment runner."""
    current = read_state(settings)
    if current:
        return current
    init_vault(settings, start_store=True)
    prefect_home = settings.home / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    port = free_ports(1)[0]
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "WEIGHTVAULT_HOME": str(settings.home),
    }
    bin_dir = Path(sys.executable).parent
    with (prefect_home / "server.log").open("ab") as log:
        server = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                str(bin_dir / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _wait_healthy(api_url, timeout)
    repo = Path(__file__).resolve().parents[1]
    with (prefect_home / "serve.log").open("ab") as log:
        runner = subprocess.Popen(
            [sys.executable, "-m", "flows.deployments"],
            env={**env, "PYTHONPATH": str(repo)},
            cwd=repo,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state = {
        "server_pid": server.pid,
        "runner_pid": runner.pid,
        "api_url": api_url,
        "ui_url": f"http://127.0.0.1:{port}",
    }
    _state_path(settings).write_text(json.dumps(state))
    return state


def down(settings: Settings) -> list[str]:
    """Stop everything `up` started."""
    stopped = []
    try:
        state = json.loads(_state_path(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        state = {}
    for name in ("runner_pid", "server_pid"):
        pid = state.get(name)
        if pid and _alive(int(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGTERM)
            for _ in range(100):
                if not _alive(int(pid)):
                    break
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(int(pid), os.WNOHANG)
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)
            stopped.append(name.removesuffix("_pid"))
    with contextlib.suppress(FileNotFoundError):
        _state_path(settings).unlink()
    if settings.store.embedded and EmbeddedStore(settings.store_dir).down():
        stopped.append("store")
    return stopped
