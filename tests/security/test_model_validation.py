"""Issue 15 item 3: validation is the model's own, partial is never a pass, GX leaves Data Docs.

Findings behind it: validation was hard-coded to the digits demo, and validate
without a model repo reported "passed" with the dataset and metrics checks
skipped. Here a model repo that is not the demo (a flowers dataset, its own
suite file, metric thresholds in pyproject.toml) passes and fails as it
configures; without a model repo the signed report says partial and names what
was skipped, and promotion to warm is refused by rule ``validation_complete``;
each suite's GX Checkpoint Data Docs are stored, bound to the signed report by
sha256, and fetched back checked against it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.support.artifacts import ingest_model
from tests.support.durable_store import cli
from weightvault.artifacts import Vault
from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    ValidationConfigError,
    ValidationPartialError,
)
from weightvault.lifecycle.evidence import latest_report
from weightvault.lifecycle.validate import fetch_data_docs, validate_artifact

SUITE = {
    "name": "flowers",
    "expectations": [
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {"column_set": ["petal_length", "species"], "exact_match": True},
            "meta": {"name": "flowers.columns"},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "petal_length", "min_value": 0, "max_value": 10},
            "meta": {"name": "flowers.petal_length.range"},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "species", "value_set": ["setosa", "virginica"]},
            "meta": {"name": "flowers.species.known"},
        },
    ],
}

PYPROJECT = """
[project]
name = "flowers-model"

[[tool.weightvault.validation.datasets]]
path = "data/flowers.csv"
suite = "checks/flowers.json"

[tool.weightvault.validation.metrics]
path = "eval/metrics.json"
thresholds = ["f1 >= 0.7", "loss < 0.5"]
"""


def _flowers_repo(root: Path, *, species: str = "virginica", f1: float = 0.81) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "checks").mkdir()
    (root / "eval").mkdir()
    rows = ["petal_length,species", "1.4,setosa", f"5.1,{species}", "1.3,setosa"]
    (root / "data" / "flowers.csv").write_text("\n".join(rows) + "\n")
    (root / "checks" / "flowers.json").write_text(json.dumps(SUITE))
    (root / "eval" / "metrics.json").write_text(json.dumps({"f1": f1, "loss": 0.3}))
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


@pytest.fixture
def digits(vault: Vault, model_repo: Path) -> str:
    return ingest_model(vault, model_repo)


def test_a_model_is_validated_as_its_repo_configures(
    vault: Vault, digits: str, tmp_path: Path
) -> None:
    good = validate_artifact(vault, digits, _flowers_repo(tmp_path / "good"))
    assert good.status == "passed", good.failures
    assert good.skipped == []
    row = vault.resolve(digits)
    logged = latest_report(vault, digits, row.content_digest)
    assert logged is not None
    assert logged.sha256 == good.report_sha256
    report = logged.report
    assert report["config"] == "pyproject.toml"
    assert {e["suite"] for e in report["expectations"]} == {
        "provenance_record",
        "flowers",
        "metrics_thresholds",
    }
    # Data Docs: one page per Checkpoint, stored, listed with its sha256 in the signed report.
    links = report["data_docs"]
    assert {link["suite"] for link in links} == {
        "provenance_record",
        "flowers",
        "metrics_thresholds",
    }
    for link in links:
        stored = vault.store.get_bytes(vault.bucket("audit"), link["key"])
        assert hashlib.sha256(stored).hexdigest() == link["sha256"]
    out = tmp_path / "docs"
    proc = cli("data-docs", digits, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    pages = {
        Path(p).name.split("-")[0]: Path(p).read_text() for p in json.loads(proc.stdout)["pages"]
    }
    # The page is GX's rendering of this very run (it shows no meta names): the suite, its
    # status and the value set the species expectation checked.
    page = " ".join(re.sub(r"<[^>]+>", " ", pages["flowers"]).split())
    assert "Expectation Suite: flowers" in page
    assert "Status: Succeeded" in page
    assert "setosa" in page
    assert "virginica" in page

    # A bad --out is a one-line error with its exit code, not an internal error.
    taken = tmp_path / "a-file"
    taken.write_text("x")
    proc = cli("data-docs", digits, "--out", str(taken / "docs"))
    assert proc.returncode == InvalidInputError.exit_code, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "--out" in proc.stderr

    bad = validate_artifact(vault, digits, _flowers_repo(tmp_path / "bad", species="rose", f1=0.5))
    assert bad.status == "failed"
    assert "flowers: flowers.species.known" in bad.failures
    assert "metrics_thresholds: metrics.f1 >= 0.7" in bad.failures
    assert not any("loss" in f for f in bad.failures)

    # A page edited in the store no longer matches the signed report: refused, not written.
    link = next(d for d in bad.data_docs if d["suite"] == "flowers")
    vault.store.put_bytes(vault.bucket("audit"), link["key"], b"<html>forged</html>")
    with pytest.raises(IntegrityError, match="does not match the signed report"):
        fetch_data_docs(vault, digits, tmp_path / "forged")
    assert not (tmp_path / "forged").exists()  # every page is checked before any is written


def test_without_a_model_repo_validation_is_partial_and_never_promotes(
    vault: Vault, digits: str
) -> None:
    proc = cli("validate", digits)
    assert proc.returncode == ValidationPartialError.exit_code, proc.stderr
    outcome = json.loads(proc.stdout)
    assert outcome["status"] == "partial"
    assert outcome["skipped"] == [
        "datasets: no model repository given",
        "metrics: no model repository given",
    ]
    row = Vault.open(vault.settings).resolve(digits)
    assert row.validation_status == "partial"
    logged = latest_report(vault, digits, row.content_digest)
    assert logged is not None
    assert logged.report["status"] == "partial"
    assert logged.report["skipped"] == outcome["skipped"]

    refused = cli("promote", digits, "--to", "warm", "--justification", "staging")
    assert refused.returncode != 0
    assert "validation_complete: validation is partial" in refused.stderr
    assert "no model repository given" in refused.stderr
    assert Vault.open(vault.settings).resolve(digits).tier == "hot"


def test_a_bad_validation_config_is_refused_before_anything_is_recorded(
    vault: Vault, digits: str, tmp_path: Path
) -> None:
    repo = tmp_path / "bad-config"
    repo.mkdir()
    (repo / "weightvault.toml").write_text('[validation.metrics]\nthresholds = ["f1 ~ 1"]\n')
    proc = cli("validate", digits, "--model-repo", str(repo))
    assert proc.returncode == ValidationConfigError.exit_code
    assert proc.stderr.count("\n") == 1
    assert "weightvault.toml" in proc.stderr
    assert "'f1 ~ 1'" in proc.stderr
    assert vault.history(digits, {"artifact.validated"}) == []
