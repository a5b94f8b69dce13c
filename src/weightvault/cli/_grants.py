"""`weightvault grant|access|revoke|grants list|show|sync|gc`: grants for collaborators.

``grant``, ``revoke`` and ``grants`` run on the vault; ``access`` runs on the
collaborator's machine with no vault home and no store credential
(``docs/grants.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from weightvault.errors import UsageError


def _recipient(text: str) -> Any:
    from weightvault.keys import parse_recipient

    path = Path(text)
    if text.lstrip().startswith("{"):
        return parse_recipient(text.encode(), "--to")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--to {text!r:.100}: cannot read it ({exc.strerror})") from None
    return parse_recipient(data, str(path))


def _grant(args: argparse.Namespace) -> int:
    from weightvault._fs import write_private
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.grants import issue_grant, parse_ttl

    issued = issue_grant(
        open_vault(args),
        args.id,
        _recipient(args.to),
        parse_ttl(args.ttl),
        files=args.files or None,
        single_use=args.single_use,
    )
    write_private(Path(args.out), issued.grant_file)
    emit(
        args,
        f"grant {issued.grant_id}: {issued.artifact_id} ({len(issued.files)} files) to "
        f"{issued.recipient} until {issued.expires_at}"
        + (", single use" if issued.single_use else "")
        + f"; log entry {issued.log_index}; hand {args.out} to the collaborator",
        {**issued.summary(), "out": args.out},
    )
    return 0


def _access(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, human_size
    from weightvault.keys import default_identity, default_passphrase, identity_path, load_identity
    from weightvault.lifecycle.grants import access_grant, read_grant_file
    from weightvault.lifecycle.trust import load_root_file

    identity = load_identity(
        identity_path(args.identity or default_identity()), default_passphrase()
    )
    result = access_grant(
        read_grant_file(Path(args.grant)),
        load_root_file(Path(args.root)),
        identity,
        Path(args.out),
        receipt_out=Path(args.receipt) if args.receipt else None,
    )
    emit(
        args,
        f"{result.artifact_id}: {result.files} files, {human_size(result.bytes)} verified into "
        f"{result.out}; receipt kept at {result.receipt} (log entry {result.log_index})",
        result.to_dict(),
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.grants import revoke_grant

    done = revoke_grant(open_vault(args), args.grant, rekey=args.rekey)
    emit(
        args,
        f"grant {args.grant} revoked ({done['removed']} copies deleted)"
        + (
            f"; it was used: artifact {done['artifact_id']} is marked for rekey"
            if done["used"] or args.rekey
            else ""
        ),
        done,
    )
    return 0


def _grants(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, emit_table, open_vault
    from weightvault.lifecycle.grants import gc_grants, list_grants, show_grant, sync_grants

    vault = open_vault(args)
    if args.grants_action == "list":
        found = [g.summary() for g in list_grants(vault)]
        rows = [
            [g["grant_id"], g["artifact_id"], g["recipient"], g["expires_at"], g["state"]]
            for g in found
        ]
        emit_table(
            args,
            ("grant", "artifact", "recipient", "expires", "state"),
            rows,
            found,
            empty="no grants",
        )
    elif args.grants_action == "show":
        if not args.grant:
            raise UsageError("grants show needs a GRANT id")
        shown = show_grant(vault, args.grant).summary()
        emit(args, "\n".join(f"{k}: {v}" for k, v in shown.items()), shown)
    elif args.grants_action == "sync":
        recorded = sync_grants(vault)
        lines = [f"{r['grant_id']}: {r['outcome']} ({r['recipient']})" for r in recorded]
        emit(args, "\n".join(lines) or "no new receipts", recorded)
    elif args.grants_action == "revoke":
        from weightvault.lifecycle.grants import revoke_grants_of

        if not (args.recipient or args.issuer) or args.grant:
            raise UsageError("grants revoke takes --recipient NAME or --issuer NAME, no GRANT")
        done, skipped = revoke_grants_of(vault, recipient=args.recipient, issuer=args.issuer)
        lines = [
            f"{d['grant_id']}: revoked ({d['removed']} copies deleted)"
            + ("; used: its artifact is marked for rekey" if d["used"] else "")
            for d in done
        ]
        lines += [f"{g}: already revoked" for g in skipped]
        emit(args, "\n".join(lines) or "no grants match", {"revoked": done, "skipped": skipped})
    else:
        collected = gc_grants(vault)
        emit(args, "\n".join(collected) or "no expired grant copies", {"collected": collected})
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the grant commands."""
    p = sub.add_parser(
        "grant", help="time-boxed access to one artifact for a collaborator", parents=[common]
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument(
        "--to", required=True, help="the collaborator's `identity export --recipient` (a file)"
    )
    p.add_argument("--ttl", required=True, help="how long: 30s, 15m, 2h, 1d (at most 7d)")
    p.add_argument("--files", nargs="+", metavar="PATH", help="only these files of the artifact")
    p.add_argument("--single-use", action="store_true", help="refuse a second access")
    p.add_argument("--out", required=True, metavar="FILE", help="the grant file to hand over")
    p.set_defaults(func=_grant)
    p = sub.add_parser(
        "access", help="read a granted artifact (collaborator side, no vault)", parents=[common]
    )
    p.add_argument("grant", metavar="GRANT", help="the grant file")
    p.add_argument(
        "--root", required=True, metavar="FILE", help="the vault's trust root you pinned"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="directory to create for the files (must not hold files)",
    )
    p.add_argument("--identity", help="your identity (default WEIGHTVAULT_IDENTITY)")
    p.add_argument("--receipt", metavar="FILE", help="where to keep the receipt (DIR.receipt.json)")
    p.set_defaults(func=_access)
    p = sub.add_parser("revoke", help="stop future use of a grant", parents=[common])
    p.add_argument("grant", metavar="GRANT", help="the grant id")
    p.add_argument(
        "--rekey", action="store_true", help="mark the artifact for rekey even if no receipt"
    )
    p.set_defaults(func=_revoke)
    p = sub.add_parser("grants", help="list, show, sync receipts, gc", parents=[common])
    p.add_argument(
        "grants_action",
        choices=["list", "show", "sync", "gc", "revoke"],
        metavar="ACTION",
        help="list, show, sync (receipts), gc or revoke",
    )
    p.add_argument("grant", nargs="?", metavar="GRANT", help="the grant id (show, revoke)")
    p.add_argument("--recipient", help="revoke: every grant issued to this collaborator")
    p.add_argument("--issuer", help="revoke: every grant this principal issued")
    p.set_defaults(func=_grants)
