"""Every service a test fixture starts, with one generous deadline and a failure that says why.

The services are the real ones: SeaweedFS (`EmbeddedStore`), `prefect server start`
and the deployment runner (`flows.services`). Each may take up to
``WEIGHTVAULT_TEST_SERVICE_TIMEOUT`` seconds (default 180) to become ready: a loaded
2-core machine can take minutes to start a Prefect server. A service that does not
come up fails the fixture with `flows.services.ServiceStartError`, whose message
names the service and quotes the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flows.services import (
    ServiceStartError,
    drain_prefect_workers,
    start_embedded_store,
    start_prefect_server,
    start_store,
    stop_process,
    up,
)
from weightvault.config import Settings
from weightvault.store import EmbeddedStore, ServerStatus

TIMEOUT_ENV = "WEIGHTVAULT_TEST_SERVICE_TIMEOUT"
DEFAULT_TIMEOUT = 180.0

__all__ = [
    "ServiceStartError",
    "prefect_api_server",
    "service_timeout",
    "start_services",
    "start_test_store",
    "start_vault_store",
]


def service_timeout() -> float:
    """Seconds each service may take to become ready (``WEIGHTVAULT_TEST_SERVICE_TIMEOUT``)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError as exc:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from exc
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} must be positive")
    return value


def start_test_store(store: EmbeddedStore) -> ServerStatus:
    """Start SeaweedFS for ``store``; return once it answers S3 with its credentials."""
    return start_embedded_store(store, timeout=service_timeout())


def start_vault_store(settings: Settings) -> None:
    """`weightvault init` for ``settings``, its embedded store started with the test deadline."""
    start_store(settings, timeout=service_timeout())


def start_services(settings: Settings) -> dict[str, Any]:
    """`weightvault up` for ``settings``: store, Prefect server and deployment runner."""
    return up(settings, timeout=service_timeout())


@contextlib.contextmanager
def prefect_api_server(root: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real Prefect API server; this process's flows report to it.

    It is `prefect server start` as `weightvault up` runs it, without the UI and the
    scheduler, logging to ``root/prefect/server.log``; its database is SQLite under
    ``root`` unless ``env`` names another. Yields the API URL.
    """
    server, api_url = start_prefect_server(
        root / "prefect",
        timeout=service_timeout(),
        options=("--no-ui", "--no-scheduler", "--no-late-runs"),
        env=env,
    )
    try:
        with reporting_to(api_url):
            yield api_url
    finally:
        stop_process(server)


@contextlib.contextmanager
def reporting_to(api_url: str) -> Iterator[None]:
    """This process's flows, logs and events go to the Prefect API at ``api_url``."""
    import prefect.context
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        temporary_settings,
    )

    updates = {PREFECT_API_URL: api_url, PREFECT_SERVER_EPHEMERAL_ENABLED: False}
    with temporary_settings(updates=updates):
        # As prefect_test_harness does: code running in a context copied before
        # this point (background threads) sees this server too.
        global_context = getattr(prefect.context, "_temporary_global_settings_context", None)
        with (
            global_context(prefect.context.get_settings_context())
            if global_context
            else contextlib.nullcontext()
        ):
            try:
                yield
            finally:
                drain_prefect_workers()
