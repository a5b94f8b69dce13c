"""Every command and option of the CLI has help, in plain text a terminal shows as is."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version

from tests.conftest import REPO
from weightvault.cli._app import build_parser

# argparse offers no public walk of a parser tree: its private attributes are the way.
_SUBPARSERS = argparse._SubParsersAction  # noqa: SLF001
_HELP = argparse._HelpAction  # noqa: SLF001


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return list(parser._actions)  # noqa: SLF001


def _parsers(
    parser: argparse.ArgumentParser, path: str = "weightvault"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in _actions(parser):
        if isinstance(action, _SUBPARSERS):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def _texts(parser: argparse.ArgumentParser) -> Iterator[str]:
    yield parser.description or ""
    yield parser.epilog or ""
    for action in _actions(parser):
        yield action.help if isinstance(action.help, str) else ""
        if isinstance(action, _SUBPARSERS):
            yield from (c.help or "" for c in action._choices_actions)  # noqa: SLF001


def test_every_option_and_argument_has_help() -> None:
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in _actions(parser):
            if isinstance(action, _HELP | _SUBPARSERS):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_texts_hold_no_rst_markup() -> None:
    found = [
        f"{path}: {text}"
        for path, parser in _parsers(build_parser())
        for text in _texts(parser)
        if "``" in text or ":class:" in text or ":func:" in text
    ]
    assert found == []


def test_version_is_the_installed_package_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "weightvault.cli", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"weightvault {version('weightvault')}"
