"""`weightvault adopt SOURCE`: take stock of existing model artifacts, then bring them in."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightvault.errors import AdoptIncompleteError, ConfigError, InvalidInputError

if TYPE_CHECKING:
    from weightvault.lifecycle.adopt import Adopted, AdoptReport, Candidate, Inventory
    from weightvault.store import ObjectStore

#: the environment variables an ``--endpoint`` source's credentials come from, in order
ACCESS_KEY_ENV = ("WEIGHTVAULT_ADOPT_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
SECRET_KEY_ENV = ("WEIGHTVAULT_ADOPT_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")


def _credentials() -> tuple[str, str]:
    """The ``--endpoint`` source's access and secret key: WEIGHTVAULT_ADOPT_*, else AWS_*."""
    from weightvault.config import environment, other_variable

    env = environment()
    access = env.adopt_access_key.get_secret_value() if env.adopt_access_key else ""
    secret = env.adopt_secret_key.get_secret_value() if env.adopt_secret_key else ""
    return (
        access or other_variable(ACCESS_KEY_ENV[1]) or "",
        secret or other_variable(SECRET_KEY_ENV[1]) or "",
    )


def _s3_client(args: argparse.Namespace) -> ObjectStore | None:
    """A client for ``--endpoint`` (credentials from the environment), else None (the vault's)."""
    if not args.endpoint:
        return None
    from urllib.parse import urlsplit

    from weightvault.logs import register_secret
    from weightvault.store import ObjectStore

    url = urlsplit(args.endpoint if "://" in args.endpoint else f"http://{args.endpoint}")
    if url.scheme not in {"http", "https"} or not url.netloc:
        raise InvalidInputError(f"adopt --endpoint {args.endpoint!r} is not http(s)://HOST:PORT")
    access, secret = _credentials()
    if not access or not secret:
        raise ConfigError(
            f"adopt --endpoint needs credentials in {' or '.join(ACCESS_KEY_ENV)} and "
            f"{' or '.join(SECRET_KEY_ENV)}"
        )
    register_secret(secret)
    return ObjectStore(url.netloc, access, secret, secure=url.scheme == "https")


def _provenance_shown(c: Candidate) -> str:
    found = []
    git = c.recovered.get("git")
    if git:
        found.append(f"git {str(git['commit'])[:12]}{' dirty' if git['dirty'] else ''}")
    hf = c.recovered.get("huggingface")
    if hf:
        found.append(f"hf {hf['repo_id']}@{str(hf['revision'])[:12]}")
    mlflow = c.recovered.get("mlflow")
    if mlflow:
        found.append(f"mlflow run {str(mlflow['run_id'])[:12]}")
    if "s3" in c.recovered:
        found.append("s3 " + c.recovered["s3"]["bucket"])
    return ", ".join(found) or "none"


def _formats(c: Candidate) -> str:
    counts: dict[str, int] = {}
    for f in c.files:
        counts[f.format] = counts.get(f.format, 0) + 1
    return ",".join(f"{k}:{v}" if v > 1 else k for k, v in sorted(counts.items()))


def _report_path(home: Path, location: str) -> Path:
    """Where the run's JSON report goes in the vault home (one per source, the latest run)."""
    name = hashlib.sha256(location.encode()).hexdigest()[:16]
    return home / "adopt" / f"{name}.json"


def _write_json(path: Path, report: AdoptReport) -> None:
    from weightvault._fs import make_private_dir, write_private

    make_private_dir(path.parent)
    write_private(path, json.dumps(report.to_dict(), indent=2, sort_keys=True).encode() + b"\n")


def _progress(
    enabled: bool,
) -> tuple[Callable[[Inventory], None], Callable[[Adopted], None]]:
    total = [0]
    done = [0]

    def on_inventory(found: Inventory) -> None:
        total[0] = len(found.candidates)
        if enabled:
            print(f"adopt: {total[0]} candidates in {found.location}", file=sys.stderr)

    def on_result(result: Adopted) -> None:
        done[0] += 1
        if enabled:
            where = f" as {result.artifact_id}" if result.artifact_id else ""
            detail = f": {result.detail}" if result.detail else ""
            print(
                f"adopt: [{done[0]}/{total[0]}] {result.key} {result.status}{where}{detail}",
                file=sys.stderr,
                flush=True,
            )

    return on_inventory, on_result


def cmd_adopt(args: argparse.Namespace) -> int:
    """Inventory a source (``--dry-run``) or adopt every candidate in it."""
    from weightvault.cli._common import emit_table, human_size, open_vault
    from weightvault.lifecycle.adopt import adopt

    if args.inventory:
        from weightvault.cli._common import check_output_parent

        check_output_parent(Path(args.inventory), "--inventory")
    vault = open_vault(args)
    on_inventory, on_result = _progress(sys.stderr.isatty() and not args.json)
    report = adopt(
        vault,
        args.source,
        args.kind,
        dry_run=args.dry_run,
        s3_client=_s3_client(args),
        on_inventory=on_inventory,
        on_result=on_result,
    )
    saved = _report_path(vault.settings.home, report.inventory.location)
    _write_json(saved, report)
    if args.inventory:
        _write_json(Path(args.inventory), report)
    results = {r.key: r for r in report.results}
    rows = []
    for c in report.inventory.candidates:
        done = results.get(c.key)
        status = (
            f"{done.status} {done.artifact_id or ''}".strip()
            if done
            else (f"stored as {c.stored_as}" if c.stored_as else "new")
        )
        rows.append(
            (
                c.key,
                c.recognised,
                str(len(c.files)),
                human_size(c.total_size),
                _formats(c),
                _provenance_shown(c),
                c.problem or c.ingest_gate,
                status,
            )
        )
    emit_table(
        args,
        ("CANDIDATE", "RECOGNISED", "FILES", "SIZE", "FORMATS", "PROVENANCE", "INGEST", "STATUS"),
        rows,
        {**report.to_dict(), "report": str(saved)},
    )
    if not args.json:
        print(f"report: {saved}")
    if report.failed:
        raise AdoptIncompleteError(
            f"{len(report.failed)} of {len(report.inventory.candidates)} candidates were not "
            "adopted: "
            + "; ".join(f"{r.key}: {r.detail}" for r in report.failed[:3])
            + "; run adopt again to continue"
        )
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``adopt``."""
    p = sub.add_parser(
        "adopt",
        help="take stock of existing model artifacts (a directory, a Hugging Face cache, an "
        "MLflow root, an S3 prefix) and bring them in with backfilled provenance",
        description="Inventory SOURCE (--dry-run: nothing is stored), then ingest every "
        "candidate: scanned like any put, provenance marked backfilled, recorded in the log. "
        "Resumable: content already in the vault is recognised, never stored twice.",
        parents=[common],
    )
    p.set_defaults(func=cmd_adopt)
    p.add_argument("source", help="a directory, a Hugging Face cache, an MLflow root or s3://B/P")
    p.add_argument(
        "--kind",
        default="auto",
        choices=["auto", "dir", "hf", "mlflow", "s3"],
        help="what SOURCE is (default: recognised by its layout)",
    )
    p.add_argument("--dry-run", action="store_true", help="inventory only; store nothing")
    p.add_argument("--inventory", metavar="FILE", help="also write the JSON report to FILE")
    p.add_argument(
        "--endpoint",
        metavar="URL",
        help="S3 endpoint of an s3:// SOURCE (default: the vault's store); credentials from "
        f"{ACCESS_KEY_ENV[0]}/{SECRET_KEY_ENV[0]} (or the AWS_ variables)",
    )
