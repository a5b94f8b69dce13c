"""`weightvault dr split-master|restore-home|drill`: rebuild a lost vault home; rehearse DR.

``split-master`` splits the master key into k-of-n SLIP-39 shares, shown once
(one at a time on a terminal, or one 0600 file per custodian with
``--out-dir``) and never stored. ``restore-home --home NEW_HOME`` rebuilds the
home from the store (found through weightvault.toml / ``WEIGHTVAULT_*``) and k
shares read from stdin, one per line, or from ``--share-file`` files. ``drill``
rehearses on a scratch vault (:mod:`weightvault.lifecycle.drill`) and prints its report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from weightvault.cli._common import show_shares_one_at_a_time
from weightvault.errors import ConfigError, InvalidInputError, UsageError

_WARNING = (
    "!! These shares ARE the vault's master key: any {k} of them open every hot and warm key.\n"
    "!! Each custodian keeps one, offline; the vault stores none of them and will not show "
    "them again."
)


def _split_master(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle import dr

    if not args.out_dir and (args.json or not (sys.stdin.isatty() and sys.stdout.isatty())):
        # All n shares in one stream would let whoever sees it recover the key alone.
        raise UsageError(
            "without --out-dir, dr split-master shows the shares one at a time on a terminal "
            "(not piped, not with --json); pass --out-dir DIR to write one 0600 file per custodian"
        )
    if args.out_dir:
        out = Path(args.out_dir)
        if out.exists() and any(out.iterdir()):
            raise InvalidInputError(f"--out-dir {out} exists and is not empty")
    vault = open_vault(args)
    asked = {"threshold": args.threshold, "shares": args.shares, "replace": bool(args.replace)}
    with vault.operation("dr.master_split", details=asked) as op:
        split = dr.split_master(
            vault.settings,
            vault.store,
            threshold=args.threshold,
            shares=args.shares,
            replace=args.replace,
        )
        details = {
            "threshold": split.threshold,
            "shares": len(split.shares),
            "replaced": split.replaced,
        }
        op.details.update(details)
    head = (
        f"master key split: {split.threshold} of {len(split.shares)} shares recover it\n"
        + _WARNING.format(k=split.threshold)
    )
    data: dict[str, Any] = dict(details)
    if args.out_dir:
        paths = dr.write_share_files(split, Path(args.out_dir))
        data["files"] = [str(p) for p in paths]
        emit(args, head + "\nshare files (mode 0600):\n" + "\n".join(map(str, paths)), data)
    else:
        emit(args, head, data)
        show_shares_one_at_a_time(split.shares, again="weightvault dr split-master --replace")
    return 0


def _read_shares(args: argparse.Namespace) -> list[str]:
    from weightvault.lifecycle import dr

    if args.share_file:
        shares: list[str] = []
        for name in args.share_file:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInputError(
                    f"cannot read share file {name} ({type(exc).__name__})"
                ) from None
            shares.extend(dr.parse_shares(text))
        return shares
    if sys.stdin.isatty():
        print("Enter the master-key shares, one per line; end with Ctrl-D.", file=sys.stderr)
    return dr.parse_shares(sys.stdin.read())


def _restore_home(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, settings_for
    from weightvault.lifecycle import dr
    from weightvault.logs import register_secret
    from weightvault.store import connect

    if not args.home:
        raise UsageError("dr restore-home needs --home NEW_HOME (the home to rebuild)")
    settings = settings_for(args)
    if settings.store.embedded:
        raise ConfigError(
            "dr restore-home needs the store's endpoint (WEIGHTVAULT_S3_ENDPOINT or "
            "weightvault.toml): an embedded store lived in the lost home"
        )
    if settings.store.secret_key:
        register_secret(settings.store.secret_key)
    dr.check_new_home(settings)
    shares = _read_shares(args)
    report = dr.restore_home(settings, connect(settings), shares)
    counts = report["catalog"]
    emit(
        args,
        f"vault home {report['home']} restored: keystore version {report['keystore_version']}, "
        f"{counts['artifacts']} artifact(s) and {counts['events']} event(s) re-indexed",
        report,
    )
    return 0


def _drill(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit_report, open_vault
    from weightvault.lifecycle import drill

    report = drill.run_drill(
        open_vault(args), sample=args.sample, artifact_ids=tuple(args.artifacts or ())
    )
    emit_report(args, str(report["markdown"]), report)
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``dr`` command group."""
    dr = sub.add_parser(
        "dr", help="disaster recovery: split the master key, restore the home, drill"
    )
    dsub = dr.add_subparsers(dest="dr_command", metavar="ACTION", parser_class=type(dr))
    dsub.required = True
    p = dsub.add_parser(
        "split-master", help="split the master key into k-of-n SLIP-39 shares", parents=[common]
    )
    p.add_argument(
        "--threshold",
        type=int,
        default=3,
        help="how many shares recover the master key (default 3)",
    )
    p.add_argument("--shares", type=int, default=5, help="how many shares to make (default 5)")
    p.add_argument("--out-dir", help="write one 0600 share file per custodian here")
    p.add_argument("--replace", action="store_true", help="split again though a split was made")
    p.set_defaults(func=_split_master)
    p = dsub.add_parser(
        "restore-home",
        help="rebuild a lost vault home from the store and k master-key shares",
        parents=[common],
    )
    p.add_argument(
        "--share-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a file holding one share (repeatable); else shares are read from stdin",
    )
    p.set_defaults(func=_restore_home)
    p = dsub.add_parser(
        "drill",
        help="rehearse disaster recovery on a scratch vault (never on live data); report",
        parents=[common],
    )
    p.add_argument("--sample", type=int, default=2, help="newest hot/warm artifacts to rehearse")
    p.add_argument("--artifacts", nargs="+", metavar="ID", help="rehearse these artifacts")
    p.set_defaults(func=_drill)
