"""`weightvault policy test|eval` and `weightvault validate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from weightvault.errors import InvalidInputError, PolicyError, ValidationPartialError


def _policy_test(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, settings_for
    from weightvault.gates import (
        MATRIX_PREFIX,
        authz_rules,
        coverage_gaps,
        detect_rules,
        policy_rules,
        run_authz_tests,
        run_detect_tests,
        run_policy_tests,
    )

    policy_dir = settings_for(args).policy_dir
    admission = run_policy_tests(policy_dir)
    authz = run_authz_tests(policy_dir)
    detection = run_detect_tests(policy_dir)
    results = admission + authz + detection
    gaps = coverage_gaps(admission, policy_rules(policy_dir))
    gaps += [f"authz {g}" for g in coverage_gaps(authz, authz_rules(policy_dir))]
    gaps += [f"detect {g}" for g in coverage_gaps(detection, detect_rules(policy_dir))]
    failed = [r for r in results if not r.passed]
    # The authorization matrix is hundreds of cases: its passing ones are only counted.
    lines = [r.describe() for r in admission]
    matrix = [r for r in authz if r.name.startswith(MATRIX_PREFIX)]
    lines += [r.describe() for r in authz if not r.passed or r not in matrix]
    lines.append(f"authorization matrix (role x operation x tier): {len(matrix)} cases")
    lines += [r.describe() for r in detection]
    lines += [f"GAP {g}" for g in gaps]
    lines.append(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    emit(
        args,
        "\n".join(lines),
        {
            "passed": len(results) - len(failed),
            "failed": [r.describe() for r in failed],
            "gaps": gaps,
        },
    )
    if failed or gaps:
        raise PolicyError(f"{len(failed)} policy cases failed, {len(gaps)} rules lack cases")
    return 0


def _policy_eval(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, settings_for
    from weightvault.gates import evaluate, explain

    try:
        document = json.loads(Path(args.input).read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"no such input file: {args.input}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{args.input} is not JSON: line {exc.lineno}") from None
    decision = evaluate(document, settings_for(args).policy_dir)
    emit(
        args,
        explain(decision),
        {
            "allow": decision.allow,
            "reasons": decision.reasons,
            "policy_digest": decision.policy_digest,
        },
    )
    return 0 if decision.allow else PolicyError.exit_code


def _validate(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.validate import fetch_data_docs, validate_artifact

    repo = Path(args.model_repo) if args.model_repo else None
    if repo is not None and not repo.is_dir():
        what = "is not a directory" if repo.exists() else "does not exist"
        raise InvalidInputError(f"--model-repo {repo} {what}")
    vault = open_vault(args)
    outcome = validate_artifact(vault, args.id, repo)
    lines = [f"{outcome.artifact_id}: validation {outcome.status} (report {outcome.report_sha256})"]
    lines += [f"  - {f}" for f in outcome.failures]
    lines += [f"  skipped: {s}" for s in outcome.skipped]
    if outcome.quarantined:
        lines.append("  quarantined: unsafe content")
    data = dict(outcome.__dict__)
    if args.data_docs:
        pages = fetch_data_docs(vault, outcome.artifact_id, Path(args.data_docs))
        data["data_docs_written"] = [str(p) for p in pages]
        lines.append(f"  {len(pages)} Data Docs pages written to {args.data_docs}")
    emit(args, "\n".join(lines), data)
    if outcome.status == "partial":
        return ValidationPartialError.exit_code
    return 0 if outcome.status == "passed" else PolicyError.exit_code


def _data_docs(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.validate import fetch_data_docs

    pages = fetch_data_docs(open_vault(args), args.id, Path(args.out))
    emit(
        args,
        "\n".join(str(p) for p in pages) or "the latest validation stored no Data Docs",
        {"artifact_id": args.id, "pages": [str(p) for p in pages]},
    )
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `policy` and `validate`."""
    policy = sub.add_parser("policy", help="policy-as-code (Rego)", parents=[common])
    actions = policy.add_subparsers(
        dest="policy_action", metavar="ACTION", parser_class=type(policy)
    )
    actions.required = True
    test = actions.add_parser("test", help="run the table-driven policy cases", parents=[common])
    test.set_defaults(func=_policy_test)
    ev = actions.add_parser(
        "eval", help="explain a decision for an input document", parents=[common]
    )
    ev.add_argument("--input", required=True, help="JSON input document")
    ev.set_defaults(func=_policy_eval)
    val = sub.add_parser(
        "validate", help="run format, Great Expectations and provenance checks", parents=[common]
    )
    val.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    val.add_argument(
        "--model-repo",
        help="git+DVC model repo; its weightvault.toml or pyproject.toml "
        "[tool.weightvault.validation] names the datasets, suites and metric thresholds "
        "(without it the validation is partial)",
    )
    val.add_argument("--data-docs", metavar="DIR", help="also write the Data Docs pages here")
    val.set_defaults(func=_validate)
    docs = sub.add_parser(
        "data-docs",
        help="write the GX Data Docs of an artifact's latest validation (checked against "
        "the signed report)",
        parents=[common],
    )
    docs.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    docs.add_argument(
        "--out", required=True, metavar="DIR", help="directory to write the Data Docs pages to"
    )
    docs.set_defaults(func=_data_docs)
