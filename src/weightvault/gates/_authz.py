"""Authorization as policy: who may do what on which tier, in Rego.

The policy is ``authz.rego`` in the policy directory (package
``weightvault.authz``; ``docs/authorization.md``). :func:`authorize` is asked
once for every operation the vault logs (``Vault.begin``), so the policy is
compiled once per process into a regopy bundle (keyed by the file's sha256, so
an edited policy is compiled again) and each decision only runs the bundle:
about a millisecond.

Table tests are data: ``tests/authz_cases.json`` holds a ``matrix`` (kind ->
the roles and tiers it is allowed for), expanded into one case per role x
operation x tier, and hand-written ``cases`` (a JSON merge patch of ``base``
with the exact reasons expected). :func:`run_authz_tests` runs both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from weightvault.config import ROLES
from weightvault.errors import ConfigError
from weightvault.gates._policy import (
    CaseResult,
    Decision,
    _file_policy,
    _FilePolicy,
    _plain_json,
    _query_data,
    _read_output,
    _rule_descriptions,
    load_cases,
    one_line,
)

__all__ = [
    "AUTHZ_CASES_FILE",
    "AUTHZ_FILE",
    "AUTHZ_PACKAGE",
    "MATRIX_PREFIX",
    "ROLE_NAMES",
    "TIER_VALUES",
    "authorize",
    "authz_rules",
    "authz_table",
    "run_authz_tests",
]

AUTHZ_PACKAGE = "weightvault.authz"
MATRIX_PREFIX = "matrix: "
"""How the name of a case expanded from the matrix begins."""
AUTHZ_FILE = "authz.rego"
AUTHZ_CASES_FILE = Path("tests") / "authz_cases.json"
"""Where :func:`run_authz_tests` looks for cases, relative to the policy directory."""

ROLE_NAMES = ROLES
"""The principals' roles (``config.ROLES``), in the order the table tests expand them."""

TIER_VALUES: tuple[str | None, ...] = ("hot", "warm", "cold", "quarantine", None)
"""Every tier an operation can name (None: the operation names no tier)."""


def _policy(policy_dir: Path) -> _FilePolicy:
    return _file_policy(
        policy_dir / AUTHZ_FILE, AUTHZ_PACKAGE, ("decision",), "authorization policy"
    )


def authorize(input: Mapping[str, Any], policy_dir: Path) -> Decision:
    """The authorization policy's decision on ``input``, with every deny reason.

    ``input`` is ``{principal: {name, keyid, roles}, operation, tier,
    artifact_id}``. Never raises on a denial; ConfigError if the policy is
    missing or broken (the caller refuses: fail closed).
    """
    document = json.dumps(_plain_json(input), ensure_ascii=False)
    compiled = _policy(policy_dir)
    with compiled.lock:
        compiled.interpreter.set_input_term(document)
        try:
            output = compiled.interpreter.query_bundle(compiled.bundles["decision"])
        except Exception as exc:  # regopy raises RegoError, or ValueError on bad output
            raise ConfigError(f"authorization policy evaluation failed: {one_line(exc)}") from None
    result = _read_output(output, f"data.{AUTHZ_PACKAGE}.decision")
    if not isinstance(result, dict):
        raise ConfigError(f"data.{AUTHZ_PACKAGE}.decision is not an object")
    reasons = sorted(str(r) for r in result.get("deny", []))
    allow = result.get("allow") is True and not reasons
    return Decision(allow=allow, reasons=reasons, policy_digest=compiled.digest)


def _constant(policy_dir: Path, name: str) -> Any:
    compiled = _policy(policy_dir)
    return _query_data(
        compiled.interpreter, compiled.lock, AUTHZ_PACKAGE, name, "authorization policy"
    )


def authz_rules(policy_dir: Path) -> dict[str, str]:
    """Rule id -> what it requires, as the authorization policy declares them."""
    return _rule_descriptions(_constant(policy_dir, "rules"), AUTHZ_PACKAGE)


def authz_table(policy_dir: Path) -> dict[str, dict[str, list[Any]]]:
    """The policy's own table: kind -> {roles, tiers}."""
    table = _constant(policy_dir, "operations")
    if not isinstance(table, dict):
        raise ConfigError(f"data.{AUTHZ_PACKAGE}.operations is not an object")
    return {str(k): dict(v) for k, v in table.items()}


def _rule_ids(reasons: Sequence[str]) -> set[str]:
    return {r.split(":", 1)[0] for r in reasons}


def expected_rules(kind: str, tier: str | None, entry: Mapping[str, Any], role: str) -> set[str]:
    """The rule ids that must deny ``role`` doing ``kind`` on ``tier`` under ``entry``."""
    rules = set()
    if role not in entry["roles"]:
        rules.add("role")
    if kind == "artifact.ingested" and tier not in ("hot", None):
        rules.add("put_tier")
    elif tier not in entry["tiers"]:
        rules.add("tier")
    return rules


def _matrix_results(document: Mapping[str, Any], policy_dir: Path) -> list[CaseResult]:
    matrix = document["matrix"]
    table = authz_table(policy_dir)
    results = []
    for kind in sorted(set(matrix) | set(table)):
        if kind not in matrix or kind not in table:
            where = "the policy, not the matrix" if kind in table else "the matrix, not the policy"
            name = f"{MATRIX_PREFIX}{kind} is in {where}"
            results.append(CaseResult(name, "matrix", False, True, False))
            continue
        for role in ROLE_NAMES:
            for tier in TIER_VALUES:
                expected = expected_rules(kind, tier, matrix[kind], role)
                principal = {"name": "p", "keyid": "00", "roles": [role]}
                decision = authorize(
                    {"principal": principal, "operation": kind, "tier": tier, "artifact_id": "a"},
                    policy_dir,
                )
                got = _rule_ids(decision.reasons)
                results.append(
                    CaseResult(
                        f"{MATRIX_PREFIX}{role} {kind} on {tier or 'no tier'}",
                        "+".join(sorted(expected)) or "allow",
                        got == expected and decision.allow == (not expected),
                        not expected,
                        decision.allow,
                        sorted(expected - got),
                        sorted(got - expected),
                    )
                )
    return results


def run_authz_tests(policy_dir: Path, cases_file: Path | None = None) -> list[CaseResult]:
    """Every authorization case: the matrix (role x operation x tier) and the hand cases.

    A kind the policy lists and the matrix lacks (or the other way round) fails.
    """
    path = cases_file if cases_file is not None else policy_dir / AUTHZ_CASES_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        results = _matrix_results(document, policy_dir)
    except FileNotFoundError:
        raise ConfigError(f"authorization cases file {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"authorization cases file {path} is malformed: {exc!r}") from None
    for case in load_cases(path):
        decision = authorize(case.input, policy_dir)
        missing = sorted(set(case.reasons) - set(decision.reasons))
        unexpected = sorted(set(decision.reasons) - set(case.reasons))
        passed = decision.allow == case.allow and not missing and not unexpected
        results.append(
            CaseResult(
                case.name, case.rule, passed, case.allow, decision.allow, missing, unexpected
            )
        )
    return results
