"""``weightvault recover ID``: rebuild an artifact from its kit, certify it, restore it."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the recover command."""
    p = sub.add_parser(
        "recover",
        help="rebuild an artifact from its rebuild kit; certify it; --restore lost objects",
        parents=[common],
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument(
        "--restore",
        action="store_true",
        help="after a bit-identical rebuild, put the files back (fresh DEK, new objects)",
    )
    p.add_argument(
        "--environment",
        default="auto",
        choices=["auto", "current", "isolated"],
        help="auto: this interpreter when it has every pin of the lock, else an isolated venv",
    )
    p.set_defaults(func=_recover)


def _recover(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.recover import recover

    vault = open_vault(args)
    report = recover(vault, args.id, restore_files=args.restore, environment_mode=args.environment)
    done = "rebuilt bit-identical and restored" if report.restored else "rebuilt bit-identical"
    cert = report.certificate or {}
    emit(
        args,
        f"{report.artifact_id}: {done} ({report.content_digest}); "
        f"certificate {cert.get('key', '-')}",
        report.to_dict(),
    )
    return 0
