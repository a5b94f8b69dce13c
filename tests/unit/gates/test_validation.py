"""Great Expectations gates: provenance record, digits dataset CSV, metrics."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.conftest import REPO
from weightvault.errors import ConfigError, InvalidInputError, NotFoundError
from weightvault.gates import (
    ValidationReport,
    provenance_record,
    validate_dataset,
    validate_metrics,
    validate_record,
)
from weightvault.gates._expectations import (
    DEFAULT_EXPECTATIONS_DIR,
    gx_suite,
    load_suite,
    record_frame,
    validate_frame,
)
from weightvault.provenance import Provenance
from weightvault.provenance._capture import DatasetDigest

HEADER = [f"p{i}" for i in range(64)] + ["label"]


def write_digits(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def digits_rows() -> list[list[Any]]:
    """The digits dataset as the prepare stage writes it: integer pixels, then the label."""
    digits = load_digits()
    features = np.asarray(digits.data).astype(np.int64)
    labels = np.asarray(digits.target).astype(np.int64)
    return [[*row, label] for row, label in zip(features.tolist(), labels.tolist(), strict=True)]


def assert_canonical(report: ValidationReport) -> None:
    data = report.to_json()
    parsed = json.loads(data)
    assert json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode() == data
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert parsed["failed"] == report.failed


# --------------------------------------------------------------------------- suites


@pytest.mark.parametrize("path", sorted((REPO / "config" / "expectations").glob("*.json")))
def test_stored_suites_load_into_gx(path: Path) -> None:
    definition = load_suite(path)
    names = [e["meta"]["name"] for e in definition.expectations]
    assert len(names) == len(set(names))
    assert len(gx_suite(definition).expectations) == len(names)


def test_suites_are_found_by_name() -> None:
    assert DEFAULT_EXPECTATIONS_DIR == REPO / "config" / "expectations"
    assert load_suite("digits_dataset").defaults == {"min_rows": 100, "max_rows": 1797}
    with pytest.raises(ConfigError, match="no expectation suite"):
        load_suite("nope")
    with pytest.raises(ConfigError, match="malformed suite name"):
        load_suite("../etc/passwd")


def test_unbuildable_or_unnamed_expectations_are_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text(
        json.dumps(
            {
                "name": "bogus",
                "expectations": [
                    {"type": "expect_the_moon", "kwargs": {}, "meta": {"name": "moon"}}
                ],
            }
        )
    )
    with pytest.raises(ConfigError, match="bogus"):
        validate_frame(record_frame({"a": 1}), bogus, subject="x", subject_sha256="0" * 64)
    assert "Traceback" not in capfd.readouterr().err
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text(json.dumps({"name": "u", "expectations": [{"type": "x", "kwargs": {}}]}))
    with pytest.raises(ConfigError, match=r"unique meta\.name"):
        load_suite(unnamed)


# --------------------------------------------------------------------------- dataset


def test_clean_dataset_passes(tmp_path: Path, digits_rows: list[list[Any]]) -> None:
    path = write_digits(tmp_path / "train.csv", digits_rows)
    report = validate_dataset(path, "digits_dataset")
    assert report.success, report.summary()
    assert report.status == "passed"
    assert report.failed == []
    assert report.statistics["evaluated_expectations"] == 132
    assert report.subject == "train.csv"
    assert report.subject_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert report.parameters == {"min_rows": 100, "max_rows": 1797}
    assert_canonical(report)


def _nulls(rows: list[list[Any]]) -> list[list[Any]]:
    rows[3][5] = ""
    return rows


def _out_of_range(rows: list[list[Any]]) -> list[list[Any]]:
    rows[4][7] = 17
    rows[9][7] = -1
    rows[2][64] = 10
    return rows


def _wrong_row_count(rows: list[list[Any]]) -> list[list[Any]]:
    return rows[:40]


@pytest.mark.parametrize(
    ("corrupt", "failing"),
    [
        (_nulls, ["dataset.p5.not_null"]),
        (_out_of_range, ["dataset.p7.in_0_16", "dataset.label.in_0_9"]),
        (_wrong_row_count, ["dataset.row_count_in_bounds"]),
    ],
    ids=["nulls", "out-of-range", "row-count"],
)
def test_corrupted_dataset_fails_naming_expectations(
    tmp_path: Path, digits_rows: list[list[Any]], corrupt: Any, failing: list[str]
) -> None:
    rows = corrupt([list(r) for r in digits_rows[:450]])
    report = validate_dataset(write_digits(tmp_path / "test.csv", rows))
    assert not report.success
    assert report.status == "failed"
    assert report.failed == failing
    assert report.summary() == f"digits_dataset on test.csv: failed ({', '.join(failing)})"
    assert_canonical(report)


def test_every_fault_at_once_is_reported(tmp_path: Path, digits_rows: list[list[Any]]) -> None:
    rows = _wrong_row_count(_out_of_range(_nulls([list(r) for r in digits_rows[:450]])))
    report = validate_dataset(write_digits(tmp_path / "test.csv", rows))
    assert report.failed == [
        "dataset.row_count_in_bounds",
        "dataset.p5.not_null",
        "dataset.p7.in_0_16",
        "dataset.label.in_0_9",
    ]
    failed = {r.name: r for r in report.results if not r.success}
    assert failed["dataset.row_count_in_bounds"].observed == {"observed_value": 40}
    pixels = failed["dataset.p7.in_0_16"]
    assert pixels.expectation_type == "expect_column_values_to_be_between"
    assert pixels.kwargs["column"] == "p7"
    assert pixels.observed["unexpected_count"] == 2
    assert sorted(pixels.observed["unexpected_sample"]) == [-1, 17]
    assert failed["dataset.label.in_0_9"].observed["unexpected_sample"] == [10]
    assert failed["dataset.p5.not_null"].observed["unexpected_count"] == 1
    assert report.statistics["unsuccessful_expectations"] == 4


def test_missing_column_and_row_bounds_parameters(
    tmp_path: Path, digits_rows: list[list[Any]]
) -> None:
    path = tmp_path / "narrow.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER[1:])
        writer.writerows(r[1:] for r in digits_rows[:300])
    report = validate_dataset(path, parameters={"min_rows": 500})
    assert report.failed == [
        "dataset.columns_exact",
        "dataset.row_count_in_bounds",
        "dataset.p0.not_null",
        "dataset.p0.in_0_16",
    ]
    errors = {r.name: r.error for r in report.results if r.error}
    assert "p0" in errors["dataset.p0.not_null"]
    assert report.parameters == {"min_rows": 500, "max_rows": 1797}


def test_unreadable_dataset(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        validate_dataset(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="not readable CSV"):
        validate_dataset(empty)


# --------------------------------------------------------------------------- record


def good_record() -> dict[str, Any]:
    provenance = Provenance(
        git_commit="0123456789abcdef0123456789abcdef01234567",
        git_dirty=False,
        datasets=(
            DatasetDigest("data/train.csv", "a" * 32, "b" * 64, 100),
            DatasetDigest("data/test.csv", "c" * 32, "d" * 64, 40),
        ),
        run_id="run-7",
        environment={"python_version": "3.11.7", "packages_sha256": "e" * 64}
        | {"lock_file": "uv.lock", "lock_file_sha256": "f" * 64},
        creator="alice@example.com",
        started_at=datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
        finished_at=datetime(2024, 6, 1, 10, 5, tzinfo=UTC),
    )
    files = [
        {"path": "model.safetensors", "size": 2600, "sha256": "1" * 64},
        {"path": "metrics.json", "size": 120, "sha256": "2" * 64},
    ]
    return provenance_record(provenance.to_dict(), files, "wv-01hzy3k8q2")


def test_record_frame_flattens_one_row_per_file() -> None:
    frame = record_frame(good_record())
    assert len(frame) == 2
    assert list(frame["files.path"]) == ["model.safetensors", "metrics.json"]
    assert frame["datasets.sha256"][0] == f"{'b' * 64} {'d' * 64}"
    assert frame["environment.lock_file_sha256"][0] == "f" * 64
    assert str(frame["started_at"].dtype).startswith("datetime64")


def test_good_record_passes_deterministically() -> None:
    first = validate_record(good_record())
    assert first.success, first.summary()
    assert first.subject == "wv-01hzy3k8q2"
    second = validate_record(good_record())
    assert first.to_json() == second.to_json()
    assert first.sha256 == second.sha256
    assert_canonical(first)


def test_bad_record_names_each_failure() -> None:
    record = good_record()
    record["git_commit"] = "main"
    record["git_dirty"] = "maybe"
    record["started_at"] = "2024-06-02T00:00:00Z"
    record["run_id"] = None
    record["environment"]["lock_file_sha256"] = "F" * 64
    record["datasets"][1]["dvc_md5"] = "not-md5"
    record["files"][0]["size"] = 0
    record["files"][1]["sha256"] = "xyz"
    record["files"][1]["path"] = "model.safetensors"
    report = validate_record(record)
    assert report.failed == [
        "record.run_id.not_null",
        "record.git_commit.is_40_hex",
        "record.git_dirty.is_boolean",
        "record.environment.lock_file_sha256.is_64_hex",
        "record.datasets.dvc_md5.are_32_hex",
        "record.files.sha256.is_64_hex",
        "record.files.size.positive",
        "record.files.path.unique",
        "record.started_at.not_after_finished_at",
    ]


def test_record_without_files_or_datasets() -> None:
    record = good_record()
    record["files"] = []
    record["datasets"] = None
    report = validate_record(record)
    assert {
        "record.columns_present",
        "record.files.size.not_null",
        "record.files.sha256.not_null",
        "record.datasets.sha256.not_null",
    } <= set(report.failed)
    with pytest.raises(InvalidInputError):
        record_frame(["not", "a", "record"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- metrics


METRICS = {
    "accuracy": 0.953333,
    "log_loss": 0.161,
    "n_test": 450,
    "per_class_accuracy": {"0": 1.0, "1": 0.9},
}


def test_metrics_pass_and_fail_on_threshold(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(METRICS, sort_keys=True))
    passed = validate_metrics(path, min_accuracy=0.9)
    assert passed.success, passed.summary()
    assert passed.parameters == {"min_accuracy": 0.9}
    assert passed.subject == "metrics.json"
    failed = validate_metrics(path, min_accuracy=0.97)
    assert failed.failed == ["metrics.accuracy.at_least_min_accuracy"]
    assert passed.sha256 != failed.sha256
    assert_canonical(failed)


def test_metrics_missing_accuracy() -> None:
    report = validate_metrics({"log_loss": 0.2, "n_test": 450}, min_accuracy=0.9)
    assert report.failed == [
        "metrics.columns_present",
        "metrics.accuracy.not_null",
        "metrics.accuracy.at_least_min_accuracy",
    ]
    present = report.results[0]
    assert present.observed["details"] == {"mismatched": {"missing": ["accuracy"]}}


def test_metrics_inputs(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        validate_metrics(tmp_path / "missing.json", 0.9)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InvalidInputError, match="not a JSON object"):
        validate_metrics(bad, 0.9)
    frame = record_frame({"accuracy": 0.99})
    with pytest.raises(ConfigError, match="needs parameters: min_accuracy"):
        validate_frame(frame, "metrics", subject="m", subject_sha256="0" * 64)
    with pytest.raises(ConfigError, match="has no parameters min_acuracy"):
        validate_frame(
            frame, "metrics", subject="m", subject_sha256="0" * 64, parameters={"min_acuracy": 1}
        )
