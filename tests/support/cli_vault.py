"""A vault on the session's S3 server that CLI subprocesses can reach, with its trust root.

Modules that drive the CLI and the library on one vault (grants, containment)
need the same setup: the vault's settings in ``WEIGHTVAULT_*`` variables, an
initialised vault under its own bucket prefix, a trust root and that root
written to a file (what an offline verifier pins).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.lifecycle.trust import current_root, init_root
from weightvault.store import EmbeddedStore

REPO = Path(__file__).resolve().parents[2]
VAULT_ENV = (
    "WEIGHTVAULT_HOME",
    "WEIGHTVAULT_S3_ENDPOINT",
    "WEIGHTVAULT_S3_ACCESS_KEY",
    "WEIGHTVAULT_S3_SECRET_KEY",
    "WEIGHTVAULT_BUCKET_PREFIX",
)


@dataclass(frozen=True)
class CliVault:
    """The vault, its settings, its pinned root file and the environment a CLI run needs."""

    settings: Settings
    vault: Vault
    root: Path
    env: dict[str, str]


def cli_vault(s3_server: EmbeddedStore, work: Path) -> CliVault:
    """Initialise a vault under ``work/home`` on ``s3_server`` (own prefix), with a trust root."""
    creds = s3_server.credentials()
    values = {
        "WEIGHTVAULT_HOME": str(work / "home"),
        "WEIGHTVAULT_S3_ENDPOINT": s3_server.endpoint(),
        "WEIGHTVAULT_S3_ACCESS_KEY": creds.access_key,
        "WEIGHTVAULT_S3_SECRET_KEY": creds.secret_key,
        "WEIGHTVAULT_BUCKET_PREFIX": f"t{uuid.uuid4().hex[:10]}",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in values.items():
            mp.setenv(name, value)
        settings = load_settings(REPO / "config")
        init_vault(settings)
    vault = Vault.open(settings)
    init_root(vault)
    found = current_root(vault)
    assert found is not None
    root = work / "root.json"
    root.write_bytes(found.to_bytes())
    env = {**{k: v for k, v in os.environ.items() if k not in VAULT_ENV}, **values}
    return CliVault(settings, vault, root, env)


def run_repo_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``weightvault ARGS`` in a subprocess from the checkout, on the repo's config and
    this process's ``WEIGHTVAULT_*`` environment (what a fixture set)."""
    return subprocess.run(
        [sys.executable, "-m", "weightvault.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "WEIGHTVAULT_CONFIG": str(REPO / "config" / "weightvault.toml")},
        check=False,
    )
