"""moto's standalone S3 server: a second, AWS-faithful S3 implementation for the store tests.

It stands in for an S3 peer (AWS S3, MinIO AIStor, Ceph RGW) and never for the
code under test: the vault talks to it over HTTP through the minio SDK exactly as
it talks to SeaweedFS. Unlike SeaweedFS it enforces AWS's rule that an upload into
an Object Lock bucket carries a checksum header.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from minio.error import S3Error

from flows.services import stop_process, wait_until
from tests.support.services import service_timeout
from weightvault.store import free_ports

__all__ = ["S3Peer", "moto_s3_server"]


@dataclass(frozen=True)
class S3Peer:
    """An S3 endpoint and the credentials the vault uses on it."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str


def _answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextlib.contextmanager
def moto_s3_server(root: Path) -> Iterator[S3Peer]:
    """`moto_server` on a free loopback port, logging to ``root/moto.log``."""
    (port,) = free_ports(1)
    log_path = root / "moto.log"
    moto = Path(sys.executable).parent / "moto_server"
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "false"}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    try:
        wait_until(
            "moto S3 server",
            lambda: _answers(port),
            timeout=service_timeout(),
            proc=proc,
            log_path=log_path,
        )
        # moto accepts any key pair; these are what the vault signs with.
        yield S3Peer("moto", f"127.0.0.1:{port}", "AKIAWEIGHTVAULTTEST", "moto-test-secret-key")
    finally:
        stop_process(proc)


def denied(call: Callable[[], object]) -> bool:
    """Whether the store answers AccessDenied; any other S3 error fails the test."""
    try:
        call()
    except S3Error as exc:
        if exc.code != "AccessDenied":
            raise
        return True
    return False
