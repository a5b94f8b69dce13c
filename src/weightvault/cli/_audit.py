"""`weightvault audit log-key|hash|show|search|verify|prove|check-proof`: the transparency log
of every operation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from weightvault.errors import InvalidInputError, NotFoundError, UsageError


def _log_key(args: argparse.Namespace) -> int:
    from weightvault.artifacts import log_keys, log_origin
    from weightvault.cli._common import emit, open_vault

    vault = open_vault(args)
    origin = log_origin(vault.settings)
    found = log_keys(vault.keys, origin)
    data = {"origin": origin, **found.vkeys}
    emit(args, found.vkeys["ed25519"], data)
    return 0


def _hash(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault

    digest = open_vault(args).private(args.value)
    emit(args, digest, {"hash": digest})
    return 0


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    if args.limit < 1:
        raise InvalidInputError("--limit must be at least 1")
    return {
        "artifact_id": args.artifact,
        "principal": args.principal,
        "kind": args.kind,
        "phase": args.phase,
        "outcome": args.outcome,
        "since": args.since,
        "until": args.until,
        "limit": args.limit,
    }


def _line(row: dict[str, Any]) -> str:
    result = row["phase"] if row["phase"] == "intent" else f"{row['outcome']}"
    reason = f" ({row['reason']})" if row.get("reason") else ""
    artifact = f" {row['artifact_id']}" if row["artifact_id"] else ""
    return (
        f"{row['idx']:>6}  {row['ts']}  {row['kind']}{artifact}  {result}{reason}"
        f"  by {row['principal']}  op {row['op']}"
    )


def _show(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault

    vault = open_vault(args)
    filters = _filters(args)
    rows = vault.catalog.log_search(**filters, ref=args.event)
    if args.event and not rows:
        raise NotFoundError(f"no log entry or operation {args.event!r} in the index")
    human = "\n".join(_line(r) for r in rows) or "no matching log entries"
    emit(args, human, {"entries": rows})
    return 0


def _search(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit_table, open_vault

    rows = open_vault(args).catalog.log_search(**_filters(args))
    columns = ("index", "ts", "kind", "artifact", "phase", "outcome", "principal", "reason")
    cells = [
        (
            r["idx"],
            r["ts"],
            r["kind"],
            r["artifact_id"] or "-",
            r["phase"],
            r["outcome"] or "-",
            r["principal"],
            r["reason"] or "",
        )
        for r in rows
    ]
    emit_table(args, columns, cells, {"entries": rows}, empty="no matching log entries")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.audit import render_report, verify_audit

    report, counts = verify_audit(open_vault(args))
    emit(args, render_report(report, counts), {**report.to_dict(), "index": counts})
    report.raise_for_problems()
    return 0


_MAX_INPUT = 1 << 20


def _read_input(path: Path, what: str) -> bytes:
    from weightvault._fs import source_read_error

    try:
        with path.open("rb") as f:
            data = f.read(_MAX_INPUT + 1)
    except FileNotFoundError:
        raise InvalidInputError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise source_read_error(exc, path) from None
    if len(data) > _MAX_INPUT:
        raise InvalidInputError(f"{what} {path} is larger than {_MAX_INPUT} bytes")
    return data


def _write_output(path: Path, data: bytes) -> None:
    from weightvault._fs import local_write_error

    try:
        path.write_bytes(data)
    except OSError as exc:
        raise local_write_error(exc, path) from None


def _prove(args: argparse.Namespace) -> int:
    import sys

    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.audit import prove_event

    found = prove_event(open_vault(args), args.event)
    if args.entry is not None:
        _write_output(args.entry, found.entry)
    data = found.summary()
    if args.out is not None:
        _write_output(args.out, found.proof)
        emit(args, f"proof of log entry {found.index} (size {found.size}) in {args.out}", data)
    elif getattr(args, "json", False):
        emit(args, "", data)
    else:
        sys.stdout.write(found.proof.decode())
    return 0


def _check_proof(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.lifecycle.audit import check_proof
    from weightvault.lifecycle.trust import load_root_file

    vkeys = list(args.vkey or [])
    if args.trust_root is not None:
        vkeys += load_root_file(args.trust_root).log
    if not vkeys:
        raise UsageError("check-proof needs the log's keys: --vkey V (repeatable) or --trust-root")
    checked = check_proof(_read_input(args.proof, "proof"), _read_input(args.entry, "entry"), vkeys)
    human = (
        f"ok: log entry {checked.index} is in {checked.origin} at size {checked.size} "
        f"(root {checked.root}), signed by {', '.join(checked.verifiers)}"
    )
    emit(args, human, checked.to_dict())
    return 0


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifact", help="artifact id")
    p.add_argument("--principal", help="acting principal's name")
    p.add_argument("--kind", help="event kind, e.g. artifact.read")
    p.add_argument("--phase", choices=["intent", "outcome"], help="only intents or only outcomes")
    p.add_argument(
        "--outcome", choices=["ok", "failed", "refused"], help="only outcomes that ended so"
    )
    p.add_argument("--since", help="ISO time: entries at or after it")
    p.add_argument("--until", help="ISO time: entries before it")
    p.add_argument(
        "--limit", type=int, default=1000, help="at most this many entries (default 1000)"
    )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``audit`` command group."""
    audit = sub.add_parser(
        "audit", help="the transparency log of every operation", parents=[common]
    )
    asub = audit.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=type(audit))
    asub.required = True
    p = asub.add_parser(
        "log-key", help="the log's Ed25519 verifier key (c2sp signed-note vkey)", parents=[common]
    )
    p.set_defaults(func=_log_key)
    p = asub.add_parser(
        "hash", help="the HMAC under which the log stores a private value", parents=[common]
    )
    p.add_argument("value", help="the value (a path, a host name) to hash as the log does")
    p.set_defaults(func=_hash)
    p = asub.add_parser("show", help="log entries, or one entry or operation", parents=[common])
    p.add_argument("event", nargs="?", help="an event id, an operation id or a log index")
    _add_filters(p)
    p.set_defaults(func=_show)
    p = asub.add_parser("search", help="log entries as a table", parents=[common])
    _add_filters(p)
    p.set_defaults(func=_search)
    p = asub.add_parser(
        "verify",
        help="check the whole log, its signatures, witnesses and the catalog's index of it",
        parents=[common],
    )
    p.set_defaults(func=_verify)
    p = asub.add_parser(
        "prove", help="the c2sp tlog-proof of one entry, for offline checks", parents=[common]
    )
    p.add_argument("event", help="an event id, an operation id (its outcome) or #INDEX")
    p.add_argument("--out", type=Path, help="write the proof here (default: stdout)")
    p.add_argument("--entry", type=Path, help="also write the entry's exact bytes here")
    p.set_defaults(func=_prove)
    p = asub.add_parser(
        "check-proof",
        help="check a tlog-proof of an entry offline, with the log's verifier keys",
        parents=[common],
    )
    p.add_argument("proof", type=Path, help="a .tlog-proof file")
    p.add_argument("--entry", type=Path, required=True, help="the entry's exact bytes")
    p.add_argument("--vkey", action="append", help="a log verifier key (repeat for each)")
    p.add_argument("--trust-root", type=Path, help="take the log's keys from this trust root")
    p.set_defaults(func=_check_proof)
