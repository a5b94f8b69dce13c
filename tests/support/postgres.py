"""A real PostgreSQL for the tests: Debian's server binaries, a throwaway cluster.

`initdb` into a fresh directory (password authentication, scram-sha-256), then
`pg_ctl start` on a free loopback port with no Unix socket and durability off (a
test cluster is thrown away). PostgreSQL refuses to run as root, so as root the
cluster is owned and run by the `postgres` system user (through `setpriv`).
`.ci/install-tools` installs the `postgresql` package; without it these tests skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from weightvault.store import free_ports

USER = "weightvault"
_SYSTEM_USER = "postgres"


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    """A running test cluster: where it listens and the superuser's credentials."""

    host: str
    port: int
    user: str
    password: str
    data_dir: Path
    bin_dir: Path

    def url(self, driver: str = "postgresql", database: str = "postgres") -> str:
        """A SQLAlchemy/libpq URL for ``database`` with ``driver`` as its scheme."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its plain ``postgresql://`` URL."""
        self._run("createdb", name)
        return self.url(database=name)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [
                str(self.bin_dir / tool),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                *args,
            ],
            env={**os.environ, "PGPASSWORD": self.password},
            check=True,
            capture_output=True,
        )


def _as_system_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={_SYSTEM_USER}", f"--regid={_SYSTEM_USER}", "--init-groups"]


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL cluster on a free loopback port; stop and remove it after."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (bash .ci/install-tools)")
    root = Path(tempfile.mkdtemp(prefix="wv-pg-"))
    password = secrets.token_urlsafe(18)
    data_dir = root / "data"
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        owner = pwd.getpwnam(_SYSTEM_USER)
        os.chmod(root, 0o755)  # noqa: S103 - the postgres user must reach its data dir
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    pwfile.chmod(0o600)
    prefix = _as_system_user()
    log = root / "server.log"
    try:
        subprocess.run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                USER,
                "--pwfile",
                str(pwfile),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        for attempt in range(3):
            port = free_ports(1)[0]
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            started = subprocess.run(
                [
                    *prefix,
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                check=False,
                capture_output=True,
            )
            if started.returncode == 0:
                break
            if attempt == 2:
                raise RuntimeError(f"pg_ctl start failed:\n{log.read_text(errors='replace')}")
        yield PostgresServer("127.0.0.1", port, USER, password, data_dir, bin_dir)
    finally:
        if (data_dir / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"],
                check=False,
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)
