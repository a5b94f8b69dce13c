"""The weightvault command line.

Every failure prints one line to stderr and exits with the code of its error
class (see :mod:`weightvault.errors`); tracebacks only with WEIGHTVAULT_DEBUG=1.
Commands that need Prefect (``demo``, ``up``, ``down``, flows) are plugged in
through the ``weightvault.commands`` entry point group, so this module never
imports Prefect.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from weightvault.cli import (
    _adopt,
    _approvals,
    _audit,
    _check,
    _contain,
    _dr,
    _grants,
    _identity,
    _incidents,
    _keys,
    _names,
    _policy,
    _recover,
    _store,
    _tiers,
    _trust,
    _witness,
)
from weightvault.cli._common import (
    Handler,
    Parser,
    check_output_parent,
    emit,
    emit_table,
    human_size,
    open_vault,
    settings_for,
)
from weightvault.cli._names import parse_labels
from weightvault.cli._progress import transfer
from weightvault.config import Settings, environment
from weightvault.errors import (
    DiskFullError,
    IngestQuarantinedError,
    InvalidInputError,
    LocalPathError,
    SourceUnreadableError,
    StoreCapabilityError,
    UsageError,
    VaultError,
)
from weightvault.logs import configure_logging, scrub_text

if TYPE_CHECKING:
    from weightvault.artifacts import Vault

# Core command groups in their own modules; each has register(sub, common).
COMMAND_MODULES = (
    _names,
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
    _adopt,
    _check,
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
    nodes = _store.nodes_asked(args, settings)
    if args.action == "check":
        return _store_check(args, settings)
    if not settings.store.embedded:
        emit(args, f"external store: {settings.store.endpoint}", {"external": True})
        return 0
    server = EmbeddedStore.of(settings)
    if args.action == "up":
        status = server.up(nodes=nodes)
        from weightvault.lifecycle.bootstrap import ensure_buckets

        ensure_buckets(settings)
    elif args.action == "down":
        stopped = server.down()
        emit(args, "store stopped" if stopped else "store was not running", {"stopped": stopped})
        return 0
    else:
        status = server.status()
    data: dict[str, object] = {
        "running": status.running,
        "endpoint": status.endpoint,
        "pid": status.pid,
        "data_dir": str(status.data_dir),
        "volume_servers": status.volume_servers,
    }
    human = (
        f"store running at http://{status.endpoint} (pid {status.pid}), data in {status.data_dir}"
        if status.running
        else "store is not running"
    )
    if status.nodes:
        data["nodes"] = [
            {"name": n.name, "running": n.running, "pid": n.pid, "port": n.port}
            for n in status.nodes
        ]
        human += f"\n{status.volume_servers} volume servers, replication 001:" + "".join(
            f"\n  {n.name:<10} {'running' if n.running else 'STOPPED'}  pid {n.pid}  port {n.port}"
            for n in status.nodes
        )
    emit(args, human, data)
    return 0 if status.running or args.action == "status" else 7


def cmd_put(args: argparse.Namespace) -> int:
    """Ingest a file or directory."""
    from weightvault.lifecycle import ingest

    labels = parse_labels(args.label)
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
        "quarantined": result.quarantined,
    }
    human = f"{row.id}  {row.content_digest}  {row.file_count} files, {human_size(row.total_size)}"
    if result.duplicate_of:
        human = (
            f"already stored as {row.id} (same content digest {row.content_digest}); "
            f"name {args.name!r} and the labels given are recorded for it"
        )
    emit(args, human, data)
    if result.quarantined:
        raise IngestQuarantinedError(f"{row.id} is quarantined: {result.quarantined}")
    return 0


def _write_new_file(out: Path, write: Callable[[BinaryIO], Any]) -> Any:
    """Run ``write`` into a private temporary file linked to ``out`` only when it succeeds.

    ``out`` must not exist (InvalidInputError); on any failure nothing is left behind.
    """
    from weightvault._fs import local_write_error

    out = out.absolute()
    if out.exists() or out.is_symlink():
        raise InvalidInputError(f"--out {out}: exists; a ranged read writes a new file")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{os.urandom(4).hex()}.partial")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                result = write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            # A hard link never replaces a file that appeared meanwhile.
            os.link(tmp, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    except FileExistsError:
        raise InvalidInputError(f"--out {out}: exists; a ranged read writes a new file") from None
    except OSError as exc:
        raise local_write_error(exc, out) from None
    return result


def _get_part(args: argparse.Namespace) -> int:
    """``get ID --file F --tensor NAME | --range START:END --out FILE``."""
    from weightvault.artifacts import parse_range

    if args.break_glass:
        raise UsageError("get --tensor/--range does not combine with --break-glass")
    if not args.file:
        raise UsageError("get --tensor and --range need --file (the artifact's file to read)")
    out = Path(args.out)
    check_output_parent(out, "--out")
    bounds = parse_range(args.range) if args.range is not None else None
    vault = open_vault(args)
    data: dict[str, Any]
    if bounds is not None:
        start, end = bounds
        n = _write_new_file(
            out, lambda fh: vault.read_range_into(args.id, args.file, start, end, fh)
        )
        data = {"artifact_id": vault.resolve(args.id).id, "file": args.file, "start": start}
        data.update(end=start + n)
        data.update(bytes=n, out=args.out)
        human = f"{args.file} bytes {start}:{start + n} ({human_size(n)}) written to {args.out}"
    else:
        where = _write_new_file(
            out, lambda fh: vault.read_tensor_into(args.id, args.file, args.tensor, fh)
        )
        data = {**where.to_dict(), "out": args.out}
        human = (
            f"{where.file} tensor {where.tensor.name}: {where.tensor.dtype} "
            f"{list(where.tensor.shape)}, bytes {where.start}:{where.end} "
            f"({human_size(where.end - where.start)}) written to {args.out}"
        )
    emit(args, human, data)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """Download, decrypt and verify an artifact (or one tensor or byte range of a file)."""
    if args.tensor is not None or args.range is not None:
        return _get_part(args)
    if args.file:
        raise UsageError("get --file needs --tensor NAME or --range START:END")
    check_output_parent(Path(args.out), "--out")
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
        f"{report.artifact_id}: OK, {report.files} files, {human_size(report.bytes)}, "
        f"{report.content_digest}",
        report.__dict__,
    )
    return 0


def _empty_hint(args: argparse.Namespace, vault: Vault) -> str:
    """What ``ls`` says when nothing is listed: a rebuild if the store holds artifacts."""
    if args.tier:
        return f"no artifacts in tier {args.tier}"
    stored = set().union(*(vault.committed_ids(t) for t in ("hot", "warm", "cold")))
    if stored:
        return (
            f"the catalog lists no artifacts but the store holds {len(stored)}: "
            "run `weightvault catalog rebuild`"
        )
    return "no artifacts (if the store had some, `weightvault catalog rebuild` indexes them)"


def cmd_ls(args: argparse.Namespace) -> int:
    """List artifacts with their names, labels and aliases from the signed log."""
    vault = open_vault(args)
    rows = vault.catalog.list_artifacts(args.tier)
    index = vault.logged_names() if rows else None
    data: list[dict[str, Any]] = []
    table = []
    for r in rows:
        of = index.of(r.id, r.name) if index is not None else None
        names, aliases = (of.names, of.aliases) if of is not None else ([r.name], [])
        labels = of.labels if of is not None else {}
        data.append({**r.__dict__, "names": names, "labels": labels, "aliases": aliases})
        shown = ", ".join([*names, *aliases]) or r.name
        labels_shown = ",".join(f"{k}={v}" for k, v in labels.items()) or "-"
        table.append(
            (
                r.id,
                shown,
                r.created_at[:19].replace("T", " "),
                r.tier,
                human_size(r.total_size),
                r.validation_status or "-",
                labels_shown,
            )
        )
    if not rows and not getattr(args, "json", False):
        print(_empty_hint(args, vault))
        return 0
    emit_table(
        args,
        ("ID", "NAMES", "CREATED", "TIER", "SIZE", "VALIDATION", "LABELS"),
        table,
        data,
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one artifact."""
    vault = open_vault(args)
    from weightvault.lifecycle.recover import certificates

    info = vault.show(args.id)
    info["certificates"] = certificates(vault, info["artifact"]["id"])
    lines = _show_lines(info)
    if info["damage"]:
        lines.append(f"damaged: {info['damage']}")
    lines += [f"envelope: {e['tier']} {e['kek_id']}@v{e['kek_version']}" for e in info["envelopes"]]
    lines += [f"file: {f['path']} {human_size(f['size'])} {f['sha256']}" for f in info["files"]]
    lines += [
        f"event: {e['ts']} {e['kind']} by {e['by']} (log entry {e['index']})"
        for e in info["history"]
    ]
    lines += [
        f"reproducibility certificate: log entry {c['index']} "
        + (f"{c['at']} {c['statement']['key']}" if c["verified"] else f"NOT VERIFIED {c['reason']}")
        for c in info["certificates"]
    ]
    emit(args, "\n".join(lines), info)
    return 0


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _show_lines(info: dict[str, Any]) -> list[str]:
    """The head of ``show``: the artifact, its names, labels, aliases and provenance."""
    a = info["artifact"]
    lines = [f"{k}: {v}" for k, v in a.items() if k != "total_size"]
    lines.append(f"size: {human_size(a['total_size'])} ({a['total_size']} bytes)")
    lines.append(f"names: {', '.join(info['names'])}")
    labels = ", ".join(f"{k}={v}" for k, v in info["labels"].items())
    lines.append(f"labels: {labels or 'none'}")
    lines.append(f"aliases: {', '.join(info['aliases']) or 'none'}")
    lines.append(f"placement: {info['placement']['tier']} since {info['placement']['since']}")
    prov = info["provenance"]
    if not prov["verified"]:
        lines.append(f"provenance: NOT VERIFIED {prov['reason']}")
        return lines
    commit = prov["git_commit"] or "none"
    dirty = " (dirty)" if prov["git_dirty"] else ""
    lines.append(f"provenance: verified statement signed by {prov['signed_by']}")
    lines.append(
        f"  git commit: {commit}{dirty}" + (f" {prov['repository']}" if prov["repository"] else "")
    )
    lines += [f"  dataset: {d['name']} sha256:{d['sha256']}" for d in prov["datasets"]]
    lines.append(f"  training run: {prov['training_run'] or 'none'}")
    env = ", ".join(f"{k}={_short(v)}" for k, v in sorted(prov["environment"].items()))
    lines.append(f"  environment: {env or 'none'}")
    if prov["missing"]:
        lines.append(f"  missing: {', '.join(prov['missing'])}")
    return lines


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

_ID_HELP = "artifact id, unique id prefix or NAME@ALIAS"


def _version() -> str:
    try:
        return version("weightvault")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "unknown"


def _add_get_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``get``."""
    p.add_argument("id", help=_ID_HELP)
    p.add_argument(
        "--out",
        required=True,
        help="directory to create (must not hold files); with --tensor/--range a new file",
    )
    p.add_argument(
        "--file", metavar="F", help="the artifact's file to read from (with --tensor/--range)"
    )
    part = p.add_mutually_exclusive_group()
    part.add_argument(
        "--tensor", metavar="NAME", help="read only this tensor of the safetensors file --file"
    )
    part.add_argument(
        "--range",
        metavar="START:END",
        help="read only plaintext bytes START..END (END exclusive, empty: to the end) of --file",
    )
    p.add_argument(
        "--break-glass",
        action="store_true",
        help="read a quarantined artifact; needs 'approve ID --to break-glass' approvals",
    )
    p.add_argument("--justification", help="why (required with --break-glass; logged)")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, including plugged-in commands."""
    common = Parser(add_help=False)
    common.add_argument("--home", help="vault home (default: WEIGHTVAULT_HOME or ./.weightvault)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = Parser(prog="weightvault", description=__doc__.splitlines()[0], parents=[common])
    parser.add_argument(
        "--version", action="version", version=f"weightvault {_version()}", help="print the version"
    )
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
        "action",
        choices=["up", "down", "status", "check", "credentials", "policy", "env"],
        help="up, down, status, check (probe capabilities), credentials ROLE, policy ROLE, "
        "env (endpoint and credentials as shell variables)",
    )
    _store.add_arguments(p)
    p = add("put", cmd_put, "encrypt and store a file or directory")
    p.add_argument("path", help="the file or directory to store")
    p.add_argument("--name", required=True, help="the artifact's name (e.g. digits)")
    p.add_argument(
        "--tier",
        default="hot",
        choices=["hot", "warm", "cold"],
        help="hot; warm and cold are refused (exit 42): put, validate, then promote",
    )
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label (repeatable); of stored content, recorded as an amendment",
    )
    p.add_argument(
        "--model-repo",
        metavar="DIR",
        help="git+DVC repo the model was built from: its provenance and rebuild kit are stored",
    )
    p.add_argument("--run-id", metavar="RUN", help="training run id (with --model-repo)")
    p = add("get", cmd_get, "download, decrypt and verify an artifact")
    _add_get_arguments(p)
    p = add("verify", cmd_verify, "check an artifact without writing plaintext")
    p.add_argument("id", help=_ID_HELP)
    p = add("ls", cmd_ls, "list artifacts: created, tier, size, validation, labels")
    p.add_argument(
        "--tier", choices=["hot", "warm", "cold", "quarantine"], help="only this tier's artifacts"
    )
    p = add("show", cmd_show, "show one artifact: provenance, names, labels, aliases, history")
    p.add_argument("id", help=_ID_HELP)
    p = add("gc", cmd_gc, "remove objects of artifacts that never committed")
    p.add_argument(
        "--grace-minutes",
        type=int,
        default=None,
        help="leave objects younger than this alone (default: the setting gc_grace_minutes)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    p = add("catalog", cmd_catalog, "catalog maintenance")
    p.add_argument(
        "action", choices=["rebuild"], help="rebuild: index the store and the signed log again"
    )

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
        if isinstance(exc, OSError) and (known := _os_error(exc)) is not None:
            print(f"weightvault: error: {scrub_text(known.message)}", file=sys.stderr)
            return known.exit_code
        print(
            f"weightvault: internal error: {type(exc).__name__}: {scrub_text(str(exc))}",
            file=sys.stderr,
        )
        return 1
    return code


def _os_error(exc: OSError) -> VaultError | None:
    """A local file system error no command mapped: a full disk, or a path that cannot be
    used (the path and the reason, one line); None for one naming no path."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"no space left on device ({exc.filename or 'local disk'})")
    if exc.filename is None:
        return None
    from weightvault._fs import shown_path

    reason = exc.strerror or type(exc).__name__
    where = shown_path(exc.filename) if isinstance(exc.filename, str) else exc.filename
    return LocalPathError(f"{where}: {reason}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
