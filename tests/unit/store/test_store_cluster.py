"""The embedded store on more than one node: master, 3 volume servers, filer, S3 (real weed).

A vault on the cluster works as on the single server; with replication 001 every
artifact survives losing any one volume server, and a volume server killed (SIGKILL)
in the middle of a put or a get costs at most that one operation: it completes or
fails with a one-line VaultError, and its retry succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, make_tree
from tests.support.payloads import weights
from tests.support.services import service_timeout
from weightvault.artifacts import Vault
from weightvault.cli import main
from weightvault.config import Settings, load_settings
from weightvault.errors import UsageError, VaultError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.store import EmbeddedStore

NODES = 3
CLI = [sys.executable, "-m", "weightvault.cli"]
# However the SDK retries, an operation a kill interrupted ends within this.
_OPERATION_BOUND = 150.0
_BIG = 24 << 20
# Set by other tests' fixtures, never for this module's own stores.
_CLUSTER_ENV = (
    "WEIGHTVAULT_S3_ENDPOINT",
    "WEIGHTVAULT_S3_ACCESS_KEY",
    "WEIGHTVAULT_S3_SECRET_KEY",
    "WEIGHTVAULT_BUCKET_PREFIX",
    "WEIGHTVAULT_CONFIG",
    "WEIGHTVAULT_CATALOG_URL",
)


def _weed_processes(store_dir: Path) -> list[psutil.Process]:
    """Every weed process still running that reads this store's security directory."""
    wanted = f"-config_dir={store_dir / 'security'}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = proc.info.get("cmdline") or []
            if wanted in cmdline and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A vault whose embedded store is a 3-volume-server cluster; stopped whatever happens."""
    home = tmp_path_factory.mktemp("cluster") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for name in _CLUSTER_ENV:
            mp.delenv(name, raising=False)
        mp.setenv("WEIGHTVAULT_HOME", str(home))
        mp.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", "none")  # as in tests/conftest.py
        settings = load_settings(REPO / "config")
        store = EmbeddedStore.of(settings)
        try:
            store.up(timeout=service_timeout(), nodes=NODES)
            init_vault(settings)  # takes the running cluster as it is
            yield settings
        finally:
            store.down()
    assert not _weed_processes(store.dir)


@pytest.fixture
def store(cluster: Settings) -> Iterator[EmbeddedStore]:
    """The cluster's store; every volume server a test stopped is started again after it."""
    server = EmbeddedStore.of(cluster)
    try:
        yield server
    finally:
        for name in server.volume_servers():
            server.start_node(name, timeout=service_timeout())


def _same_file(a: Path, out: Path) -> bool:
    got = out / a.name if out.is_dir() else out
    return got.read_bytes() == a.read_bytes()


def _verify_all(vault: Vault, stored: dict[str, Path], work: Path) -> None:
    for artifact_id, source in stored.items():
        vault.verify(artifact_id)
        out = work / f"get-{artifact_id[:12]}-{time.monotonic_ns()}"
        vault.get(artifact_id, out)
        assert all(
            (out / f.relative_to(source)).read_bytes() == f.read_bytes()
            for f in source.rglob("*")
            if f.is_file()
        )


def test_cluster_has_three_volume_servers_and_survives_losing_any_one(
    cluster: Settings, store: EmbeddedStore, tmp_path: Path
) -> None:
    status = store.status()
    assert status.running
    assert status.volume_servers == NODES
    assert [n.name for n in status.nodes] == [
        "master",
        "volume-1",
        "volume-2",
        "volume-3",
        "filer",
        "s3",
    ]
    assert all(n.running for n in status.nodes)
    # The master itself (over its mutual-TLS API) has the three volume servers.
    ports = {n.name: n.port for n in status.nodes}
    assert store.registered_volume_servers() == sorted(
        f"127.0.0.1:{ports[v]}" for v in store.volume_servers()
    )
    # The vault above the store is the same: S3 endpoint and credentials as with one node.
    assert store.endpoint() == status.endpoint

    vault = Vault.open(cluster)
    stored: dict[str, Path] = {}
    for i, size in enumerate((1000, 3 << 20)):
        src = make_tree(tmp_path / f"m{i}", {"w.bin": weights(size), "c.json": b"{}"})
        stored[ingest.put(vault, src, f"cluster-model-{i}").artifact_id] = src
    _verify_all(vault, stored, tmp_path)

    for name in store.volume_servers():
        assert store.stop_node(name, kill=True)
        assert not {n.name: n.running for n in store.status().nodes}[name]
        # Every artifact is still whole on the volume servers left (replication 001);
        # verify and get write their log entries there too.
        _verify_all(vault, stored, tmp_path)
        store.start_node(name, timeout=service_timeout())


def test_the_cluster_is_locked_down_as_the_single_server(store: EmbeddedStore) -> None:
    """Each process listens only on its recorded loopback ports, and every port but the
    S3 gateway's HTTP wants a client certificate of the store's CA (TLS 1.3 says so)."""
    state = json.loads(store.state_path.read_text())
    recorded = {("127.0.0.1", int(port)) for port in state["ports"].values()}
    listening = set()
    for node in store.status().nodes:
        assert node.pid is not None
        listening |= {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.Process(node.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
    assert listening == recorded
    ca = store.security_dir / "tls" / "ca.pem"
    for name, port in state["ports"].items():
        if name == "s3":
            continue
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            _talk_without_client_certificate(ca, port)


def _talk_without_client_certificate(ca: Path, port: int) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /dir/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        tls.recv(1)


def _volume_bytes(store: EmbeddedStore) -> dict[str, int]:
    found = {}
    for name in store.volume_servers():
        root = store.cluster_dir / name
        found[name] = sum(f.stat().st_size for f in root.glob("*.dat") if f.is_file())
    return found


def _run_bounded(action: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _kill_while(
    store: EmbeddedStore, thread: threading.Thread, busy: Callable[[], str | None]
) -> str:
    """SIGKILL the volume server ``busy`` names once it does (while ``thread`` runs)."""
    deadline = time.monotonic() + _OPERATION_BOUND
    while time.monotonic() < deadline:
        victim = busy()
        if victim is not None or not thread.is_alive():
            break
        time.sleep(0.02)
    victim = victim or store.volume_servers()[0]
    alive = thread.is_alive()
    assert store.stop_node(victim, kill=True)
    print(f"killed {victim} {'during' if alive else 'after'} the operation")
    return victim


def _clean_outcome(thread: threading.Thread, errors: list[BaseException], what: str) -> bool:
    """The operation ended within the bound; True if it completed, else a one-line VaultError."""
    thread.join(_OPERATION_BOUND)
    assert not thread.is_alive(), f"the {what} hung after a volume server was killed"
    print(f"the {what}: {errors[0] if errors else 'completed'}")
    if not errors:
        return True
    (exc,) = errors
    assert isinstance(exc, VaultError), f"the {what} failed with {type(exc).__name__}: {exc}"
    assert "\n" not in str(exc)
    assert "Traceback" not in str(exc)
    return False


def test_a_volume_server_killed_during_a_put_or_a_get_costs_at_most_that_operation(
    cluster: Settings, store: EmbeddedStore, tmp_path: Path
) -> None:
    vault = Vault.open(cluster)
    src = make_tree(tmp_path / "big", {"weights.bin": weights(_BIG), "c.json": b"{}"})
    before = _volume_bytes(store)
    result: list[str] = []

    def put() -> None:
        result.append(ingest.put(vault, src, "cluster-big").artifact_id)

    def writing() -> str | None:
        grown = {n: b - before.get(n, 0) for n, b in _volume_bytes(store).items()}
        name, most = max(grown.items(), key=lambda item: item[1])
        return name if most >= 4 << 20 else None

    started = time.monotonic()
    thread, errors = _run_bounded(put)
    victim = _kill_while(store, thread, writing)
    completed = _clean_outcome(thread, errors, "put")
    put_took = time.monotonic() - started
    stored: dict[str, Path] = {result[0]: src} if completed else {}
    # The retry, with the volume server still down, succeeds.
    stored[ingest.put(vault, src, "cluster-big").artifact_id] = src
    store.start_node(victim, timeout=service_timeout())
    _verify_all(vault, stored, tmp_path)

    artifact_id = next(iter(stored))
    out = tmp_path / "got"
    thread, errors = _run_bounded(lambda: vault.get(artifact_id, out))

    def reading() -> str | None:
        got = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) if out.exists() else 0
        return store.volume_servers()[1] if got >= 2 << 20 else None

    victim = _kill_while(store, thread, reading)
    _clean_outcome(thread, errors, "get")
    retry = tmp_path / "got-again"
    vault.get(artifact_id, retry)
    assert (retry / "weights.bin").read_bytes() == (src / "weights.bin").read_bytes()
    store.start_node(victim, timeout=service_timeout())
    _verify_all(vault, stored, tmp_path)
    assert put_took < _OPERATION_BOUND


def test_down_stops_every_process_of_the_cluster(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    try:
        status = store.up(timeout=service_timeout(), nodes=NODES)
        assert status.running
        assert len(status.nodes) == NODES + 3
        assert len(_weed_processes(store.dir)) == NODES + 3
        # A cluster whose S3 gateway died is down; `up` stops what is left and starts anew.
        old = {n.pid for n in status.nodes}
        assert store.stop_node("s3", kill=True)
        assert not store.status().running
        again = store.up(timeout=service_timeout())
        assert again.running
        assert again.volume_servers == NODES
        pids = {p.pid for p in _weed_processes(store.dir)}
        assert len(pids) == NODES + 3
        assert not pids & old
        assert store.stop_node("volume-2", kill=True)
    finally:
        assert store.down()
    assert _weed_processes(store.dir) == []
    assert not store.status().running
    assert store.down() is False


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=service_timeout() + 60,
    )


def test_store_up_nodes_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(home))
    monkeypatch.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", "none")
    store_dir = home / "store"

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    code, _, err = run("store", "up", "--nodes", "0")
    assert code == UsageError.exit_code
    assert err.count("\n") == 1
    assert err.startswith("weightvault: error: --nodes must be 1 or more")
    code, _, err = run("store", "status", "--nodes", str(NODES))
    assert code == UsageError.exit_code
    assert "--nodes is for `store up`" in err
    try:
        # The command itself, as a user runs it.
        up = _cli("store", "up", "--nodes", str(NODES), env=dict(os.environ))
        assert up.returncode == 0, up.stderr
        assert "store running at http://127.0.0.1:" in up.stdout
        assert f"{NODES} volume servers, replication 001:" in up.stdout
        assert len(_weed_processes(store_dir)) == NODES + 3
        code, out, err = run("store", "status", "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["running"]
        assert report["volume_servers"] == NODES
        assert [n["name"] for n in report["nodes"] if n["running"]] == [
            "master",
            "volume-1",
            "volume-2",
            "volume-3",
            "filer",
            "s3",
        ]
        # A plain `store up` (as `weightvault init` does) takes the running cluster as it is.
        code, out, err = run("store", "up", "--json")
        assert code == 0, err
        assert json.loads(out)["pid"] == report["pid"]
        down = _cli("store", "down", env=dict(os.environ))
    finally:
        EmbeddedStore(store_dir).down()
    assert down.returncode == 0, down.stderr
    assert "store stopped" in down.stdout
    assert _weed_processes(store_dir) == []
