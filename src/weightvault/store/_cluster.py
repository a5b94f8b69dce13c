"""The embedded store as a SeaweedFS cluster: one master, N volume servers, a filer, S3.

``weightvault store up --nodes N`` (N >= 2) runs, instead of the single ``weed mini``,
one process per part, every one on 127.0.0.1 with free ports:

- ``weed master`` (``-defaultReplication=001``: every needle is written to two volume
  servers of the same rack, so any one of them may die without losing data);
- ``weed volume`` N times, each with a data directory of its own;
- ``weed filer`` (its metadata in an embedded LevelDB);
- ``weed s3`` on the filer, with the same identity file as the single server.

Each reads the same ``security.toml`` (``-config_dir``, see ``_security``): mutual
TLS on every gRPC and HTTP port but S3's, signed tokens for the volume servers and
the filer. The S3 endpoint and its credentials are those of the single server, so
nothing above :mod:`weightvault.store` can tell the two apart. The cluster keeps its
data in ``<store>/cluster``, apart from the single server's ``<store>/data``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightvault.errors import StoreUnavailableError
from weightvault.processes import ProcessRef, is_running

__all__ = [
    "FILER",
    "FILER_GRACE",
    "MASTER",
    "REPLICATION",
    "S3",
    "ClusterPaths",
    "argvs",
    "kill",
    "master_volume_servers",
    "port_names",
    "runs_weed_with",
    "spawn",
    "volume_names",
    "wait_ready",
]

HOST = "127.0.0.1"
REPLICATION = "001"
MASTER, FILER, S3 = "master", "filer", "s3"
# As the single server: a volume stops taking writes at 128 MiB (weed mini's default;
# a stand-alone master's is 30 GiB). Volumes are not preallocated.
_VOLUME_SIZE_MB = 128
# A volume server asked to stop tells the master at once and exits a second later
# (weed waits 10 s by default, which `store down` would wait through).
_PRE_STOP_SECONDS = 1
_STATUS_TIMEOUT = 3.0
# Seconds a stopping filer gets before it is killed (see EmbeddedStore._down_cluster).
FILER_GRACE = 3.0


@dataclass(frozen=True)
class ClusterPaths:
    """Where the cluster's processes keep their data, read their keys and log."""

    weed: Path
    security_dir: Path
    identity_path: Path
    data_dir: Path
    log_dir: Path

    def log(self, name: str) -> Path:
        """The log file of process ``name`` (0600)."""
        return self.log_dir / f"weed-{name}.log"


def volume_names(nodes: int) -> list[str]:
    """``volume-1`` ... ``volume-N``."""
    return [f"volume-{i}" for i in range(1, nodes + 1)]


def port_names(nodes: int) -> tuple[str, ...]:
    """Every port the cluster of ``nodes`` volume servers listens on (HTTP and gRPC each)."""
    names = [S3, f"{S3}_grpc", MASTER, f"{MASTER}_grpc", FILER, f"{FILER}_grpc"]
    for volume in volume_names(nodes):
        names += [volume, f"{volume}_grpc"]
    return tuple(names)


def _address(ports: Mapping[str, int], name: str) -> str:
    """weed's ``ip:port.grpcPort`` form of a server address."""
    return f"{HOST}:{ports[name]}.{ports[name + '_grpc']}"


def argvs(
    paths: ClusterPaths, ports: Mapping[str, int], nodes: int, volume_slots: int
) -> dict[str, list[str]]:
    """The command line of every process, by name, in start order."""
    weed = [str(paths.weed), f"-config_dir={paths.security_dir}"]
    bind = [f"-ip={HOST}", f"-ip.bind={HOST}"]
    master = _address(ports, MASTER)
    found: dict[str, list[str]] = {
        MASTER: [
            *weed,
            "master",
            *bind,
            f"-port={ports[MASTER]}",
            f"-port.grpc={ports[MASTER + '_grpc']}",
            f"-mdir={paths.data_dir / MASTER}",
            f"-defaultReplication={REPLICATION}",
            f"-volumeSizeLimitMB={_VOLUME_SIZE_MB}",
            "-peers=none",
            "-telemetry=false",
        ]
    }
    for volume in volume_names(nodes):
        found[volume] = [
            *weed,
            "volume",
            *bind,
            f"-port={ports[volume]}",
            f"-port.grpc={ports[volume + '_grpc']}",
            f"-dir={paths.data_dir / volume}",
            f"-master={master}",
            # As the single server's -volume.max (see _server.VOLUME_SLOTS).
            f"-max={volume_slots}",
            f"-preStopSeconds={_PRE_STOP_SECONDS}",
        ]
    found[FILER] = [
        *weed,
        "filer",
        *bind,
        f"-port={ports[FILER]}",
        f"-port.grpc={ports[FILER + '_grpc']}",
        f"-master={master}",
        f"-defaultStoreDir={paths.data_dir / FILER}",
    ]
    found[S3] = [
        *weed,
        "s3",
        *bind,
        f"-port={ports[S3]}",
        f"-port.grpc={ports[S3 + '_grpc']}",
        f"-filer={_address(ports, FILER)}",
        f"-config={paths.identity_path}",
        "-port.iceberg=0",
        "-port.lance=0",
        "-allowDeleteBucketNotEmpty=false",
    ]
    return found


def runs_weed_with(security_dir: Path) -> Callable[[list[str]], bool]:
    """An argv check: a weed process reading this store's ``security_dir``."""
    wanted = f"-config_dir={security_dir}"

    def check(argv: list[str]) -> bool:
        return bool(argv) and Path(argv[0]).name == "weed" and wanted in argv

    return check


def spawn(argv: list[str], log_path: Path, cwd: Path) -> ProcessRef:
    """Start one process in a session of its own, its output appended to ``log_path``."""
    for directory in (Path(a.split("=", 1)[1]) for a in argv if _is_dir_flag(a)):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(log_fd, 0o600)
    with os.fdopen(log_fd, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
            umask=0o077,
        )
    return ProcessRef.of(proc.pid)


def _is_dir_flag(arg: str) -> bool:
    return arg.startswith(("-dir=", "-mdir=", "-defaultStoreDir="))


def kill(ref: ProcessRef, check: Callable[[list[str]], bool], timeout: float = 10.0) -> bool:
    """SIGKILL the process ``ref`` names (its group), as a crash would; True once gone."""
    if not is_running(ref, check=check):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(ref.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(ref.pid, os.WNOHANG)
        if not is_running(ref):
            return True
        time.sleep(0.05)
    return not is_running(ref)


def _client_context(security_dir: Path) -> ssl.SSLContext:
    """TLS as weed's own parts speak to the master: the store CA and its client certificate.

    ``_security`` writes them as ``tls/ca.pem`` and ``tls/client.pem|key``.
    """
    tls = security_dir / "tls"
    context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    context.load_cert_chain(str(tls / "client.pem"), str(tls / "client.key"))
    return context


def master_volume_servers(security_dir: Path, master_port: int) -> list[str] | None:
    """The ``host:port`` of every volume server the master has registered (its
    ``/dir/status`` over mutual TLS); None when the master does not answer."""
    try:
        conn = http.client.HTTPSConnection(
            HOST, master_port, timeout=_STATUS_TIMEOUT, context=_client_context(security_dir)
        )
        try:
            conn.request("GET", "/dir/status")
            response = conn.getresponse()
            if response.status != http.client.OK:
                return None
            body: dict[str, Any] = json.loads(response.read())
        finally:
            conn.close()
    except (OSError, ValueError, ssl.SSLError, http.client.HTTPException):
        return None
    found: list[str] = []
    topology = body.get("Topology") or {}
    for center in topology.get("DataCenters") or []:
        for rack in center.get("Racks") or []:
            found.extend(str(node.get("Url", "")) for node in rack.get("DataNodes") or [])
    return sorted(found)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((HOST, port)) == 0


def wait_ready(
    refs: Mapping[str, ProcessRef],
    ports: Mapping[str, int],
    paths: ClusterPaths,
    volumes: list[str],
    timeout: float,
) -> None:
    """Return once S3 answers and the master has every volume server of ``volumes``;
    StoreUnavailableError naming the process (and its log) that exited, or the timeout."""
    wanted = sorted(f"{HOST}:{ports[v]}" for v in volumes)
    deadline = time.monotonic() + timeout
    registered: list[str] | None = None
    while time.monotonic() < deadline:
        for name, ref in refs.items():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(ref.pid, os.WNOHANG)
            if not is_running(ref):
                raise StoreUnavailableError(
                    f"the embedded store's {name} exited while starting; see {paths.log(name)}"
                )
        # A volume server killed a moment ago may still be listed: each must listen too.
        if _port_open(ports[S3]) and all(_port_open(ports[v]) for v in volumes):
            registered = master_volume_servers(paths.security_dir, ports[MASTER])
            if registered is not None and set(wanted) <= set(registered):
                return
        time.sleep(0.2)
    have = len(set(wanted) & set(registered or []))
    raise StoreUnavailableError(
        f"the embedded store cluster did not start within {timeout:.0f}s ({have} of "
        f"{len(wanted)} volume servers registered); see the weed-*.log files in {paths.log_dir}"
    )
