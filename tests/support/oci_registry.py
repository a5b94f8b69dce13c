"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8) on loopback.

Installed by ``.ci/install-tools`` (with ``skopeo``). The registry listens on a
free 127.0.0.1 port and keeps its blobs in a temporary directory of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from flows.services import ServiceStartError, stop_process
from tests.support.services import service_timeout
from weightvault.store import free_ports

REGISTRY = "/usr/bin/docker-registry"

__all__ = ["REGISTRY", "docker_registry", "missing_tools"]


def missing_tools() -> list[str]:
    """The OCI tools this machine lacks (``skopeo``, ``docker-registry``)."""
    return [t for t in ("skopeo", "docker-registry") if shutil.which(t) is None]


@contextlib.contextmanager
def docker_registry(root: Path) -> Iterator[str]:
    """Serve a registry on a free loopback port until the block ends; yields ``host:port``."""
    port = free_ports(1)[0]
    data = root / "registry"
    data.mkdir(parents=True)
    config = root / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen(
        [REGISTRY, "serve", str(config)], stdout=log, stderr=log, start_new_session=True
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + service_timeout()
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServiceStartError(
                    "docker-registry", f"not serving on {address}", root / "registry.log"
                )
            time.sleep(0.1)
        yield address
    finally:
        stop_process(proc)
        log.close()
