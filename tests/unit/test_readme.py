"""The README lists every command the CLI has, and links only to files in the repo."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from weightvault.cli._app import build_parser

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CELL = re.compile(r"(?<!\\)\|")
CODE = re.compile(r"`([^`]+)`")
# [text](target) and [text]: target, outside code spans
INLINE_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)")
REFERENCE_LINK = re.compile(r"^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    """Every command path of the CLI: subparsers, and a command's first positional choices
    (``store up|down``, ``grants list|show``), which the CLI dispatches as subcommands."""
    positional_choices_seen = False
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                yield " ".join((*prefix, name))
                yield from commands(sub, (*prefix, name))
        elif prefix and not action.option_strings and action.choices:
            if not positional_choices_seen:
                yield from (" ".join((*prefix, str(c))) for c in action.choices)
            positional_choices_seen = True


def documented() -> set[str]:
    """The command paths the README's "Everyday use" table names in its first column.

    A cell's code span names a command (``weightvault `` optional) and, as its next
    word, one subcommand or several separated by ``\\|``: `audit show\\|verify`.
    """
    text = README.read_text(encoding="utf-8")
    table = text.split("## Everyday use", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        first = CELL.split(line)[1]
        for span in CODE.findall(first):
            words = span.split()
            if words and words[0] == "weightvault":
                words = words[1:]
            if not words:
                continue
            heads = words[0].split("\\|")
            named.update(heads)
            if len(words) > 1 and re.fullmatch(r"[a-z][a-z-]*(\\\|[a-z][a-z-]*)*", words[1]):
                named.update(f"{head} {sub}" for head in heads for sub in words[1].split("\\|"))
    return named


def test_every_command_and_subcommand_is_in_the_readme() -> None:
    cli = set(commands(build_parser()))
    assert {"put", "audit verify", "store up", "grants list", "up"} <= cli  # the walk works
    missing = sorted(cli - documented())
    assert not missing, f"README's Everyday use table does not name: {missing}"


def test_the_table_parser_reads_alternatives() -> None:
    named = documented()
    assert {"audit log-key", "audit check-proof", "incident resolve", "down"} <= named
    assert "audit NAME" not in named


def test_every_link_in_the_readme_resolves_to_a_file_in_the_repo() -> None:
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`]*`", "", text)
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    assert targets, "the README has links"
    for target in targets:
        path = target.split("#", 1)[0]
        assert "://" not in target, f"link outside the repo: {target}"
        assert not path.startswith("/"), f"absolute link: {target}"
        resolved = (README.parent / path).resolve()
        assert REPO in (resolved, *resolved.parents), f"link leaves the repo: {target}"
        assert resolved.exists(), f"link to a missing file: {target}"
