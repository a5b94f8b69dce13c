"""Model CI: the gates an ingest and a promotion would apply, run on local files.

``weightvault check PATH`` runs, without a vault, keys or a store (nothing is
stored, uploaded or logged), the same gates as ``put`` + ``validate`` +
``promote``, as named steps:

1. :func:`scan` decides every file's format by its content (``gates.scan_file``;
   a pickle is never loaded) and notes the files whose loading can run code
   (``gates.loader_hazard``, what a put quarantines at once);
2. :func:`check_headers` checks each safetensors file's header completely
   (``gates.check_safetensors_header``: tensor data is never read);
3. :func:`capture` captures provenance from the model repository
   (``provenance.capture_provenance``, incomplete allowed: what is missing is
   reported); without a repository the provenance is missing, as for a put
   without ``--model-repo``;
4. :func:`expectations` runs the Great Expectations ``provenance_record``
   suite over the provenance and the files, and the datasets and metrics checks
   the repository configures (``gates.run_model_checks``), as ``validate`` does;
5. :func:`policy` builds the Rego input document a promotion to ``tier`` would
   evaluate (see :func:`policy_input`) and evaluates the admission policy.

:func:`check` runs them in a row and returns a :class:`CheckResult`: one
:class:`RuleOutcome` per rule (``passed``, ``failed`` or ``skipped``), each
with its gate family, a message and the file (relative to ``PATH``) where one
applies. The JUnit and SARIF reporters (``lifecycle.check_reports``) write it.

What cannot be checked before ingest
------------------------------------
The input document is the one ``promote`` builds (``lifecycle.promote``), with
the parts that only exist for a stored artifact filled in as follows:

* ``encryption`` is what the vault *will* apply at ingest (payload
  c2sp-chunked/Cobblestone-256, DEK wrap A256GCM, 256-bit KEK) and
  ``signature`` the hybrid Ed25519 + ML-DSA-65 signature a put signs. Their
  rules are reported ``skipped`` ("applied by the vault at ingest"): they
  cannot fail here and pass nothing;
* ``validation`` is the status this check's own GX run gives (``failed`` if
  any expectation, configured check or file failed, else ``partial`` if a
  check was skipped, else ``passed``), exactly as ``validate`` computes it;
* ``request.approvals`` and ``request.certificate`` do not exist before an
  artifact is stored: for ``--tier cold`` (and any tier the settings make
  require a reproducibility certificate) rules ``two_person`` and
  ``reproducible`` are reported ``skipped`` with what they will require at
  promotion; every other cold rule (``license``, ``provenance``, ...) is
  evaluated for real.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from weightvault._fs import hash_file
from weightvault.errors import NotFoundError, ValidationConfigError, VaultError
from weightvault.gates import (
    ModelChecks,
    ScanResult,
    ValidationReport,
    check_safetensors_header,
    evaluate,
    loader_hazard,
    policy_rules,
    provenance_record,
    run_model_checks,
    scan_artifact,
    validate_record,
)
from weightvault.provenance import Provenance, capture_provenance

__all__ = [
    "DEFERRED_RULES",
    "FAMILIES",
    "INGEST_APPLIED",
    "PROMOTION_CHECKED",
    "CheckResult",
    "FileCheck",
    "RuleOutcome",
    "capture",
    "check",
    "check_headers",
    "expectations",
    "policy",
    "policy_input",
    "scan",
]

Status = Literal["passed", "failed", "skipped"]

#: the gate families, in the order they run (one JUnit testsuite each)
FAMILIES = ("scan", "safetensors", "provenance", "expectations", "policy")

#: Rego rules about what the vault applies when it stores an artifact
INGEST_APPLIED = frozenset({"encryption", "signature"})
#: Rego rules about what only exists once an artifact is stored (the signed log)
PROMOTION_CHECKED = frozenset({"two_person", "reproducible"})
DEFERRED_RULES = INGEST_APPLIED | PROMOTION_CHECKED

# What the vault applies at ingest (the values promote's policy input records).
_PAYLOAD = "c2sp.org/chunked-encryption@v1 Cobblestone-256"
_ENCRYPTION = {"payload": _PAYLOAD, "dek_wrap": "A256GCM", "kek_bits": 256}
_SIGNATURE = {"valid": True, "algorithms": ["Ed25519", "ML-DSA-65"]}

# Rules whose reasons name a file ("format: PATH is ..."): one outcome per file.
_PER_FILE_RULES = ("format", "extension")


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's verdict: its gate family, id, status, message and file (if any)."""

    family: str
    rule: str
    status: Status
    message: str
    #: the file the outcome is about, relative to the checked PATH (POSIX), if any
    path: str | None = None
    #: what the rule requires (for reports' rule descriptions)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "family": self.family,
            "rule": self.rule,
            "status": self.status,
            "message": self.message,
            "path": self.path,
        }


@dataclass(frozen=True)
class FileCheck:
    """One file of PATH: its manifest path, scan verdict and digest."""

    path: str
    scan: ScanResult
    sha256: str
    size: int


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found: every rule's outcome, and the overall verdict."""

    path: str
    tier: str
    outcomes: tuple[RuleOutcome, ...]
    #: files whose loading can run code or attack the loader (a put quarantines them)
    hazards: tuple[str, ...]
    validation_status: str
    policy_digest: str
    rules: dict[str, str] = field(default_factory=dict)
    #: every file of PATH, relative to it (POSIX), sorted
    files: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[RuleOutcome, ...]:
        """The outcomes that failed."""
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def skipped(self) -> tuple[RuleOutcome, ...]:
        """The outcomes that were not checkable here, each saying why."""
        return tuple(o for o in self.outcomes if o.status == "skipped")

    @property
    def passed(self) -> bool:
        """True when no rule failed (skipped ones are deferred, never failed)."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """JSON form (no secrets: paths, rule ids and messages only)."""
        return {
            "path": self.path,
            "tier": self.tier,
            "passed": self.passed,
            "hazards": list(self.hazards),
            "validation_status": self.validation_status,
            "policy_digest": self.policy_digest,
            "counts": {
                status: sum(1 for o in self.outcomes if o.status == status)
                for status in ("passed", "failed", "skipped")
            },
            "outcomes": [o.to_dict() for o in self.outcomes],
        }

    def summary(self) -> str:
        """A human summary: each failed and skipped rule on a line, then the counts."""
        lines = []
        for outcome in self.outcomes:
            if outcome.status == "passed":
                continue
            where = f" [{outcome.path}]" if outcome.path else ""
            mark = "FAIL" if outcome.status == "failed" else "SKIP"
            lines.append(f"{mark} {outcome.family}/{outcome.rule}{where}: {outcome.message}")
        counts = self.to_dict()["counts"]
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"{verdict}: {self.path} for tier {self.tier}: {counts['passed']} passed, "
            f"{counts['failed']} failed, {counts['skipped']} skipped"
        )
        if self.hazards:
            lines.append(f"unsafe content (a put quarantines it): {', '.join(self.hazards)}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- steps


def scan(root: Path) -> tuple[list[FileCheck], list[RuleOutcome]]:
    """Step 1: every file's format by content, one ``scan/format`` outcome per file.

    Raises NotFoundError if ``root`` does not exist (InvalidInputError if it holds
    no files). Safetensors header problems are left to :func:`check_headers`.
    """
    files: list[FileCheck] = []
    outcomes: list[RuleOutcome] = []
    for result in scan_artifact(root):
        source = root if not root.is_dir() else root / result.path
        regular = source.is_file() and not source.is_symlink()
        sha = hash_file(source).sha256 if regular else ""
        files.append(FileCheck(result.path, result, sha, result.size))
        header = set(_header_reasons(source, result))
        reasons = [r for r in result.reasons if r not in header]
        status: Status = "failed" if reasons else "passed"
        message = "; ".join(reasons) if reasons else f"content is {result.format.value}"
        if reasons:
            message = f"{result.format.value}: {message}"
        outcomes.append(
            RuleOutcome(
                "scan",
                "format",
                status,
                message,
                result.path,
                "every file's content is a format that cannot run code when loaded",
            )
        )
    return files, outcomes


def _is_safetensors(path: Path, result: ScanResult) -> bool:
    return result.format.value == "safetensors" or path.suffix.lower() == ".safetensors"


def _header_reasons(path: Path, result: ScanResult) -> list[str]:
    if not _is_safetensors(path, result) or not path.is_file() or path.is_symlink():
        return []
    return list(check_safetensors_header(path).reasons)


def check_headers(root: Path, files: Sequence[FileCheck]) -> list[RuleOutcome]:
    """Step 2: one ``safetensors/header`` outcome per safetensors file (content or name)."""
    outcomes = []
    for f in files:
        path = root if not root.is_dir() else root / f.path
        if not _is_safetensors(path, f.scan) or path.is_symlink():
            continue
        reasons = _header_reasons(path, f.scan)
        outcomes.append(
            RuleOutcome(
                "safetensors",
                "header",
                "failed" if reasons else "passed",
                "; ".join(reasons) if reasons else "header well-formed; tensors tile the data",
                f.path,
                "a safetensors header is a well-formed JSON object whose tensors tile the data",
            )
        )
    return outcomes


def capture(
    model_repo: Path | None, run_id: str | None, creator: str | None = None
) -> tuple[Provenance | None, list[RuleOutcome]]:
    """Step 3: the provenance a put with ``--model-repo`` would record, and its outcome.

    Incomplete provenance is captured and reported (``provenance/complete``
    fails naming each missing field); no repository is missing provenance.
    """
    description = "provenance is complete: git commit and state, datasets, run id, lock, creator"
    if model_repo is None:
        return None, [
            RuleOutcome(
                "provenance",
                "complete",
                "failed",
                "no model repository given (--model-repo): the artifact would have no provenance",
                description=description,
            )
        ]
    try:
        found = capture_provenance(
            model_repo,
            run_id=run_id,
            creator=creator or _user(),
            lock_file=None,
            parent=None,
            allow_incomplete=True,
        )
    except VaultError as exc:  # a dataset that does not match dvc.lock, a malformed lock
        return None, [
            RuleOutcome("provenance", "complete", "failed", exc.message, description=description)
        ]
    if found.complete:
        message = f"complete (git {found.git_commit}, {len(found.datasets or ())} datasets)"
        return found, [RuleOutcome("provenance", "complete", "passed", message, None, description)]
    hint = " (give --run-id)" if "run_id" in found.missing else ""
    message = f"missing: {', '.join(found.missing)}{hint}"
    return found, [RuleOutcome("provenance", "complete", "failed", message, None, description)]


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def expectations(
    root: Path,
    files: Sequence[FileCheck],
    provenance: Provenance | None,
    model_repo: Path | None,
    *,
    expectations_dir: Path | None = None,
) -> tuple[str, list[str], list[RuleOutcome]]:
    """Step 4: the GX suites validate runs; returns (validation status, skipped, outcomes).

    One outcome per expectation of each suite (``expectations/<suite>.<name>``),
    one per configured check that could not run (failed) or was skipped. The
    status is computed as ``validate`` does, including the format verdicts.
    """
    record = provenance_record(
        provenance.to_dict() if provenance is not None else {},
        [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files],
        "check",
    )
    reports: list[ValidationReport] = [validate_record(record, expectations_dir=expectations_dir)]
    outcomes: list[RuleOutcome] = []
    try:
        model = run_model_checks(model_repo, root, expectations_dir=expectations_dir)
    except ValidationConfigError as exc:
        model = ModelChecks((), (), (f"config: {exc.message}",))
    reports += model.reports
    for report in reports:
        outcomes += [
            RuleOutcome(
                "expectations",
                f"{report.suite}.{r.name}",
                "passed" if r.success else "failed",
                _expectation_message(report, r.success, r.observed, r.error),
                description=f"{r.expectation_type} ({report.suite} suite)",
            )
            for r in report.results
        ]
    for failure in model.failures:
        check_name = failure.split(":", 1)[0].split(" ", 1)[0]
        outcomes.append(RuleOutcome("expectations", check_name, "failed", failure))
    for skipped in model.skipped:
        check_name, _, why = skipped.partition(":")
        outcomes.append(RuleOutcome("expectations", check_name, "skipped", why.strip()))
    failed = any(not r.success for r in reports) or bool(model.failures)
    failed = failed or any(f.scan.verdict != "clean" for f in files)
    status = "failed" if failed else "partial" if model.skipped else "passed"
    return status, list(model.skipped), outcomes


def _expectation_message(
    report: ValidationReport, success: bool, observed: dict[str, Any], error: str | None
) -> str:
    verdict = "passed" if success else "failed"
    detail = f" ({error})" if error else f" (observed {observed})" if observed else ""
    return f"{verdict} on {report.subject}{detail if not success else ''}"


def policy_input(
    files: Sequence[dict[str, Any]],
    provenance: Provenance | None,
    validation_status: str,
    skipped: Sequence[str],
    *,
    tier: str,
    labels: dict[str, str] | None = None,
    certificate_tiers: Sequence[str] = ("cold",),
    approvals_required: int = 2,
    backfilled: bool = False,
) -> dict[str, Any]:
    """The Rego input a promotion into ``tier`` would evaluate, from plain file entries
    (path, format, size, sha256; module docstring: what stands in for the parts that only
    exist once an artifact is stored). With ``backfilled`` the provenance is an adopted
    artifact's (``lifecycle.adopt``), whose warm promotion needs approvals, which cannot
    exist before it is stored either."""
    git: dict[str, Any] = {}
    missing = ["provenance"]
    creator = ""
    if provenance is not None:
        missing = list(provenance.missing)
        creator = provenance.creator or ""
        if provenance.git_commit is not None and provenance.git_dirty is not None:
            git = {"commit": provenance.git_commit, "dirty": provenance.git_dirty}
    approvals = None
    if tier == "cold" or (backfilled and tier == "warm"):
        approvals = {
            "required": approvals_required,
            "satisfied": False,
            "approvers": [],
            "not_counted": ["not checkable before ingest: approvals are signed for a stored id"],
        }
    certificate = None
    if tier in certificate_tiers or tier == "cold":
        certificate = {
            "required": tier in certificate_tiers,
            "present": False,
            "reason": "not checkable before ingest: a certificate names a stored artifact",
        }
    return {
        "artifact": {
            "id": "check",
            "name": "check",
            "tier": "hot",
            "target_tier": tier,
            "creator": creator,
            "license": (labels or {}).get("license", ""),
            "files": [dict(f) for f in files],
            "encryption": dict(_ENCRYPTION),
            "signature": dict(_SIGNATURE),
            "validation": {"status": validation_status, "skipped": list(skipped)},
            "provenance": {
                "complete": not missing and bool(git),
                "missing": missing,
                "git": git,
                "backfilled": backfilled,
            },
        },
        "request": {
            "justification": "weightvault check",
            "approvals": approvals,
            "certificate": certificate,
        },
    }


def policy(
    document: dict[str, Any], files: Sequence[FileCheck], *, policy_dir: Path | None = None
) -> tuple[str, dict[str, str], list[RuleOutcome]]:
    """Step 5: evaluate the admission policy; (digest, rules, one outcome per rule).

    Rules ``format`` and ``extension`` get one outcome per file; deferred rules
    (:data:`DEFERRED_RULES`) are ``skipped`` with what they will require.
    """
    where: dict[str, Any] = {} if policy_dir is None else {"policy_dir": policy_dir}
    decision = evaluate(document, **where)
    rules = policy_rules(**where)
    by_rule: dict[str, list[str]] = {}
    for reason in decision.reasons:
        rule, _, text = reason.partition(":")
        by_rule.setdefault(rule, []).append(text.strip())
    outcomes: list[RuleOutcome] = []
    for rule, description in rules.items():
        reasons = by_rule.pop(rule, [])
        if rule in _PER_FILE_RULES:
            outcomes += _per_file(rule, description, reasons, files)
            continue
        status: Status = "failed" if reasons else "passed"
        message = "; ".join(reasons) if reasons else "satisfied"
        if rule in INGEST_APPLIED:
            status, message = "skipped", "applied by the vault at ingest (not checkable before)"
        elif rule in PROMOTION_CHECKED and reasons:
            status = "skipped"
            message = f"checked at promotion, not checkable before ingest: {message}"
        outcomes.append(RuleOutcome("policy", rule, status, message, None, description))
    for rule, reasons in by_rule.items():  # a reason of a rule the policy does not list
        outcomes.append(RuleOutcome("policy", rule, "failed", "; ".join(reasons)))
    return decision.policy_digest, rules, outcomes


def _per_file(
    rule: str, description: str, reasons: list[str], files: Sequence[FileCheck]
) -> list[RuleOutcome]:
    out = []
    left = list(reasons)
    for f in files:
        mine = [r for r in reasons if r.startswith(f"{f.path} ")]
        left = [r for r in left if r not in mine]
        out.append(
            RuleOutcome(
                "policy",
                rule,
                "failed" if mine else "passed",
                "; ".join(mine) if mine else "satisfied",
                f.path,
                description,
            )
        )
    if left:
        out.append(RuleOutcome("policy", rule, "failed", "; ".join(left), None, description))
    return out


# --------------------------------------------------------------------------- all of it


def check(
    path: Path,
    *,
    model_repo: Path | None = None,
    tier: str = "warm",
    run_id: str | None = None,
    labels: dict[str, str] | None = None,
    policy_dir: Path | None = None,
    expectations_dir: Path | None = None,
    certificate_tiers: Sequence[str] = ("cold",),
    approvals_required: int = 2,
) -> CheckResult:
    """Every step in this process; nothing is stored and nothing is loaded.

    Raises NotFoundError if ``path`` does not exist, InvalidInputError if it
    holds no files, ConfigError if the policy or a packaged suite is broken.
    """
    if not path.exists() and not path.is_symlink():
        raise NotFoundError(f"no such file or directory: {path}")
    files, outcomes = scan(path)
    outcomes += check_headers(path, files)
    provenance, found = capture(model_repo, run_id)
    outcomes += found
    status, skipped, checked = expectations(
        path, files, provenance, model_repo, expectations_dir=expectations_dir
    )
    outcomes += checked
    document = policy_input(
        [
            {"path": f.path, "format": f.scan.format.value, "size": f.size, "sha256": f.sha256}
            for f in files
        ],
        provenance,
        status,
        skipped,
        tier=tier,
        labels=labels,
        certificate_tiers=certificate_tiers,
        approvals_required=approvals_required,
    )
    digest, rules, judged = policy(document, files, policy_dir=policy_dir)
    outcomes += judged
    hazards = tuple(f.path for f in files if loader_hazard(f.scan))
    return CheckResult(
        str(path),
        tier,
        tuple(outcomes),
        hazards,
        status,
        digest,
        rules,
        tuple(f.path for f in files),
    )
