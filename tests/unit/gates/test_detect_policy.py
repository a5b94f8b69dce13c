"""The detection rules (config/policies/detect.rego): every table case, the engine's contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from weightvault.errors import ConfigError
from weightvault.gates import (
    coverage_gaps,
    detect_rules,
    detect_thresholds,
    detection_tags,
    evaluate_detection,
    run_detect_tests,
)
from weightvault.gates._detect import ACTIONS

POLICIES = REPO / "config" / "policies"
CASES = json.loads((POLICIES / "tests" / "detect_cases.json").read_text())
RULES = (
    "read_spike_artifact",
    "read_spike_principal",
    "new_client",
    "grant_misuse",
    "integrity_failures",
    "denied_burst",
    "cold_read_unapproved",
    "compromised_key_use",
)


def test_the_policy_declares_the_issue_s_rules() -> None:
    assert set(detect_rules(POLICIES)) == set(RULES)
    assert detect_thresholds(POLICIES) == {
        "window_seconds": 300,
        "read_spike_artifact": 20,
        "read_spike_principal": 50,
        "denied_burst": 5,
        "integrity_failures": 2,
    }


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_table_case(case: dict[str, Any], tmp_path: Path) -> None:
    one = {**CASES, "cases": [case]}
    path = tmp_path / "one.json"
    path.write_text(json.dumps(one))
    (result,) = run_detect_tests(POLICIES, path)
    assert result.passed, result.describe()


def test_every_rule_has_a_case_that_fires_and_one_that_does_not() -> None:
    results = run_detect_tests(POLICIES)
    assert [r.describe() for r in results if not r.passed] == []
    assert coverage_gaps(results, detect_rules(POLICIES)) == []
    assert {r.rule for r in results} == set(RULES)


def test_a_case_that_expects_the_wrong_finding_fails(tmp_path: Path) -> None:
    case = next(c for c in CASES["cases"] if c["fires"])
    wrong = {**CASES, "cases": [{**case, "fires": ["denied_burst nobody"]}]}
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(wrong))
    (result,) = run_detect_tests(POLICIES, path)
    assert not result.passed
    assert result.missing == ["denied_burst nobody"]
    assert result.unexpected == case["fires"]


def _read(i: int, **kw: Any) -> dict[str, Any]:
    base = CASES["cases"][0]["patch"]["events"][0]
    return {**base, "index": i, "id": f"e{i}", "t": 1000 + i, **kw}


def test_findings_name_their_evidence_and_containment_actions() -> None:
    doc = {**CASES["base"], "events": [_read(0, tier="cold")]}
    (found,) = evaluate_detection(doc, POLICIES)
    assert found.rule == "cold_read_unapproved"
    assert found.evidence == ("e0",)
    assert (found.artifacts, found.principals, found.tiers) == (("a1",), ("bob",), ("cold",))
    assert set(found.actions) <= ACTIONS
    assert found.actions
    assert found.severity == "high"


def test_tags_say_what_the_counting_rules_count_and_the_thresholds_in_force() -> None:
    refused = _read(1, kind="artifact.ingested", outcome="refused")
    failed = _read(2, kind="artifact.verified", outcome="failed", error="IntegrityError")
    doc = {**CASES["base"], "events": [_read(0), refused, failed]}
    tags, limits = detection_tags(doc, POLICIES)
    assert tags == [
        ("read_spike_artifact", "a1", 0),
        ("read_spike_principal", "bob", 0),
        ("denied_burst", "bob", 1),
        ("integrity_failures", "a1", 2),
    ]
    assert limits["read_spike_artifact"] == 3  # the input's override
    assert limits["read_spike_principal"] == 4


def test_a_broken_policy_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "detect.rego").write_text("package weightvault.detect\nfindings := {\n")
    with pytest.raises(ConfigError, match="does not compile"):
        evaluate_detection({"events": []}, tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        evaluate_detection({"events": []}, tmp_path / "none")
