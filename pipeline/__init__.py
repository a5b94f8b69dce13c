"""The reference DVC pipeline: prepare -> train -> evaluate on scikit-learn's digits.

Each stage is a module runnable as ``python -m pipeline.<stage>``
whose argparse defaults match ``dvc.yaml``, so ``dvc repro`` works from the
repository root. Every stage is deterministic: the same params give
bit-identical outputs (no timestamps, sorted JSON keys, seeded randomness,
single-threaded BLAS while training).

This package holds the helpers the stages share: reading ``params.yaml``,
the CSV layout of the prepared dataset, and canonical JSON.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from weightvault.errors import ConfigError, InvalidInputError, VaultError

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_METRICS",
    "DEFAULT_MODEL_DIR",
    "DEFAULT_PARAMS",
    "N_CLASSES",
    "N_FEATURES",
    "PIXEL_MAX",
    "csv_header",
    "dump_json",
    "load_params",
    "param_float",
    "param_int",
    "read_dataset",
    "report_error",
    "write_dataset",
]

DEFAULT_PARAMS = Path("config/params.yaml")
DEFAULT_DATA_DIR = Path("data/prepared")
DEFAULT_MODEL_DIR = Path("model")
DEFAULT_METRICS = Path("metrics.json")

N_FEATURES = 64
N_CLASSES = 10
PIXEL_MAX = 16.0
"""Digits pixels are integers in [0, 16]; features are scaled by this."""


def csv_header() -> list[str]:
    """Column names of the prepared CSV files: ``p0`` .. ``p63`` then ``label``."""
    return [f"p{i}" for i in range(N_FEATURES)] + ["label"]


def load_params(path: Path, section: str) -> dict[str, Any]:
    """Return one section of a ``params.yaml`` file as a dict.

    Raises :class:`ConfigError` if the file is unreadable, is not a mapping, or
    lacks the section.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read params file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file {path} is not valid YAML") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"params file {path} is not a mapping")
    values = document.get(section)
    if not isinstance(values, dict):
        raise ConfigError(f"params file {path} has no mapping named {section!r}")
    return dict(values)


def param_int(values: dict[str, Any], key: str, *, minimum: int) -> int:
    """Return ``values[key]`` as an int >= ``minimum``, or raise :class:`ConfigError`."""
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"param {key} must be an integer >= {minimum}, got {value!r}")
    return value


def param_float(values: dict[str, Any], key: str, *, low: float, high: float) -> float:
    """Return ``values[key]`` as a float in ``[low, high]``, or raise :class:`ConfigError`."""
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"param {key} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def write_dataset(
    path: Path, features: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]
) -> None:
    """Write integer features and labels as CSV with :func:`csv_header` columns."""
    if features.shape != (labels.shape[0], N_FEATURES):
        raise InvalidInputError(f"features of shape {features.shape} do not fit {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(csv_header())
        for row, label in zip(features.tolist(), labels.tolist(), strict=True):
            writer.writerow([*row, label])


def read_dataset(path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Read a prepared CSV file back into ``(features, labels)`` integer arrays.

    Raises :class:`InvalidInputError` if the file is missing, has the wrong
    header, or holds anything but integers.
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise InvalidInputError(f"cannot read dataset {path}: {exc.strerror}") from exc
    if not rows or rows[0] != csv_header():
        raise InvalidInputError(f"dataset {path} does not have the p0..p63,label header")
    if len(rows) == 1 or any(len(row) != N_FEATURES + 1 for row in rows[1:]):
        raise InvalidInputError(f"dataset {path} has no rows or ragged rows")
    try:
        table = np.array([[int(cell) for cell in row] for row in rows[1:]], dtype=np.int64)
    except ValueError as exc:
        raise InvalidInputError(f"dataset {path} holds a non-integer cell") from exc
    labels = table[:, N_FEATURES]
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise InvalidInputError(f"dataset {path} has a label outside 0..{N_CLASSES - 1}")
    return table[:, :N_FEATURES], labels


def dump_json(path: Path, document: dict[str, Any]) -> None:
    """Write canonical, human-readable JSON: sorted keys, 2-space indent, final newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def report_error(stage: str, exc: VaultError) -> int:
    """Print a one-line error for a failed stage and return its exit code."""
    sys.stderr.write(f"{stage}: error: {exc.message}\n")
    return exc.exit_code
