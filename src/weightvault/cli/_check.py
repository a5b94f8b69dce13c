"""``weightvault check PATH``: model CI, the ingest and promotion gates without a vault."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from weightvault.errors import (
    CheckFailedError,
    CheckUnsafeContentError,
    LocalPathError,
    NotFoundError,
    SourceUnreadableError,
)

__all__ = ["register"]


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the check command."""
    p = sub.add_parser(
        "check",
        help="model CI: run the format, safetensors, provenance, GX and Rego gates an ingest "
        "and a promotion would apply, on local files, without a vault (nothing is stored)",
        parents=[common],
    )
    p.add_argument("path", metavar="PATH", help="the model file or directory a put would store")
    p.add_argument(
        "--model-repo",
        metavar="DIR",
        help="the git+DVC model repository it was built in: provenance, and the datasets and "
        "metrics checks its weightvault.toml or pyproject.toml configures",
    )
    p.add_argument(
        "--tier",
        default="warm",
        choices=["hot", "warm", "cold"],
        help="evaluate the policy of a promotion into this tier (default: warm)",
    )
    p.add_argument("--run-id", help="the training run's id, as put --run-id records it")
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label the put would carry (license=... for cold); repeatable",
    )
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report here")
    p.add_argument("--sarif", metavar="FILE", help="also write a SARIF 2.1.0 report here")
    p.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, settings_for
    from weightvault.cli._names import parse_labels
    from weightvault.lifecycle.check import check
    from weightvault.lifecycle.check_reports import (
        check_writable,
        junit_xml,
        sarif_log,
        write_report,
    )

    labels = parse_labels(args.label)
    path = Path(args.path)
    if not path.exists() and not path.is_symlink():
        raise NotFoundError(f"no such file or directory: {path}")
    repo = Path(args.model_repo) if args.model_repo else None
    if repo is not None and not repo.is_dir():
        what = "is not a directory" if repo.exists() else "does not exist"
        raise SourceUnreadableError(f"--model-repo {repo} {what}")
    outputs = [(Path(f), opt) for f, opt in ((args.junit, "--junit"), (args.sarif, "--sarif")) if f]
    for out, option in outputs:
        check_writable(out, option)
    if len({o.absolute() for o, _ in outputs}) < len(outputs):
        raise LocalPathError("--junit and --sarif name the same file")
    settings = settings_for(args)
    result = check(
        path,
        model_repo=repo,
        tier=args.tier,
        run_id=args.run_id,
        labels=labels,
        policy_dir=settings.policy_dir,
        expectations_dir=settings.expectations_dir,
        certificate_tiers=settings.certificate_tiers,
        approvals_required=settings.approvals_required,
    )
    # The reports are written whatever the verdict: a failing check is what CI shows.
    if args.junit:
        write_report(Path(args.junit), junit_xml(result), "--junit")
    if args.sarif:
        write_report(Path(args.sarif), sarif_log(result), "--sarif")
    emit(args, result.summary(), result.to_dict())
    failed = sorted({f"{o.family}/{o.rule}" for o in result.failed})
    if result.hazards:
        raise CheckUnsafeContentError(
            f"check of {path}: unsafe content in {', '.join(result.hazards)} "
            f"(a put would quarantine it); {len(failed)} rules failed"
        )
    if failed:
        raise CheckFailedError(f"check of {path} failed {len(failed)} rules: {', '.join(failed)}")
    return 0
