"""The Rego admission policy, driven by config/policies/tests/cases.json."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from weightvault.errors import ConfigError, InvalidInputError, PolicyError
from weightvault.gates import (
    coverage_gaps,
    evaluate,
    explain,
    policy_rules,
    run_policy_tests,
    scan_artifact,
)
from weightvault.gates._policy import (
    CASES_FILE,
    DEFAULT_POLICY_DIR,
    Decision,
    enforce,
    load_cases,
    merge_patch,
    policy_digest,
    rule_of,
    run_case,
)

POLICY_DIR = REPO / "config" / "policies"
CASES = load_cases(POLICY_DIR / CASES_FILE)
BASE: dict[str, Any] = json.loads((POLICY_DIR / CASES_FILE).read_text())["base"]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.rule}:{c.name}" for c in CASES])
def test_policy_case(case: Any) -> None:
    result = run_case(case, POLICY_DIR)
    assert result.passed, result.describe()


def test_every_rule_has_allow_and_deny_cases() -> None:
    rules = policy_rules(POLICY_DIR)
    results = run_policy_tests(POLICY_DIR)
    assert all(r.passed for r in results), [r.describe() for r in results if not r.passed]
    assert coverage_gaps(results, rules) == []
    assert {c.rule for c in CASES} == set(rules)


def test_deny_reasons_name_their_rule() -> None:
    rules = policy_rules(POLICY_DIR)
    for case in CASES:
        for reason in case.reasons:
            assert rule_of(reason) == case.rule, reason
            assert rule_of(reason) in rules


def test_base_is_allowed_and_enforced() -> None:
    decision = enforce(BASE, POLICY_DIR)
    assert decision.allow
    assert decision.reasons == []
    assert decision.policy_digest == policy_digest(POLICY_DIR)
    assert explain(decision).startswith("ALLOW under policy sha256:")


def test_all_reasons_are_collected_and_enforce_raises() -> None:
    bad = merge_patch(
        BASE,
        {
            "artifact": {
                "files": [{"path": "model.pkl", "format": "pickle", "size": 1, "sha256": "0" * 64}],
                "signature": {"valid": False},
                "validation": {"status": "failed"},
            },
            "request": {"approvals": {"required": 2, "satisfied": True, "approvers": ["alice"]}},
        },
    )
    decision = evaluate(bad, POLICY_DIR)
    assert not decision.allow
    assert {rule_of(r) for r in decision.reasons} == {
        "format",
        "extension",
        "signature",
        "validation",
        "two_person",
    }
    text = explain(decision)
    assert text.splitlines()[0].startswith("DENY (5 reasons)")
    assert all(f"  - {r}" in text for r in decision.reasons)
    with pytest.raises(PolicyError, match="policy denied: ") as caught:
        enforce(bad, POLICY_DIR)
    assert caught.value.exit_code == PolicyError.exit_code
    assert "model.pkl" in str(caught.value)


def test_empty_input_fails_closed() -> None:
    decision = evaluate({}, POLICY_DIR)
    assert not decision.allow
    assert {rule_of(r) for r in decision.reasons} >= {
        "tier",
        "files",
        "encryption",
        "signature",
        "validation",
    }


@pytest.mark.parametrize(
    "patch",
    [
        {"artifact": "not an object"},
        {"artifact": {"files": "model.safetensors"}},
        {"artifact": {"files": [42]}},
        {"artifact": {"files": [{"path": 7, "format": "safetensors"}]}},
        {"artifact": {"signature": {"valid": "yes"}}},
        {"artifact": {"encryption": {"kek_bits": "256"}}},
        {"artifact": {"provenance": {"git": {"dirty": "false"}}}},
        {"request": {"approvals": {"satisfied": "true", "approvers": ["bob", "carol"]}}},
        {"request": {"approvals": {"required": "2", "approvers": ["bob", "carol"]}}},
        {"request": {"approvals": {"approvers": "bob, carol"}}},
    ],
)
def test_mistyped_fields_deny(patch: dict[str, Any]) -> None:
    assert not evaluate(merge_patch(BASE, patch), POLICY_DIR).allow


def test_quotes_backslashes_and_control_characters_in_strings() -> None:
    # rego-cpp mis-serialises these; they are replaced by U+FFFD before evaluation.
    weird = merge_patch(
        BASE,
        {
            "artifact": {
                "creator": 'al"ice',
                "files": [{"path": 'a\\b"\n.pkl', "format": "json", "size": 1, "sha256": ""}],
            },
            "request": {
                "approvals": {"required": 2, "satisfied": True, "approvers": ['Al"ice', "bob"]},
                "justification": 'see "ticket"\n\tline 2',
            },
        },
    )
    decision = evaluate(weird, POLICY_DIR)
    assert decision.reasons == [
        "extension: a\ufffdb\ufffd\ufffd.pkl ends in .pkl, an extension of pickle-based formats",
        "two_person: cold needs 2 approvers other than the creator al\ufffdice; "
        'the approvals name ["Al\ufffdice", "bob"]',
    ]
    fine = merge_patch(BASE, {"request": {"justification": 'quote " and \\ and \n'}})
    assert evaluate(fine, POLICY_DIR).allow


def test_malicious_pickle_is_never_run_and_is_denied(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    root = tmp_path / "artifact"
    root.mkdir()
    (root / "model.safetensors").write_bytes(pickle.dumps(Payload(), protocol=4))
    (root / "config.json").write_text("{}")
    files = [
        {"path": r.path, "format": r.format.value, "size": r.size, "sha256": "0" * 64}
        for r in scan_artifact(root)
    ]
    decision = evaluate(merge_patch(BASE, {"artifact": {"files": files}}), POLICY_DIR)
    assert not marker.exists()
    assert not decision.allow
    assert decision.reasons == [
        "format: model.safetensors is pickle, a pickle-based format (loading it can execute code)"
    ]


def test_policy_digest_covers_every_file(tmp_path: Path) -> None:
    copy = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, copy)
    before = policy_digest(copy)
    assert before == policy_digest(POLICY_DIR)
    (copy / "weightvault.rego").write_text((copy / "weightvault.rego").read_text() + "\n")
    assert policy_digest(copy) != before
    # A second module in the same package adds a rule, and changes the digest.
    (copy / "extra.rego").write_text(
        'package weightvault.admission\n\ndeny contains "extra: always" if true\n'
    )
    decision = evaluate(BASE, copy)
    assert decision.reasons == ["extra: always"]
    assert decision.policy_digest != before


def test_broken_or_missing_policy_is_a_config_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        evaluate(BASE, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \.rego files"):
        evaluate(BASE, tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "p.rego").write_text("package weightvault.admission\n\ndeny contains x if {\n")
    capfd.readouterr()
    with pytest.raises(ConfigError, match=r"policy file p\.rego does not compile") as caught:
        evaluate(BASE, broken)
    assert "unclosed" in str(caught.value)
    assert "\n" not in str(caught.value)
    printed = capfd.readouterr()
    assert printed.out == ""


def test_input_must_be_plain_json() -> None:
    with pytest.raises(InvalidInputError):
        evaluate({"artifact": {"size": float("nan")}}, POLICY_DIR)
    with pytest.raises(InvalidInputError):
        evaluate({"artifact": object()}, POLICY_DIR)
    with pytest.raises(InvalidInputError):
        evaluate(["not", "a", "mapping"], POLICY_DIR)  # type: ignore[arg-type]


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    assert merge_patch(target, {}) == target
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}


def test_run_policy_tests_reports_failures(tmp_path: Path) -> None:
    cases = {
        "base": BASE,
        "cases": [
            {"name": "wrong expectation", "rule": "license", "patch": {}, "allow": False},
            {"name": "right", "rule": "license", "patch": {}, "allow": True, "reasons": []},
        ],
    }
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    results = run_policy_tests(POLICY_DIR, path)
    assert [r.passed for r in results] == [False, True]
    assert "expected allow=False, got True" in results[0].describe()
    with pytest.raises(ConfigError):
        run_policy_tests(POLICY_DIR, tmp_path / "missing.json")


def test_default_policy_dir_is_the_checkout() -> None:
    assert DEFAULT_POLICY_DIR == POLICY_DIR
    decision = evaluate(BASE)
    assert isinstance(decision, Decision)
    assert decision.to_dict() == {
        "allow": True,
        "reasons": [],
        "policy_digest": decision.policy_digest,
    }
