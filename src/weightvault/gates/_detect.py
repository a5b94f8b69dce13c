"""Detection rules as policy: Rego over a window of the signed log's events.

The rules are ``detect.rego`` in the policy directory (package
``weightvault.detect``; ``docs/incidents.md``). :func:`evaluate_detection`
runs them on one window (``{events, since, state, thresholds, ...}``) and
returns the findings; the detector (``lifecycle.detection``) feeds it the
log. The policy is compiled once per process (keyed by the file's sha256).

Table tests are data: ``tests/detect_cases.json`` holds a ``base`` input and
cases (a JSON merge patch of it) listing exactly the findings expected, as
``"<rule> <key>"`` strings; every rule needs a case where it fires and one
where it does not (:func:`run_detect_tests`, ``weightvault policy test``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightvault.errors import ConfigError
from weightvault.gates._policy import (
    CaseResult,
    _file_policy,
    _FilePolicy,
    _plain_json,
    _query_data,
    _read_output,
    _rule_descriptions,
    merge_patch,
    one_line,
)

__all__ = [
    "ACTIONS",
    "DETECT_CASES_FILE",
    "DETECT_FILE",
    "DETECT_PACKAGE",
    "Finding",
    "detect_rules",
    "detect_thresholds",
    "detection_tags",
    "evaluate_detection",
    "run_detect_tests",
]

DETECT_PACKAGE = "weightvault.detect"
DETECT_FILE = "detect.rego"
DETECT_CASES_FILE = Path("tests") / "detect_cases.json"
ACTIONS = frozenset(
    {"quarantine", "revoke_grants", "isolate_tier", "compromise_keys", "recover", "rekey"}
)
"""What a finding may ask containment to do."""
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Finding:
    """One rule firing on a window: what the rule says, as the policy returned it."""

    rule: str
    severity: str
    key: str
    evidence: tuple[str, ...]
    artifacts: tuple[str, ...]
    principals: tuple[str, ...]
    keys: tuple[str, ...]
    tiers: tuple[str, ...]
    actions: tuple[str, ...]
    counted: bool = False

    @classmethod
    def parse(cls, doc: Any) -> Finding:
        """A finding from the policy's output; ConfigError if it is malformed."""
        try:
            names = ("evidence", "artifacts", "principals", "keys", "tiers", "actions")
            lists = {n: tuple(str(v) for v in doc[n]) for n in names}
            out = cls(
                str(doc["rule"]),
                str(doc["severity"]),
                str(doc["key"]),
                **lists,
                counted=doc.get("counted") is True,
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"detection policy returned a malformed finding: {exc!r}") from None
        if out.severity not in SEVERITIES or not set(out.actions) <= ACTIONS or not out.evidence:
            raise ConfigError(
                f"detection policy finding {out.rule} has an unknown severity, "
                "action or no evidence"
            )
        return out

    @property
    def label(self) -> str:
        """``"<rule> <key>"``: how the table tests name a finding."""
        return f"{self.rule} {self.key}"


def _policy(policy_dir: Path) -> _FilePolicy:
    return _file_policy(
        policy_dir / DETECT_FILE, DETECT_PACKAGE, ("decision", "tags"), "detection policy"
    )


def _run(input: Mapping[str, Any], policy_dir: Path, name: str, field: str) -> dict[str, Any]:
    document = json.dumps(_plain_json(input), ensure_ascii=False)
    compiled = _policy(policy_dir)
    with compiled.lock:
        compiled.interpreter.set_input_term(document)
        try:
            output = compiled.interpreter.query_bundle(compiled.bundles[name])
        except Exception as exc:  # regopy raises RegoError, or ValueError on bad output
            raise ConfigError(f"detection policy evaluation failed: {one_line(exc)}") from None
    what = f"data.{DETECT_PACKAGE}.{name}"
    result = _read_output(output, what)
    if not isinstance(result, dict) or not isinstance(result.get(field), list):
        raise ConfigError(f"{what} is not an object with {field}")
    if not isinstance(result.get("limits"), dict):
        raise ConfigError(f"{what} names no limits")
    return result


def _decision(input: Mapping[str, Any], policy_dir: Path) -> dict[str, Any]:
    return _run(input, policy_dir, "decision", "findings")


def detection_tags(
    input: Mapping[str, Any], policy_dir: Path
) -> tuple[list[tuple[str, str, int]], dict[str, float]]:
    """What the counting rules count in ``input.events``: (rule, group, log index) each,
    and the thresholds in force (the policy's, with ``input.thresholds`` over them)."""
    result = _run(input, policy_dir, "tags", "counted")
    try:
        tags = [(str(t["rule"]), str(t["group"]), int(t["index"])) for t in result["counted"]]
        limits = {str(k): float(v) for k, v in result["limits"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"detection policy returned malformed tags: {exc!r}") from None
    return sorted(tags, key=lambda t: t[2]), limits


def evaluate_detection(input: Mapping[str, Any], policy_dir: Path) -> list[Finding]:
    """The findings of the detection rules on one window, sorted by rule and key.

    ConfigError if the policy is missing, broken or returns something malformed
    (the detector then fails: it never reports "nothing found" on a broken policy).
    """
    found = [Finding.parse(f) for f in _decision(input, policy_dir)["findings"]]
    return sorted(found, key=lambda f: (f.rule, f.key, f.evidence))


def _constant(policy_dir: Path, name: str) -> Any:
    compiled = _policy(policy_dir)
    return _query_data(
        compiled.interpreter, compiled.lock, DETECT_PACKAGE, name, "detection policy"
    )


def detect_rules(policy_dir: Path) -> dict[str, str]:
    """Rule id -> what it requires, as the detection policy declares them."""
    return _rule_descriptions(_constant(policy_dir, "rules"), DETECT_PACKAGE)


def detect_thresholds(policy_dir: Path) -> dict[str, float]:
    """The policy's default thresholds (``data.weightvault.detect.thresholds``)."""
    found = _constant(policy_dir, "thresholds")
    if not isinstance(found, dict):
        raise ConfigError(f"data.{DETECT_PACKAGE}.thresholds is not an object")
    return {str(k): float(v) for k, v in found.items()}


def run_detect_tests(policy_dir: Path, cases_file: Path | None = None) -> list[CaseResult]:
    """Every detection case: the exact set of ``"<rule> <key>"`` findings expected.

    A case that expects no finding counts as an "allow" case of its rule, one that
    expects findings as a "deny" case (so ``coverage_gaps`` asks both of each rule).
    """
    path = cases_file if cases_file is not None else policy_dir / DETECT_CASES_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        base = document["base"]
        cases = [
            (
                str(c["name"]),
                str(c["rule"]),
                merge_patch(base, c.get("patch", {})),
                sorted(str(f) for f in c["fires"]),
            )
            for c in document["cases"]
        ]
    except FileNotFoundError:
        raise ConfigError(f"detection cases file {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"detection cases file {path} is malformed: {exc!r}") from None
    results = []
    for name, rule, input, fires in cases:
        got = sorted(f.label for f in evaluate_detection(input, policy_dir))
        missing = sorted(set(fires) - set(got))
        unexpected = sorted(set(got) - set(fires))
        results.append(
            CaseResult(
                name, rule, not missing and not unexpected, not fires, not got, missing, unexpected
            )
        )
    return results
