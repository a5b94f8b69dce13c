"""What every command module shares: the parser class, output, settings, the open vault."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from weightvault.errors import UsageError
from weightvault.logs import register_secret

if TYPE_CHECKING:  # imported when a command runs, to keep start-up fast
    from weightvault.artifacts import Vault
    from weightvault.config import Settings

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line with exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def emit(args: argparse.Namespace, human: str, data: Any) -> None:
    """Print ``data`` as JSON with --json, else the human text."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(human)


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings, honouring --home."""
    from weightvault.config import load_settings

    home = Path(args.home) if getattr(args, "home", None) else None
    return load_settings(home=home)


def open_vault(args: argparse.Namespace) -> Vault:
    """Open the vault, registering its credentials with the log redactor."""
    from weightvault.artifacts import Vault
    from weightvault.store import EmbeddedStore

    settings = settings_for(args)
    if settings.store.embedded:
        creds_file = EmbeddedStore(settings.store_dir).credentials_path
        if creds_file.is_file():
            register_secret(json.loads(creds_file.read_text())["secret_key"])
    elif settings.store.secret_key:
        register_secret(settings.store.secret_key)
    return Vault.open(settings)
