"""The ``weightvault`` command line.

Every failure prints one line to stderr and exits with the code of its error
class (see :mod:`weightvault.errors`); tracebacks only with WEIGHTVAULT_DEBUG=1.
Commands that need Prefect (``demo``, ``up``, ``down``, flows) are plugged in
through the ``weightvault.commands`` entry point group, so this module never
imports Prefect.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from weightvault.cli import (
    _approvals,
    _audit,
    _contain,
    _dr,
    _grants,
    _identity,
    _incidents,
    _keys,
    _policy,
    _recover,
    _store,
    _tiers,
    _trust,
    _witness,
)
from weightvault.cli._common import Handler, Parser, emit, emit_table, open_vault, settings_for
from weightvault.cli._progress import transfer
from weightvault.config import Settings, environment
from weightvault.errors import (
    DiskFullError,
    InvalidInputError,
    SourceUnreadableError,
    StoreCapabilityError,
    UsageError,
    VaultError,
)
from weightvault.logs import configure_logging, scrub_text

# Core command groups in their own modules; each has register(sub, common).
COMMAND_MODULES = (
    _approvals,
    _audit,
    _keys,
    _policy,
    _tiers,
    _trust,
    _witness,
    _dr,
    _store,
    _identity,
    _grants,
    _recover,
    _contain,
    _incidents,
)


# -- commands -----------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """Create the master key, keystore, KEKs and buckets."""
    from weightvault.lifecycle.bootstrap import init_vault

    report = init_vault(settings_for(args), start_store=not args.no_store)
    emit(args, "\n".join(f"{k}: {v}" for k, v in report.items()), report)
    return 0


def _store_check(args: argparse.Namespace, settings: Settings) -> int:
    """Probe the endpoint; exit 28 (StoreCapabilityError) if anything is missing."""
    from weightvault.lifecycle.bootstrap import check_store

    found = check_store(settings)
    rows = [
        {"capability": c.name, "bucket": c.bucket, "ok": c.ok, "detail": c.detail} for c in found
    ]
    human = "\n".join(f"{'ok     ' if c.ok else 'MISSING'}  {c.line()}" for c in found)
    emit(args, human, {"capabilities": rows, "ok": all(c.ok for c in found)})
    missing = [c.line() for c in found if not c.ok]
    if missing:
        endpoint = settings.store.endpoint or "the embedded store"
        raise StoreCapabilityError(endpoint, missing)
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    """store up | down | status | check | credentials ROLE | policy ROLE | env [ROLE]."""
    from weightvault.store import EmbeddedStore

    settings = settings_for(args)
    if args.action in {"credentials", "policy", "env"}:
        return _store.run(args, settings)
    if args.role:
        raise UsageError(f"store {args.action} takes no ROLE")
    if args.action == "check":
        return _store_check(args, settings)
    if not settings.store.embedded:
        emit(args, f"external store: {settings.store.endpoint}", {"external": True})
        return 0
    server = EmbeddedStore.of(settings)
    if args.action == "up":
        status = server.up()
        from weightvault.lifecycle.bootstrap import ensure_buckets

        ensure_buckets(settings)
    elif args.action == "down":
        stopped = server.down()
        emit(args, "store stopped" if stopped else "store was not running", {"stopped": stopped})
        return 0
    else:
        status = server.status()
    data = {
        "running": status.running,
        "endpoint": status.endpoint,
        "pid": status.pid,
        "data_dir": str(status.data_dir),
    }
    human = (
        f"store running at http://{status.endpoint} (pid {status.pid}), data in {status.data_dir}"
        if status.running
        else "store is not running"
    )
    emit(args, human, data)
    return 0 if status.running or args.action == "status" else 7


def _labels(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"label {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


def cmd_put(args: argparse.Namespace) -> int:
    """Ingest a file or directory."""
    from weightvault.lifecycle import ingest

    labels = _labels(args.label)
    repo = Path(args.model_repo) if args.model_repo else None
    if args.run_id and repo is None:
        raise InvalidInputError("put --run-id is for --model-repo")
    if repo is not None and not repo.is_dir():
        raise SourceUnreadableError(f"--model-repo {repo} is not a directory")
    vault = open_vault(args)
    provenance = None
    if repo is not None:
        from weightvault.provenance import capture_provenance

        provenance = capture_provenance(
            repo,
            run_id=args.run_id,
            creator=None,
            lock_file=None,
            parent=None,
            allow_incomplete=False,
        )
    with transfer(args, f"put {args.name}") as progress:
        result = ingest.put(
            vault,
            Path(args.path),
            args.name,
            args.tier,
            labels=labels,
            provenance=provenance,
            model_repo=repo,
            progress=progress,
        )
    row = result.artifact
    data = {
        "artifact_id": row.id,
        "content_digest": row.content_digest,
        "files": row.file_count,
        "bytes": row.total_size,
        "tier": row.tier,
        "duplicate_of": result.duplicate_of,
    }
    human = f"{row.id}  {row.content_digest}  {row.file_count} files, {row.total_size} bytes"
    if result.duplicate_of:
        human = f"already stored as {row.id} (same content digest {row.content_digest})"
    emit(args, human, data)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """Download, decrypt and verify an artifact."""
    vault = open_vault(args)
    if args.break_glass and not args.justification:
        raise InvalidInputError("get --break-glass needs --justification")
    if args.justification and not args.break_glass:
        raise InvalidInputError("get --justification is for --break-glass reads")
    with transfer(args, f"get {args.id}") as progress:
        if args.break_glass:
            from weightvault.lifecycle.break_glass import break_glass_get

            manifest = break_glass_get(
                vault, args.id, Path(args.out), justification=args.justification, progress=progress
            )
        else:
            manifest = vault.get(args.id, Path(args.out), progress)
    count = len(manifest.model_files)
    emit(
        args,
        f"{manifest.artifact_id}: {count} files verified and written to {args.out}",
        {"artifact_id": manifest.artifact_id, "out": args.out, "files": count},
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Check an artifact's integrity without writing plaintext."""
    vault = open_vault(args)
    with transfer(args, f"verify {args.id}") as progress:
        report = vault.verify(args.id, progress)
    emit(
        args,
        f"{report.artifact_id}: OK, {report.files} files, {report.bytes} bytes, "
        f"{report.content_digest}",
        report.__dict__,
    )
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """List artifacts."""
    vault = open_vault(args)
    rows = vault.catalog.list_artifacts(args.tier)
    emit_table(
        args,
        ("ID", "TIER", "FILES", "BYTES", "NAME"),
        [(r.id, r.tier, r.file_count, r.total_size, r.name) for r in rows],
        [r.__dict__ for r in rows],
        empty="no artifacts",
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one artifact."""
    vault = open_vault(args)
    from weightvault.lifecycle.recover import certificates

    info = vault.show(args.id)
    info["certificates"] = certificates(vault, info["artifact"]["id"])
    a = info["artifact"]
    lines = [f"{k}: {v}" for k, v in a.items()]
    lines.append(f"placement: {info['placement']['tier']} since {info['placement']['since']}")
    if info["damage"]:
        lines.append(f"damaged: {info['damage']}")
    lines += [f"envelope: {e['tier']} {e['kek_id']}@v{e['kek_version']}" for e in info["envelopes"]]
    lines += [f"file: {f['path']} {f['size']} {f['sha256']}" for f in info["files"]]
    lines += [f"event: {e['ts']} {e['kind']} by {e['actor']}" for e in info["events"]]
    lines += [
        f"reproducibility certificate: log entry {c['index']} "
        + (f"{c['at']} {c['statement']['key']}" if c["verified"] else f"NOT VERIFIED {c['reason']}")
        for c in info["certificates"]
    ]
    emit(args, "\n".join(lines), info)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """Remove orphaned objects."""
    from datetime import timedelta

    vault = open_vault(args)
    grace = None if args.grace_minutes is None else timedelta(minutes=args.grace_minutes)
    removed = vault.gc(grace, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    emit(args, f"{verb} {len(removed)} orphaned objects", {"removed": removed})
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    """catalog rebuild."""
    from weightvault.lifecycle.rebuild import rebuild_catalog

    vault = open_vault(args)
    report = rebuild_catalog(vault)
    counts = ("artifacts", "events", "skipped", "damaged")
    lines = ["catalog rebuilt: " + ", ".join(f"{k} {report[k]}" for k in counts)]
    if report["ignored_unsigned"]:
        lines.append(
            f"ignored {report['ignored_unsigned']} unsigned events/ object(s): "
            "events are trusted only from the signed transparency log"
        )
    lines += [f"skipped {u['object']}: {u['reason']}" for u in report["untrusted"]]
    lines += [f"damaged {d['artifact_id']}: {d['reason']}" for d in report["damaged_artifacts"]]
    lines += [f"evidence: {e['problem']}" for e in report["evidence"]]
    emit(args, "\n".join(lines), report)
    return 0


# -- parser -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The full parser, including plugged-in commands."""
    common = Parser(add_help=False)
    common.add_argument("--home", help="vault home (default: WEIGHTVAULT_HOME or ./.weightvault)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = Parser(prog="weightvault", description=__doc__.splitlines()[0], parents=[common])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def add(name: str, func: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "create the master key, keystore, tier keys and buckets")
    p.add_argument("--no-store", action="store_true", help="do not start the embedded store")
    p = add("store", cmd_store, "run the embedded S3 server (SeaweedFS); role credentials")
    p.add_argument(
        "action", choices=["up", "down", "status", "check", "credentials", "policy", "env"]
    )
    _store.add_arguments(p)
    p = add("put", cmd_put, "encrypt and store a file or directory")
    p.add_argument("path")
    p.add_argument("--name", required=True)
    p.add_argument(
        "--tier",
        default="hot",
        choices=["hot", "warm", "cold"],
        help="hot; warm and cold are refused (exit 42): put, validate, then promote",
    )
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--model-repo",
        metavar="DIR",
        help="git+DVC repo the model was built from: its provenance and rebuild kit are stored",
    )
    p.add_argument("--run-id", metavar="RUN", help="training run id (with --model-repo)")
    p = add("get", cmd_get, "download, decrypt and verify an artifact")
    p.add_argument("id")
    p.add_argument("--out", required=True, help="directory to create (must not hold files)")
    p.add_argument(
        "--break-glass",
        action="store_true",
        help="read a quarantined artifact; needs `approve ID --to break-glass` approvals",
    )
    p.add_argument("--justification", help="why (required with --break-glass; logged)")
    p = add("verify", cmd_verify, "check an artifact without writing plaintext")
    p.add_argument("id")
    p = add("ls", cmd_ls, "list artifacts")
    p.add_argument("--tier", choices=["hot", "warm", "cold", "quarantine"])
    p = add("show", cmd_show, "show one artifact")
    p.add_argument("id")
    p = add("gc", cmd_gc, "remove objects of artifacts that never committed")
    p.add_argument("--grace-minutes", type=int, default=None)
    p.add_argument("--dry-run", action="store_true")
    p = add("catalog", cmd_catalog, "catalog maintenance")
    p.add_argument("action", choices=["rebuild"])

    for module in COMMAND_MODULES:
        module.register(sub, common)
    for ep in sorted(entry_points(group="weightvault.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:
            # The Prefect commands live in a checkout's flows/, which a wheel leaves out.
            if exc.name is None or exc.name.split(".")[0] != ep.module.split(".")[0]:
                raise
            parser.epilog = (
                f"The {ep.name!r} commands (up, down, demo) need a weightvault checkout "
                f"(module {ep.module} is not installed)."
            )
            continue
        register(sub, common)
    return parser


# The exit status of a tool killed by SIGPIPE, as a shell reports it: `weightvault ls | head -1`
# stops quietly with it once head has read what it wanted.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command, map errors to one line and an exit code.

    A closed stdout (the reader of a pipe is gone) ends the command quietly
    with :data:`EXIT_BROKEN_PIPE`, as for a tool killed by SIGPIPE.
    """
    try:
        env = environment()
    except VaultError as exc:
        print(f"weightvault: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    configure_logging(env.log_level or "WARNING")
    try:
        code = _run(argv, debug=env.debug)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's own flush at exit is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


def _run(argv: Sequence[str] | None, *, debug: bool) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
    except VaultError as exc:
        if debug:
            raise
        for line in exc.lines():
            print(f"weightvault: error: {scrub_text(line)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("weightvault: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return int(exc.code or 0)
    except BrokenPipeError:
        raise
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            full = DiskFullError(f"no space left on device ({exc.filename or 'local disk'})")
            print(f"weightvault: error: {scrub_text(full.message)}", file=sys.stderr)
            return full.exit_code
        print(
            f"weightvault: internal error: {type(exc).__name__}: {scrub_text(str(exc))}",
            file=sys.stderr,
        )
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
