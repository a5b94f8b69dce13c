"""What every command module shares: the parser class, output, settings, the open vault."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from weightvault.errors import (
    ConfirmationError,
    IncompleteError,
    InvalidInputError,
    OutputUnwritableError,
    UsageError,
)
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


def emit_report(args: argparse.Namespace, markdown: str, data: Any) -> None:
    """A markdown report: rendered on a terminal, as markdown text when piped, JSON with --json."""
    if getattr(args, "json", False) or not sys.stdout.isatty():
        emit(args, markdown, data)
    else:
        from weightvault.cli._progress import show_markdown

        show_markdown(markdown)


def emit_table(
    args: argparse.Namespace,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    data: Any,
    *,
    empty: str = "nothing to list",
) -> None:
    """Rows as a rich table on a terminal, aligned plain text when piped, JSON with --json."""
    if getattr(args, "json", False):
        emit(args, "", data)
        return
    cells = [[str(c) for c in row] for row in rows]
    if not cells:
        print(empty)
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns, box=None, header_style="bold")
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(columns)]
    for row in [list(columns), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def human_size(size: int) -> str:
    """A byte count as people read it (decimal units: ``1.5 MB``)."""
    from rich.filesize import decimal

    return decimal(size)


def confirm(question: str, *, refused: str, no_tty: str) -> None:
    """Ask ``question`` on the terminal; ConfirmationError unless the answer is yes.

    Without a terminal on stdin there is nobody to ask: ConfirmationError ``no_tty``.
    """
    if not sys.stdin.isatty():
        raise ConfirmationError(no_tty)
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    if answer.strip().lower() not in {"y", "yes"}:
        raise ConfirmationError(refused)


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings, honouring --home."""
    from weightvault.config import load_settings

    home = Path(args.home) if getattr(args, "home", None) else None
    if home is not None and home.exists() and not home.is_dir():
        raise InvalidInputError(f"--home {home} is not a directory")
    settings = load_settings(home=home)
    if settings.home.exists() and not settings.home.is_dir():
        raise InvalidInputError(f"the vault home {settings.home} is not a directory")
    return settings


def check_output_parent(path: Path, option: str) -> None:
    """OutputUnwritableError unless the directory that is to hold ``path`` exists."""
    parent = path.absolute().parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OutputUnwritableError(f"{option} {path}: its parent directory {parent} {what}")


def open_vault(args: argparse.Namespace) -> Vault:
    """Open the vault, registering its credentials with the log redactor."""
    from weightvault.artifacts import Vault
    from weightvault.store import EmbeddedStore

    settings = settings_for(args)
    if settings.store.embedded:
        server = EmbeddedStore.of(settings)
        if server.credentials_path.is_file():
            register_secret(server.credentials().secret_key)
        for creds in server.role_credentials().values():
            register_secret(creds.secret_key)
    elif settings.store.secret_key:
        register_secret(settings.store.secret_key)
    vault = Vault.open(settings)
    vault.sweep_staging()
    return vault


_CLEAR_SCREEN = "\033[2J\033[3J\033[H"  # screen and scrollback, cursor home


def show_shares_one_at_a_time(shares: Sequence[str], *, again: str) -> None:
    """On a terminal: each custodian presses Enter, reads their share, presses Enter to clear it.

    Stopped early, the shares not shown are lost: IncompleteError says to run ``again``.
    """
    total = len(shares)
    for i, mnemonic in enumerate(shares, start=1):
        try:
            input(f"Custodian {i} of {total} alone at the screen: press Enter to show share {i}. ")
            print(f"share {i}: {mnemonic}", flush=True)
            input("Write it down, then press Enter to clear the screen. ")
        except (EOFError, KeyboardInterrupt):
            raise IncompleteError(
                f"share display stopped at share {i} of {total}; the shares not shown are "
                f"lost: run `{again}` again"
            ) from None
        finally:
            print(_CLEAR_SCREEN, end="", flush=True)
    print(f"{total} shares shown once each; none is stored by the vault.")
