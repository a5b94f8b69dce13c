"""Issue 19 item 2: `weightvault check` for model CI, on real files and a real git+DVC repo.

The model repository is built with git and ``dvc repro`` (a one-stage pipeline writing a
safetensors file), with a validation config (a GX suite file over its dataset, metric
thresholds). Each test runs the real CLI in this process (GX is slow to import once) and
validates the JUnit report against the vendored Ant/Jenkins JUnit XSD and the SARIF log
against the vendored OASIS SARIF 2.1.0 JSON schema (tests/data/schemas/README.md). No vault,
store or key is used: the check must not need one.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema

from pipeline.workspace import commit_all, run
from tests.support.model_repos import DVC_YAML, TRAIN_SCRIPT
from weightvault.cli._app import main
from weightvault.errors import (
    CheckFailedError,
    CheckUnsafeContentError,
    NotFoundError,
    OutputUnwritableError,
)

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "schemas"

SUITE = {
    "name": "inputs",
    "expectations": [
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {"column_set": ["a", "b"], "exact_match": True},
            "meta": {"name": "inputs.columns"},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "a", "min_value": 0, "max_value": 10},
            "meta": {"name": "inputs.a.range"},
        },
    ],
}

CONFIG = """\
[[validation.datasets]]
path = "data/input.csv"
suite = "checks/inputs.json"

[validation.metrics]
path = "metrics.json"
thresholds = ["f1 >= 0.7"]
"""


@pytest.fixture(scope="module")
def base_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git+DVC model repo, trained with `dvc repro`, its validation config committed."""
    repo = tmp_path_factory.mktemp("model-ci") / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "checks").mkdir()
    (repo / "data" / "input.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    (repo / "train.py").write_text(TRAIN_SCRIPT)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "requirements.txt").write_text("numpy==2.0.0\nsafetensors==0.4.5\n")
    (repo / "checks" / "inputs.json").write_text(json.dumps(SUITE))
    (repo / "metrics.json").write_text(json.dumps({"f1": 0.9}))
    (repo / "weightvault.toml").write_text(CONFIG)
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "dvc", "init", "-q")
    run(repo, "dvc", "repro", "-q")
    commit_all(repo, "model")
    return repo


@pytest.fixture
def repo(base_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the model repo (still clean: same commit, same contents)."""
    copy = tmp_path / "repo"
    shutil.copytree(base_repo, copy, symlinks=True)
    run(copy, "git", "update-index", "--refresh", "-q")
    return copy


@pytest.fixture
def artifact(repo: Path, tmp_path: Path) -> Path:
    """What a put would store: the trained model, copied out of the repo."""
    out = tmp_path / "artifact"
    out.mkdir()
    shutil.copy2(repo / "model" / "model.safetensors", out / "model.safetensors")
    return out


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "junit-windyroad.xsd"))


@pytest.fixture(scope="module")
def sarif_validator() -> Any:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


class Reports:
    """The outcome of one CLI run: exit code, stdout/stderr, parsed reports."""

    def __init__(self, code: int, out: str, err: str, junit: Path, sarif: Path) -> None:
        self.code, self.out, self.err = code, out, err
        self.junit_path, self.sarif_path = junit, sarif
        self.sarif: dict[str, Any] = json.loads(sarif.read_text())
        import xml.etree.ElementTree as ET

        self.junit = ET.parse(junit).getroot()  # noqa: S314 - our own report

    def junit_failures(self) -> set[str]:
        """``classname::testcase name`` of each failed testcase."""
        return {
            f"{case.get('classname', '').rsplit('.', 1)[-1]}/{case.get('name')}"
            for case in self.junit.iter("testcase")
            if case.find("failure") is not None
        }

    def junit_skipped(self) -> set[str]:
        return {
            f"{case.get('classname', '').rsplit('.', 1)[-1]}/{case.get('name')}"
            for case in self.junit.iter("testcase")
            if case.find("skipped") is not None
        }

    def sarif_results(self) -> set[tuple[str, str | None]]:
        """(ruleId, file uri) of every SARIF result; the uri is None for one about the
        artifact as a whole (placed at its first file, its location message says so)."""
        found = set()
        for result in self.sarif["runs"][0]["results"]:
            (location,) = result["locations"]
            uri = location["physicalLocation"]["artifactLocation"]["uri"]
            assert location["physicalLocation"]["artifactLocation"]["uriBaseId"] == "PATH"
            whole = location.get("message", {}).get("text") == "the artifact as a whole"
            found.add((result["ruleId"], None if whole else uri))
        return found


def check(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    path: Path,
    *args: str,
    junit_schema: xmlschema.XMLSchema,
    sarif_validator: Any,
) -> Reports:
    """Run `weightvault check` (the real CLI, in-process) and validate both reports."""
    junit, sarif = tmp_path / "report.xml", tmp_path / "report.sarif"
    code = main(["check", str(path), *args, "--junit", str(junit), "--sarif", str(sarif)])
    out, err = capsys.readouterr()
    junit_schema.validate(str(junit))
    sarif_validator.validate(json.loads(sarif.read_text()))
    return Reports(code, out, err, junit, sarif)


@pytest.fixture
def run_check(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    junit_schema: xmlschema.XMLSchema,
    sarif_validator: Any,
) -> Any:
    def go(path: Path, *args: str) -> Reports:
        return check(
            capsys,
            tmp_path,
            path,
            *args,
            junit_schema=junit_schema,
            sarif_validator=sarif_validator,
        )

    return go


def test_a_clean_model_passes(run_check: Any, repo: Path, artifact: Path) -> None:
    got = run_check(artifact, "--model-repo", str(repo), "--run-id", "ci-1")
    assert got.code == 0, got.out + got.err
    assert got.junit_failures() == set()
    assert got.sarif_results() == set()
    assert "PASSED" in got.out
    # Every gate family ran and reported its rules.
    suites = {s.get("name"): int(s.get("tests", "0")) for s in got.junit.iter("testsuite")}
    assert all(suites[f"weightvault.check.{f}"] > 0 for f in ("scan", "safetensors", "policy"))
    assert suites["weightvault.check.expectations"] > 0
    cases = {c.get("name") for c in got.junit.iter("testcase")}
    assert "inputs.inputs.a.range" in cases  # the repo's own suite ran
    assert "metrics_thresholds.metrics.f1 >= 0.7" in cases
    # What the vault applies at ingest is not checkable here: reported skipped, not passed.
    assert {"policy/encryption", "policy/signature"} <= got.junit_skipped()
    driver = got.sarif["runs"][0]["tool"]["driver"]
    ids = {rule["id"] for rule in driver["rules"]}
    assert {"scan/format", "safetensors/header", "policy/provenance", "policy/format"} <= ids
    policy_rule = next(r for r in driver["rules"] if r["id"] == "policy/git")
    assert "clean git tree" in policy_rule["shortDescription"]["text"]  # from the policy


def test_a_pickle_fails_as_unsafe_content(run_check: Any, repo: Path, artifact: Path) -> None:
    (artifact / "extra.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    got = run_check(artifact, "--model-repo", str(repo), "--run-id", "ci-1")
    assert got.code == CheckUnsafeContentError.exit_code, got.err
    assert got.err.count("\n") == 1
    assert "extra.pkl" in got.err
    failures = got.junit_failures()
    assert {
        "scan/format [extra.pkl]",
        "policy/format [extra.pkl]",
        "policy/extension [extra.pkl]",
    } <= failures
    assert "scan/format [model.safetensors]" not in failures
    results = got.sarif_results()
    assert {
        ("scan/format", "extra.pkl"),
        ("policy/format", "extra.pkl"),
        ("policy/extension", "extra.pkl"),
    } <= results
    assert not any(uri == "model.safetensors" for _, uri in results)


def test_a_malformed_safetensors_header_fails(run_check: Any, repo: Path, artifact: Path) -> None:
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'  # an unclosed object
    (artifact / "broken.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header + b"\x00" * 8
    )
    got = run_check(artifact, "--model-repo", str(repo), "--run-id", "ci-1")
    assert got.code == CheckUnsafeContentError.exit_code, got.err
    assert "safetensors/header [broken.safetensors]" in got.junit_failures()
    assert "safetensors/header [model.safetensors]" not in got.junit_failures()
    assert ("safetensors/header", "broken.safetensors") in got.sarif_results()
    result = next(r for r in got.sarif["runs"][0]["results"] if r["ruleId"] == "safetensors/header")
    assert "not valid JSON" in result["message"]["text"]


def test_missing_provenance_fails_the_provenance_rules(run_check: Any, artifact: Path) -> None:
    got = run_check(artifact)  # no --model-repo: the artifact would have no provenance
    assert got.code == CheckFailedError.exit_code, got.err
    failures = got.junit_failures()
    assert {
        "provenance/complete",
        "policy/provenance",
        "policy/git",
        "policy/validation",
        "expectations/provenance_record.record.git_commit.not_null",
    } <= failures
    assert not any(f.startswith(("scan/", "safetensors/")) for f in failures)
    ids = {rule for rule, _ in got.sarif_results()}
    assert {"provenance/complete", "policy/provenance", "policy/git"} <= ids
    # The configured checks could not run without the repository: skipped, named.
    assert "expectations/datasets" in got.junit_skipped()


def test_a_repo_without_a_run_id_names_what_is_missing(
    run_check: Any, repo: Path, artifact: Path
) -> None:
    got = run_check(artifact, "--model-repo", str(repo), "--json")
    assert got.code == CheckFailedError.exit_code
    document = json.loads(got.out)
    complete = next(o for o in document["outcomes"] if o["rule"] == "complete")
    assert complete["status"] == "failed"
    assert "run_id" in complete["message"]
    assert document["passed"] is False


def test_a_failing_gx_suite_fails_its_expectations(
    run_check: Any, repo: Path, artifact: Path
) -> None:
    (repo / "metrics.json").write_text(json.dumps({"f1": 0.5}))
    suite = json.loads((repo / "checks" / "inputs.json").read_text())
    suite["expectations"][1]["kwargs"]["max_value"] = 2  # a = 3 and 5 are out of range
    (repo / "checks" / "inputs.json").write_text(json.dumps(suite))
    commit_all(repo, "worse model")
    got = run_check(artifact, "--model-repo", str(repo), "--run-id", "ci-2")
    assert got.code == CheckFailedError.exit_code, got.err
    failures = got.junit_failures()
    assert {
        "expectations/inputs.inputs.a.range",
        "expectations/metrics_thresholds.metrics.f1 >= 0.7",
        "policy/validation",
    } <= failures
    assert "expectations/inputs.inputs.columns" not in failures
    assert "provenance/complete" not in failures  # the commit is clean and complete
    ids = {rule for rule, _ in got.sarif_results()}
    assert "expectations/inputs.inputs.a.range" in ids
    assert "policy/git" not in ids


def test_cold_defers_approvals_and_certificate_but_checks_the_license(
    run_check: Any, repo: Path, artifact: Path
) -> None:
    got = run_check(artifact, "--model-repo", str(repo), "--run-id", "ci-1", "--tier", "cold")
    assert got.code == CheckFailedError.exit_code
    assert got.junit_failures() == {"policy/license"}
    assert {"policy/two_person", "policy/reproducible"} <= got.junit_skipped()

    licensed = run_check(
        artifact,
        "--model-repo",
        str(repo),
        "--run-id",
        "ci-1",
        "--tier",
        "cold",
        "--label",
        "license=Apache-2.0",
    )
    assert licensed.code == 0, licensed.out
    skipped = licensed.junit.find(".//testcase[@name='two_person']/skipped")
    assert skipped is not None
    assert "checked at promotion" in skipped.get("message", "")


def test_bad_input_is_one_line_and_its_own_exit_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    code = main(["check", str(tmp_path / "nothing-here")])
    err = capsys.readouterr().err
    assert code == NotFoundError.exit_code
    assert err.count("\n") == 1
    assert "nothing-here" in err

    code = main(["check", str(artifact), "--junit", str(tmp_path / "no-dir" / "r.xml")])
    err = capsys.readouterr().err
    assert code == OutputUnwritableError.exit_code
    assert err.count("\n") == 1
    assert "--junit" in err
    assert not (tmp_path / "no-dir").exists()

    code = main(["check", str(artifact), "--sarif", str(tmp_path)])  # a directory
    assert code == OutputUnwritableError.exit_code
    assert "--sarif" in capsys.readouterr().err
