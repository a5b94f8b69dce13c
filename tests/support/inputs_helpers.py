"""Helpers of the bad-input, crash and loose-file attack tests (tests/security/test_inputs.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from weightvault.artifacts import Vault

CLI = [sys.executable, "-m", "weightvault.cli"]
# Root ignores file modes; without these two capabilities it obeys them like any user.
NO_DAC_OVERRIDE = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
    "--",
]


def cli(
    *args: str | bytes, obey_modes: bool = False, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (``obey_modes``: as root without DAC override)."""
    prefix: list[str] = NO_DAC_OVERRIDE if obey_modes and os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, *CLI, *args],
        capture_output=True,
        text=True,
        errors="replace",
        env=os.environ.copy(),
        cwd=REPO,
        check=False,
        timeout=timeout,
    )


def assert_one_line_error(
    proc: subprocess.CompletedProcess[str], exit_code: int, *needles: str
) -> str:
    """The command failed with ``exit_code`` and one error line holding every needle."""
    assert proc.returncode == exit_code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("weightvault: error: "), line
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def vault_objects(vault: Vault) -> set[str]:
    """Every object key in the vault's tier and envelope buckets (the audit trail left out)."""
    found = set()
    for bucket in ("hot", "warm", "cold", "quarantine", "envelopes"):
        for obj in vault.store.list(vault.bucket(bucket), ""):
            found.add(f"{bucket}/{obj.key}")
    return found


def incomplete_uploads(vault: Vault) -> list[str]:
    """Multipart uploads started in a tier bucket and never completed."""
    return [
        u.key
        for tier in ("hot", "warm", "cold")
        for u in vault.store.list_incomplete_uploads(vault.bucket(tier), "")
    ]


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (skips the test if this process cannot mount)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Fill the file system of ``path`` until it has no space left."""
    with (path / "filler").open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (64 << 10))
                fh.flush()
        except OSError:
            pass
