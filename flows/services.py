"""`weightvault up` / `down`: the store, the Prefect server and the served deployments.

Three services, each started unless it already runs and each waited for until it
is ready (``timeout`` seconds apiece, generous for a loaded machine):

- the embedded S3 store (SeaweedFS), unless an external endpoint is configured:
  ready when it lists buckets with the vault's credentials;
- ``prefect server start`` (API and UI on one port; SQLite under ``<home>/prefect``,
  or PostgreSQL when ``PREFECT_API_DATABASE_CONNECTION_URL`` names one): ready when
  ``/api/health`` answers;
- ``python -m flows.deployments``, the runner serving the deployments: ready when
  every deployment in :data:`SERVED` is registered and polled by it.

`ensure_server` starts the first two (what `weightvault demo` needs), `up` all
three. Each service is recorded in ``<home>/services.json`` as soon as it is
ready, so `down` stops whatever was started. A service that does not come up is
stopped again and reported by a :class:`ServiceStartError` naming it and quoting
the tail of its log. Every Prefect process runs with telemetry and analytics off.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from weightvault.config import Settings
from weightvault.errors import ConfigError, PortInUseError, StoreUnavailableError, VaultError
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.logs import register_secret, scrub_text
from weightvault.processes import ProcessRef, is_running, stop
from weightvault.store import (
    EmbeddedStore,
    ObjectStore,
    ServerStatus,
    free_ports,
    require_port_free,
)

DEFAULT_TIMEOUT = 180.0
"""Seconds each service may take to become ready (a busy 2-core machine needs a lot)."""

SERVED = (
    "adopt/adopt",
    "ingest/ingest",
    "validate/validate",
    "promote/promote",
    "rotate-keys/rotate-keys",
    "recover/recover",
    "rekey/rekey",
    "dr-drill/dr-drill",
    "contain/contain",
    "detect/detect",
)
"""``flow/deployment`` names the runner serves (`flows.deployments.deployments`)."""

NO_TELEMETRY = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
}
"""Environment that turns telemetry off in every process started here."""

_LOG_TAIL_LINES = 40
PREFECT_DATABASE_ENV = "PREFECT_API_DATABASE_CONNECTION_URL"
"""Prefect's own setting for its server's database (SQLite under the vault's home when unset)."""
PREFECT_PORT_SETTING = "[prefect] port (WEIGHTVAULT_PREFECT_PORT)"


class ServiceStartError(StoreUnavailableError):
    """A service did not become ready: which one, why, and the tail of its log."""

    def __init__(self, service: str, reason: str, log_path: Path | None) -> None:
        where = f"; log: {log_path}" if log_path else ""
        super().__init__(f"{service} did not come up: {reason}{where}")
        self.service = service
        self.log_path = log_path
        self.log_tail = log_tail(log_path) if log_path else ""

    def __str__(self) -> str:
        head = super().__str__()
        if not self.log_tail:
            return head
        return f"{head}\n--- last lines of {self.log_path} ---\n{self.log_tail}"


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path`` ('' when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read()
    except OSError:
        return ""
    return scrub_text("\n".join(data.decode(errors="replace").splitlines()[-lines:]))


def prefect_database_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The Prefect server's database setting from ``environ`` (default: this process's).

    Empty when unset (Prefect then keeps SQLite under the vault's home). A plain
    ``postgresql://`` or ``postgres://`` URL gets the async driver Prefect's server
    needs (``postgresql+asyncpg://``); its password is registered as a secret, so no
    log tail or error quoted from here shows it.
    """
    url = (os.environ if environ is None else environ).get(PREFECT_DATABASE_ENV, "").strip()
    if not url:
        return {}
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"{PREFECT_DATABASE_ENV} is not a database URL (expected postgresql://USER@HOST/DB)"
        )
    if scheme in ("postgresql", "postgres"):
        url = f"postgresql+asyncpg://{rest}"
    password = urllib.parse.urlsplit(url).password
    if password:
        register_secret(password)
        register_secret(urllib.parse.quote(password, safe=""))
    return {PREFECT_DATABASE_ENV: url}


def _state_path(settings: Settings) -> Path:
    return settings.home / "services.json"


def _ref(state: dict[str, Any], name: str) -> ProcessRef | None:
    """The process ``name`` (server or runner) that services.json records, by identity."""
    return ProcessRef.from_dict(state.get(name))


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    _state_path(settings).write_text(json.dumps(state))


def read_state(settings: Settings) -> dict[str, Any] | None:
    """Running services, or None."""
    try:
        state: dict[str, Any] = json.loads(_state_path(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not is_running(_ref(state, "server")):
        return None
    return state


def prefect_env(prefect_home: Path, api_url: str) -> dict[str, str]:
    """The environment of a Prefect process of this vault: its home, its API, no telemetry."""
    return {
        **os.environ,
        **NO_TELEMETRY,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_URL": api_url,
    }


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc``'s process group (it was started in a session of its own)."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
            return


def wait_until(
    service: str,
    ready: Callable[[], bool],
    *,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``ready`` until it holds; ServiceStartError if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServiceStartError(service, f"it exited with code {proc.returncode}", log_path)
        with contextlib.suppress(OSError, VaultError):
            if ready():
                return
        if time.monotonic() > deadline:
            raise ServiceStartError(service, f"not ready within {timeout:.0f}s", log_path)
        time.sleep(0.5)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback URL
        return json.loads(resp.read() or b"null")


def _post_json(url: str, body: Any) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback URL
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback URL
        return json.loads(resp.read() or b"null")


def _healthy(api_url: str) -> bool:
    with urllib.request.urlopen(f"{api_url}/health", timeout=5) as resp:  # noqa: S310
        return bool(resp.status == 200)


# --- the store -------------------------------------------------------------------------


def start_embedded_store(store: EmbeddedStore, *, timeout: float = DEFAULT_TIMEOUT) -> ServerStatus:
    """Start ``store`` unless it runs; return once it lists buckets with its credentials."""
    service = f"the embedded S3 store (SeaweedFS under {store.dir})"
    try:
        status = store.up(timeout=timeout)
    except PortInUseError:
        raise
    except VaultError as exc:
        raise ServiceStartError(service, exc.message, store.log_path) from exc
    creds = store.credentials()
    s3 = ObjectStore(status.endpoint, creds.access_key, creds.secret_key, retries=0)

    def lists_buckets() -> bool:
        s3.ping()
        return True

    try:
        wait_until(service, lists_buckets, timeout=timeout, log_path=store.log_path)
    except ServiceStartError:
        store.down()
        raise
    return status


def start_store(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start the embedded store (if the vault uses it) and create what the vault needs."""
    if settings.store.embedded:
        start_embedded_store(EmbeddedStore.of(settings), timeout=timeout)
    init_vault(settings, start_store=True)


# --- the Prefect server ----------------------------------------------------------------


def start_prefect_server(
    prefect_home: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    port: int = 0,
) -> tuple[subprocess.Popen[bytes], str]:
    """``prefect server start`` on loopback ``port``; (process, API URL) once healthy.

    Its output goes to ``<prefect_home>/server.log``. ``port`` 0 takes a free port: one
    taken between choosing and binding it makes the server exit at once, then another
    is tried. A fixed port another program holds is PortInUseError, naming the setting.
    """
    prefect_home.mkdir(parents=True, exist_ok=True)
    log_path = prefect_home / "server.log"
    prefect = Path(sys.executable).parent / "prefect"
    fixed = port
    if fixed:
        require_port_free(fixed, PREFECT_PORT_SETTING)
    for attempt in range(3):
        port = fixed or free_ports(1)[0]
        api_url = f"http://127.0.0.1:{port}/api"
        argv = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        argv += options
        with log_path.open("ab") as log:
            log.write(f"\n=== {datetime.now(UTC).isoformat()} {' '.join(argv)}\n".encode())
            log.flush()
            server = subprocess.Popen(  # noqa: S603 - fixed argv
                argv,
                env={**prefect_env(prefect_home, api_url), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_until(
                f"the Prefect server ({api_url})",
                functools.partial(_healthy, api_url),
                timeout=timeout,
                proc=server,
                log_path=log_path,
            )
        except ServiceStartError as exc:
            stop_process(server)
            port_taken = "address already in use" in exc.log_tail.lower()
            if server.returncode is not None and port_taken and attempt < 2 and not fixed:
                continue
            raise
        return server, api_url
    raise AssertionError("unreachable")  # pragma: no cover


def ensure_server(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The store and the Prefect server of ``settings``, started unless they run."""
    start_store(settings, timeout=timeout)
    current = read_state(settings)
    if current:
        return current
    prefect_home = settings.home / "prefect"
    server, api_url = start_prefect_server(
        prefect_home,
        timeout=timeout,
        env={"WEIGHTVAULT_HOME": str(settings.home), **prefect_database_env()},
        port=settings.prefect_port,
    )
    state = {
        "server_pid": server.pid,
        "server": ProcessRef.of(server.pid).to_dict(),
        "runner_pid": None,
        "runner": None,
        "api_url": api_url,
        "ui_url": api_url.removesuffix("/api"),
    }
    _write_state(settings, state)
    return state


def drain_prefect_workers() -> None:
    """Send the logs and events this process still queues to its Prefect API."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        with contextlib.suppress(RuntimeError):  # never started
            logs = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        events = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    with contextlib.suppress(Exception):
        run_coro_as_sync(drain())


# --- the runner ------------------------------------------------------------------------


def _served_since(api_url: str, since: datetime) -> bool:
    """Whether every deployment in SERVED is registered and was polled after ``since``."""
    for name in SERVED:
        found = _get_json(f"{api_url}/deployments/name/{urllib.parse.quote(name)}")
        polled = found.get("last_polled") if found else None
        if not polled or datetime.fromisoformat(polled) < since:
            return False
    return True


def up(
    settings: Settings, *, timeout: float = DEFAULT_TIMEOUT, workers: int = 0, worker_limit: int = 1
) -> dict[str, Any]:
    """Start the store, the Prefect server and what runs the deployments (what is not running).

    ``workers`` 0 serves every deployment from one runner process (``serve()``);
    N > 0 declares them for the process work pool :data:`flows.deployments.POOL` and
    starts N ``prefect worker start`` processes instead, each running up to
    ``worker_limit`` flow runs at a time. Asking for the other mode
    than the one running stops it first; asking for another number of workers
    restarts them.
    """
    if workers < 0:
        raise ConfigError(f"--workers must be 0 or more, not {workers}")
    state = ensure_server(settings, timeout=timeout)
    if workers:
        if stop(_ref(state, "runner")):
            state["runner"] = state["runner_pid"] = None
        state = _start_workers(settings, state, workers, worker_limit, timeout=timeout)
    else:
        _stop_workers(state)
        if not is_running(_ref(state, "runner")):
            state = _start_runner(settings, state, timeout=timeout)
    _write_state(settings, state)
    state["automations"] = install(settings, state["api_url"])
    return state


def _start_runner(settings: Settings, state: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """``python -m flows.deployments``: every deployment served from one process."""
    prefect_home = settings.home / "prefect"
    log_path = prefect_home / "serve.log"
    since = datetime.now(UTC) - timedelta(seconds=1)
    runner = _spawn(settings, state, [sys.executable, "-m", "flows.deployments"], log_path)
    try:
        wait_until(
            "the deployment runner (python -m flows.deployments)",
            lambda: _served_since(state["api_url"], since),
            timeout=timeout,
            proc=runner,
            log_path=log_path,
        )
    except ServiceStartError:
        stop_process(runner)
        raise
    state["runner_pid"] = runner.pid
    state["runner"] = ProcessRef.of(runner.pid).to_dict()
    return state


def _spawn(
    settings: Settings,
    state: dict[str, Any],
    argv: list[str],
    log_path: Path,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` from the checkout in this vault's Prefect environment; log to ``log_path``."""
    repo = Path(__file__).resolve().parents[1]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {datetime.now(UTC).isoformat()} {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(  # noqa: S603 - fixed argv
            argv,
            env={
                **prefect_env(settings.home / "prefect", state["api_url"]),
                "WEIGHTVAULT_HOME": str(settings.home),
                "PYTHONPATH": str(repo),
                **(extra_env or {}),
            },
            cwd=repo,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def worker_names(count: int) -> list[str]:
    """The names of this host's ``count`` workers (unique in the pool across hosts)."""
    host = socket.gethostname()
    return [f"{host}-{i}" for i in range(1, count + 1)]


def _online_workers(api_url: str, pool: str) -> set[str]:
    found = _post_json(f"{api_url}/work_pools/{urllib.parse.quote(pool)}/workers/filter", {})
    return {w["name"] for w in found or () if w.get("status") == "ONLINE"}


def _deployed_to(api_url: str, pool: str) -> bool:
    for name in SERVED:
        found = _get_json(f"{api_url}/deployments/name/{urllib.parse.quote(name)}")
        if not found or found.get("work_pool_name") != pool:
            return False
    return True


def _start_workers(
    settings: Settings, state: dict[str, Any], count: int, limit: int, *, timeout: float
) -> dict[str, Any]:
    """Deploy to the work pool, then ``count`` ``prefect worker start`` processes for it."""
    from flows.deployments import POOL, poll_seconds

    running = [ProcessRef.from_dict(w) for w in state.get("workers") or ()]
    same = state.get("pool") == POOL and state.get("worker_limit") == limit
    if same and len(running) == count and all(map(is_running, running)):
        return state
    _stop_workers(state)
    prefect_home = settings.home / "prefect"
    log_path = prefect_home / "deploy.log"
    deployer = _spawn(
        settings, state, [sys.executable, "-m", "flows.deployments", "--pool", POOL], log_path
    )
    try:
        deployer.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(deployer)
        raise ServiceStartError(
            f"the deployments for the work pool {POOL!r}",
            f"not deployed within {timeout:.0f}s",
            log_path,
        ) from None
    if deployer.returncode != 0 or not _deployed_to(state["api_url"], POOL):
        raise ServiceStartError(
            f"the deployments for the work pool {POOL!r}",
            f"python -m flows.deployments --pool exited with code {deployer.returncode}",
            log_path,
        )
    prefect = str(Path(sys.executable).parent / "prefect")
    names = worker_names(count)
    started: list[subprocess.Popen[bytes]] = []
    # Workers ask for runs as often as the runner would (an automation's run waits for one).
    env = {"PREFECT_WORKER_QUERY_SECONDS": str(poll_seconds())}
    for name in names:
        argv = [prefect, "worker", "start", "--pool", POOL, "--type", "process", "--name", name]
        argv += ["--limit", str(limit)]
        started.append(_spawn(settings, state, argv, prefect_home / f"worker-{name}.log", env))
    try:
        for proc, name in zip(started, names, strict=True):
            wait_until(
                f"the Prefect worker {name} (pool {POOL})",
                lambda name=name: name in _online_workers(state["api_url"], POOL),  # type: ignore[misc]
                timeout=timeout,
                proc=proc,
                log_path=prefect_home / f"worker-{name}.log",
            )
    except ServiceStartError:
        for proc in started:
            stop_process(proc)
        raise
    state["pool"] = POOL
    state["workers"] = [ProcessRef.of(proc.pid).to_dict() for proc in started]
    state["worker_names"] = names
    state["worker_limit"] = limit
    return state


def _stop_workers(state: dict[str, Any]) -> list[str]:
    """Stop the workers ``state`` records; the names of those stopped."""
    stopped = []
    for ref, name in zip(state.get("workers") or (), state.get("worker_names") or (), strict=False):
        if stop(ProcessRef.from_dict(ref)):
            stopped.append(f"worker {name}")
    state["workers"] = []
    state["worker_names"] = []
    state.pop("pool", None)
    return stopped


def install(settings: Settings, api_url: str) -> list[str]:
    """Install or update the automations (flows.automations) on the server at ``api_url``."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.automations import install_automations

    with temporary_settings({PREFECT_API_URL: api_url}):
        return install_automations(settings)


def down(settings: Settings) -> list[str]:
    """Stop everything `up` started."""
    stopped = []
    try:
        state = json.loads(_state_path(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        state = {}
    # Only the very processes `up` started (same pid and start time) are signalled;
    # a pid the OS has since given to another process is left alone.
    stopped += _stop_workers(state)
    for name in ("runner", "server"):
        if stop(_ref(state, name)):
            stopped.append(name)
    with contextlib.suppress(FileNotFoundError):
        _state_path(settings).unlink()
    if settings.store.embedded and EmbeddedStore(settings.store_dir).down():
        stopped.append("store")
    return stopped
