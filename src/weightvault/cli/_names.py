"""``label`` and ``alias set|rm|ls``: amendments recorded in the signed log."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from weightvault.cli._common import emit, emit_table, open_vault
from weightvault.errors import InvalidInputError, UsageError


def parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a dict; InvalidInputError for one without ``=``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"label {pair[:100]!r} is not KEY=VALUE")
        out[key] = value
    return out


def _label(args: argparse.Namespace) -> int:
    from weightvault.lifecycle.names import label

    vault = open_vault(args)
    labels = label(vault, args.id, parse_labels(args.pairs), args.remove)
    shown = ", ".join(f"{k}={v}" for k, v in labels.items()) or "none"
    row = vault.resolve(args.id)
    emit(args, f"{row.id}: labels {shown}", {"artifact_id": row.id, "labels": labels})
    return 0


def _alias(args: argparse.Namespace) -> int:
    from weightvault.lifecycle import names

    vault = open_vault(args)
    if args.action == "ls":
        if args.target is not None:
            raise UsageError("alias ls takes at most a NAME")
        found = names.aliases(vault, args.alias)
        emit_table(
            args,
            ("ALIAS", "ARTIFACT", "SET", "BY", "LOG ENTRY"),
            [(t.alias, t.artifact_id, t.ts, t.by or "-", t.index) for t in found],
            [t.__dict__ for t in found],
            empty="no aliases (set one with `weightvault alias set NAME@ALIAS ID`)",
        )
        return 0
    if args.alias is None:
        raise UsageError(f"alias {args.action} needs NAME@ALIAS")
    if args.action == "set":
        if args.target is None:
            raise UsageError("alias set needs NAME@ALIAS and an artifact ID")
        move = names.set_alias(vault, args.alias, args.target)
        was = (
            f" (was {move.previous})" if move.previous and move.previous != move.artifact_id else ""
        )
        human = f"{move.alias} -> {move.artifact_id}{was}, log entry {move.index}"
    else:
        if args.target is not None:
            raise UsageError("alias rm takes only NAME@ALIAS")
        move = names.remove_alias(vault, args.alias)
        human = f"{move.alias} removed (pointed at {move.previous}), log entry {move.index}"
    emit(args, human, move.__dict__)
    return 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``label`` and ``alias``."""
    p = sub.add_parser(
        "label",
        help="set or remove labels of an artifact (a signed amendment in the log)",
        description="set or remove labels of an artifact (a signed amendment in the log)",
        parents=[common],
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument("pairs", nargs="*", metavar="KEY=VALUE", help="labels to set")
    p.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="KEY",
        help="a label to remove (repeatable)",
    )
    p.set_defaults(func=_label)
    p = sub.add_parser(
        "alias",
        help="point NAME@ALIAS at an artifact version; accepted wherever an id is",
        description="point NAME@ALIAS at an artifact version; accepted wherever an id is",
        parents=[common],
    )
    p.add_argument("action", choices=["set", "rm", "ls"], help="set, rm (remove) or ls (list)")
    p.add_argument(
        "alias", nargs="?", metavar="NAME@ALIAS", help="the alias (for ls: a NAME to list)"
    )
    p.add_argument("target", nargs="?", metavar="ID", help="for set: the artifact to point at")
    p.set_defaults(func=_alias)
